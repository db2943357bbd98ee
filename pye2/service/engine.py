"""ProtocolEngine: wire bytes <-> events and commands, with no I/O of its own.

``receive(kind, body, now)`` runs the inbound pipeline — size cap, parse,
signature check (per the ``verify`` mode), decryption of messages addressed
to us, formatter, heartbeat inflation — and returns an event or a
:class:`~pye2.domain.messages.Rejected` with a stable reason key. It never
raises for bad input. ``prepare(...)`` turns a command into ``(topic, bytes)``:
envelope per profile, optional encryption, signature, serialization.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pye2 import wire
from pye2.domain import commands as cmd
from pye2.domain.canonical import SortedTextFn
from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.codecs.heartbeat_view import HeartbeatView
from pye2.domain.logtext import clip
from pye2.domain.messages import (
    KIND_HEARTBEAT,
    KIND_NOTIFICATION,
    KIND_PAYLOAD,
    Event,
    Rejected,
    heartbeat_event,
    notification_event,
    payload_event,
)
from pye2.domain.profiles import WireProfile
from pye2.domain.signing import verify_fields
from pye2.errors import ConfigError, CryptoError, DecodeError, Pye2Error, SignatureInvalid
from pye2.ports.formatter import Formatter
from pye2.ports.serializer import Serializer
from pye2.ports.signer import Verifier
from pye2.service.ratelimit import LogLimiter

if TYPE_CHECKING:
    from pye2.service.verify_workers import Verdict

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "VERIFY_MODES", "ProtocolEngine"]

log = logging.getLogger(__name__)

VERIFY_MODES = ("strict", "warn", "off")
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: ``f(message, now) -> reason | None``: a cheap verdict before the signature check
Prescreen = Callable[[Mapping[str, Any], float], "str | None"]
_ETH_FIELDS = frozenset({"EE_ETH_SENDER", "EE_ETH_SIGN"})
#: decoded heartbeat status at most (a real node's is 12-100 KB)
DEFAULT_MAX_INFLATED = 4 * 1024 * 1024
#: a heartbeat larger than this (bytes as received; a real node's is 5-40 KB) has its status decoded on
#: arrival, so that one over ``max_inflated`` is refused instead of retained; smaller ones decode when read
EAGER_STATUS_CHECK = 256 * 1024
_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    KIND_NOTIFICATION: notification_event, KIND_PAYLOAD: payload_event,
}


class ProtocolEngine:
    """The session's protocol logic (one per session).

    Args:
        profile: the wire profile.
        identity: our signer (also the receiver key for encrypted messages).
        serializer: wire serializer (JSON on the public network).
        formatter_lookup: name -> Formatter, raising a pye2 error if unknown.
        verify: ``"strict"`` (drop and count bad signatures), ``"warn"`` (log,
            deliver) or ``"off"``.
        verifier: signature backend (default: :func:`pye2.wire.default_verifier`).
        encrypt: encrypt command ``ACTION``/``PAYLOAD`` for the target node.
        parse: wire bytes -> message dict for inbound messages (default:
            ``serializer.loads``); must return exactly what the serializer
            would (see :func:`pye2.adapters.select.best_parser`).
        sorted_text: exact-or-None writer of the sorted JSON text for verification
            (see :func:`pye2.domain.signing.verify_fields`).
        prescreen: ``f(message, now) -> reason | None``, asked after parsing and
            before the signature check: a reason refuses the message at once
            (the session's :meth:`~pye2.service.directory.NodeDirectory.prescreen`:
            replays and known impostors, so a flood of them costs no signature checks).
    """

    def __init__(
        self,
        *,
        profile: WireProfile,
        identity: Any,
        serializer: Serializer,
        formatter_lookup: Callable[[str], Formatter],
        verify: str = "strict",
        verifier: Verifier | None = None,
        encrypt: bool = False,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_inflated: int = DEFAULT_MAX_INFLATED,
        warn_interval: float = 60.0,
        parse: Callable[[bytes], dict[str, Any]] | None = None,
        sorted_text: SortedTextFn | None = None,
        prescreen: Prescreen | None = None,
    ) -> None:
        if verify not in VERIFY_MODES:
            raise ConfigError(f"verify must be one of {', '.join(VERIFY_MODES)}, not {verify!r}")
        self.profile = profile
        self.identity = identity
        self.address: str = identity.address(profile)
        self.serializer = serializer
        self.verify = verify
        self.verifier = verifier
        self.encrypt = encrypt
        self._parse = parse if parse is not None else serializer.loads
        self._sorted_text = sorted_text
        self._verify_ecdsa = (verifier if verifier is not None else wire.default_verifier()).verify
        self._verifies = verify != "off"
        self.max_message_bytes = max_message_bytes
        self.max_inflated = max_inflated
        self._formatter_lookup = formatter_lookup
        self._formatters: dict[str, Formatter | None] = {}
        self._limiter = LogLimiter(interval=warn_interval)
        self.prescreen = prescreen

    # -- inbound --------------------------------------------------------------------
    def receive(self, kind: str, body: bytes, now: float, verdict: Verdict | None = None) -> Event | Rejected:
        """Decode one delivery of ``kind`` (heartbeat / notification / payload).

        ``verdict``: the signature check already done on these same bytes elsewhere
        (:mod:`pye2.service.verify_workers`, same profile and backends). A checked
        verdict replaces :func:`~pye2.domain.signing.verify_fields` here and is applied
        the same way (``strict``: rejected with its reason; ``warn``: logged and
        delivered); an unchecked one (``malformed``) or None means: check here.
        """
        if len(body) > self.max_message_bytes:
            return Rejected("too_large", f"{len(body)} bytes > {self.max_message_bytes}", kind=kind)
        try:
            message: dict[str, Any] = self._parse(body)
        except DecodeError as exc:
            return Rejected("malformed", str(exc), kind=kind)
        raw_sender = message.get("EE_SENDER")
        sender: str | None = raw_sender if isinstance(raw_sender, str) else None
        if self.prescreen is not None:
            early = self.prescreen(message, now)
            if early is not None:
                return Rejected(early, "refused before its signature was checked", sender=sender, kind=kind)
        verified = self._verifies
        if verified:
            failure: str | None = None
            if verdict is not None and verdict.checked:
                if not verdict.ok:
                    failure = verdict.reason
            else:
                try:
                    verify_fields(message, profile=self.profile, verify=self._verify_ecdsa, json_native=True,
                                  sorted_text=self._sorted_text)
                except SignatureInvalid as exc:
                    failure = exc.reason
            if failure is not None and _ETH_FIELDS & message.keys():
                failure = self._other_mode(message, failure)
            if failure is not None:
                if self.verify == "strict":
                    self._rate_limited_log(sender, "signature", now, "rejected %s from %s: %s",
                                           kind, clip(sender), clip(failure))
                    return Rejected("signature", failure, sender=sender, kind=kind)
                self._rate_limited_log(sender, "signature", now, "delivering %s from %s despite a bad signature: %s",
                                       kind, clip(sender), clip(failure))
                verified = False
        try:
            if message.get("EE_IS_ENCRYPTED") is True:
                decrypted = self._decrypt(message)
                if decrypted is None:
                    return Rejected("not_for_us", "encrypted for another receiver", sender=sender, kind=kind)
                message = decrypted
            message = self._format(message)
            if kind == KIND_HEARTBEAT:
                view = decode_heartbeat(message, max_inflated=self.max_inflated, lazy=True)
                if isinstance(view, HeartbeatView) and view.pending and len(body) > EAGER_STATUS_CHECK:
                    len(view)  # decode now: an oversized status is refused, not retained (real ones are far smaller)
                    if view.error is not None:
                        raise view.error
                event: Event = heartbeat_event(view, len(body))
            else:
                event = _BUILDERS[kind](message)
            return event if verified else replace(event, verified=False)
        except CryptoError as exc:
            return Rejected("decrypt", str(exc), sender=sender, kind=kind)
        except DecodeError as exc:
            reason = "bomb" if type(exc).__name__ == "DecompressionBomb" else "malformed"
            return Rejected(reason, str(exc), sender=sender, kind=kind)
        except Pye2Error as exc:
            return Rejected("unknown_formatter" if "formatter" in str(exc) else "invalid", str(exc),
                            sender=sender, kind=kind)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # defensive: never crash the session
            log.debug("unexpected decode failure", exc_info=True)
            return Rejected("malformed", f"{type(exc).__name__}: {exc}", sender=sender, kind=kind)

    def _other_mode(self, message: dict[str, Any], failure: str) -> str | None:
        """A message with ``EE_ETH_*`` fields that failed: check it as a node of the other signing mode signs.

        A node in ETH mode leaves those fields out of its hash, one without it
        hashes them as data; a session verifies what either kind sends.
        Returns the first failure's reason, or None if the other mode verifies.
        """
        try:
            verify_fields(message, profile=self.profile.with_eth(not self.profile.eth_fields),
                          verify=self._verify_ecdsa, json_native=True)
        except SignatureInvalid:
            return failure
        return None

    def _rate_limited_log(self, sender: str | None, what: str, now: float, msg: str, *args: Any) -> None:
        """Log at most once per sender and reason per interval (a bounded memory of short keys)."""
        if self._limiter.allow((sender or "?", what), now):
            log.warning(msg, *args)

    def _decrypt(self, message: dict[str, Any]) -> dict[str, Any] | None:
        dest = message.get("EE_DEST")
        targets = dest if isinstance(dest, list) else [dest]
        mine = {self.address, self.identity.address(self.profile)}
        if not any(isinstance(t, str) and (t in mine or _same_key(t, self.address)) for t in targets):
            return None
        data = message.get("EE_ENCRYPTED_DATA")
        sender = message.get("EE_SENDER")
        if not isinstance(data, str) or not isinstance(sender, str):
            raise DecodeError("encrypted message without EE_ENCRYPTED_DATA or EE_SENDER")
        text = wire.decrypt(data, receiver=self.identity, sender_address=sender)
        try:
            inner = json.loads(text)
        except ValueError as exc:
            raise DecodeError(f"decrypted data is not JSON: {exc}") from exc
        if not isinstance(inner, dict):
            raise DecodeError("decrypted data is not a JSON object")
        out = {k: v for k, v in message.items() if k != "EE_ENCRYPTED_DATA"}
        out.update(inner)
        return out

    def _format(self, message: dict[str, Any]) -> dict[str, Any]:
        name = message.get("EE_FORMATTER") or message.get("SB_IMPLEMENTATION") or ""
        if not isinstance(name, str):
            raise DecodeError("EE_FORMATTER is not a string")
        name = name.lower()
        if name in ("", "default"):
            return message
        if name not in self._formatters:
            try:
                self._formatters[name] = self._formatter_lookup(name)
            except Pye2Error:
                self._formatters[name] = None
        formatter = self._formatters[name]
        if formatter is None:
            raise ConfigError(f"unknown formatter {name!r}")
        return formatter.decode(message)

    # -- outbound -------------------------------------------------------------------
    def prepare(
        self,
        action: str,
        payload: Any,
        *,
        node_alias: str,
        node_address: str | None,
        initiator_id: str,
        session_id: str | None,
        now: float,
        eth: bool | None = None,
    ) -> tuple[str, bytes]:
        """The topic and bytes of a signed command for one node.

        ``eth``: sign for a node in ETH mode (with ``EE_ETH_*`` fields left out of
        the hash) or not; None: the profile's default.
        """
        command = cmd.build_envelope(
            action,
            payload,
            profile=self.profile,
            target_id=node_alias,
            target_address=node_address,
            initiator_id=initiator_id,
            session_id=session_id,
            now=now,
        )
        if self.encrypt and node_address:
            command = wire.encrypt_command(command, sender=self.identity, receivers=[node_address])
        elif self.profile.commands_by_address:
            command["EE_IS_ENCRYPTED"] = False  # as the incumbent client writes a plain command
        profile = self.profile if eth is None else self.profile.with_eth(eth)
        signed = wire.sign_message(command, self.identity, profile=profile)
        target = node_address if (self.profile.commands_by_address and node_address) else node_alias
        return self.profile.config(target), self.serializer.dumps(signed)


def _same_key(a: str, b: str) -> bool:
    """Addresses equal up to their prefix (``aixp_`` vs ``0xai_``)."""
    return a[-44:] == b[-44:] and len(a) > 44 and len(b) > 44


def summary_of(message: Mapping[str, Any]) -> str:
    """Short description for logs."""
    return f"{message.get('EE_EVENT_TYPE')} from {message.get('EE_ID')}"
