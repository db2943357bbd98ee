"""What a simulated node puts on the wire: envelope, signature, bytes.

Every event (heartbeat, notification, payload) gets the envelope of node.md
section 2 and is signed under the node's profile; commands the node sends to
peers get the command envelope of the profile (``pye2.domain.commands``).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pye2.domain.canonical import SortedTextFn
from pye2.domain.commands import build_envelope
from pye2.domain.signing import sign_fields
from pye2.errors import DecodeError, Pye2Error
from pye2.wire import encrypt, encrypt_command
from pye2_transport_memory.node._heartbeat import NODE_VERSION
from pye2_transport_memory.node._payload import time_text

if TYPE_CHECKING:
    from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["Publisher", "dumps", "uuid4_text"]

log = logging.getLogger(__name__)

_CHANNELS = {"HEARTBEAT": "HEARTBEATS", "NOTIFICATION": "NOTIFICATIONS", "PAYLOAD": "DEFAULT"}
_ORIGIN = ("SESSION_ID", "INITIATOR_ID", "INITIATOR_ADDR", "MODIFIED_BY_ID", "MODIFIED_BY_ADDR")

_orjson: Any
try:  # orjson is several times faster; both produce JSON any receiver parses to the same values
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is optional
    _orjson = None


def _plain(value: Any) -> Any:
    """numpy scalars/arrays as Python numbers/lists (the canonical form signs them that way)."""
    for attr in ("tolist", "item"):
        method = getattr(value, attr, None)
        if callable(method):
            return method()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode_images(body: dict[str, Any]) -> dict[str, Any]:
    """Numpy images under ``IMG``/``IMG_ORIG`` as a real node encodes them (base64 JPEG + sizes)."""
    if all(body.get(key) is None or isinstance(body.get(key), str) for key in ("IMG", "IMG_ORIG")):
        return body
    try:
        from pye2_transport_memory.node.images import encode_image_fields
    except ImportError as exc:  # pragma: no cover - images.py ships with the simulator
        log.warning("payload images cannot be encoded (%s); IMG dropped", exc)
        body["IMG"] = None
        return body
    return dict(encode_image_fields(body))


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` for 128 random ``bits``, without building a UUID."""
    text = "%032x" % ((bits & _UUID4_CLEAR) | _UUID4_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def dumps(message: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON bytes of a message (NaN/Inf become null, as the canonical form hashes them).

    Raises:
        DecodeError: values that are not JSON, numpy or None.
    """
    try:
        if _orjson is not None:
            # orjson returns its 32 KiB working buffer; an exact copy keeps retained bodies small
            # (the fault plan remembers thousands of them).
            return bytes(memoryview(_orjson.dumps(message, default=_plain)))
        import json

        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=_plain).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"message is not JSON-serialisable: {exc}") from exc


class Publisher:
    """Envelope, signing and publishing for one node."""

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.seq: Counter[str] = Counter()
        self.total = 0

    def reset(self) -> None:
        """A new process life: counters restart."""
        self.seq.clear()
        self.total = 0

    def _message_id(self) -> str:
        return uuid4_text(self.node.id_rng.getrandbits(128))

    def event(self, topic: str, event_type: str, body: dict[str, Any], *,
              path: tuple[str | None, str | None, str | None],
              heartbeat: tuple[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Wrap ``body`` (modified in place) in the node envelope, sign, publish; return the signed dict.

        ``heartbeat``: see :meth:`send`.
        """
        node = self.node
        channel = _CHANNELS[event_type]
        self.seq[channel] += 1
        self.total += 1
        for key in _ORIGIN:
            body.setdefault(key, None)
        body.setdefault("EE_IS_ENCRYPTED", False)
        body.update({
            "EE_ID": node.alias,
            "EE_ADDR": node.address,
            "EE_EVENT_TYPE": event_type,
            "EE_VERSION": NODE_VERSION,
            "EE_TIMESTAMP": time_text(node.time()),
            "EE_TIMEZONE": "UTC+0",
            "EE_TZ": "Etc/UTC",
            "EE_MESSAGE_SEQ": self.seq[channel],
            "EE_MESSAGE_ID": self._message_id(),
            "EE_TOTAL_MESSAGES": self.total,
            "EE_FORMATTER": None,
            "SB_IMPLEMENTATION": None,
            "EE_PAYLOAD_PATH": [node.alias, *path],
        })
        return self.send(topic, body, heartbeat=heartbeat)

    def send(self, topic: str, message: Mapping[str, Any], *,
             heartbeat: tuple[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Sign ``message`` as the node and publish it on ``topic``; return the signed dict.

        ``heartbeat``: for a v2 heartbeat, ``(text, status)``: the JSON
        compressed into its ``ENCODED_DATA`` and the status it encodes
        (receivers sharing the node's cache then skip inflating it).
        """
        node = self.node
        signer = node.signer
        # A v2 heartbeat is built here from strings, integers and None only: JSON-native, so the
        # canonical form needs no type walk.
        signed = sign_fields(message, profile=node.sign_profile, public_key=signer.public_key, sign=signer.sign,
                             json_native=heartbeat is not None, sorted_text=_sorted_text())
        data = dumps(signed)
        # Receivers sharing the node's cache then need not parse and verify what is certain.
        node.receive_cache.vouch(data, signed, node.signer, node.sign_profile, heartbeat=heartbeat)
        node.counters["out_bytes"] += len(data)
        try:
            node.transport.publish(topic, data)
        except Pye2Error as exc:
            node.counters["publish_errors"] += 1
            log.warning("node %s: publish to %s failed: %s", node.alias, topic, exc)
        return signed

    def payload(self, body: dict[str, Any], *, pipeline: str, signature: str, instance_id: str, encrypt: bool,
                pipeline_config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Publish a decorated payload: images encoded, encrypted for the initiator when asked.

        Returns the signed message, or None when it could not be built (counted, logged).
        """
        node = self.node
        dest = None
        if encrypt:
            dest = pipeline_config.get("INITIATOR_ADDR") or pipeline_config.get("MODIFIED_BY_ADDR")
            if not isinstance(dest, str):
                log.warning("node %s: ENCRYPT_PAYLOAD without an initiator address; sent in clear", node.alias)
                dest = None
        try:
            return self._payload(_encode_images(body), (pipeline, signature, instance_id), dest)
        except Pye2Error as exc:
            node.counters["payload_errors"] += 1
            log.warning("node %s: payload of %s:%s not sent: %s", node.alias, pipeline, instance_id, exc)
            return None

    def _payload(self, body: dict[str, Any], path: tuple[str, str, str], dest: str | None) -> dict[str, Any]:
        node = self.node
        node.counters["payloads"] += 1
        if dest is None:
            return self.event(node.profile.payloads, "PAYLOAD", body, path=path)
        clear = {key: body.get(key) for key in _ORIGIN}
        plaintext = dumps(body).decode("utf-8")
        clear.update({"EE_IS_ENCRYPTED": True, "EE_DEST": dest,
                      "EE_ENCRYPTED_DATA": encrypt(plaintext, sender=node.identity, receivers=dest)})
        return self.event(node.profile.addressed_payloads(dest), "PAYLOAD", clear, path=path)

    def command(self, target: str, action: str, payload: Any) -> dict[str, Any]:
        """Send a command to a peer (alias or address), as a node's ``cmdapi_*`` does."""
        node = self.node
        alias, address = node.netmon.resolve(target)
        profile = node.profile
        message = build_envelope(action, payload, profile=profile, target_id=alias or target,
                                 target_address=address, initiator_id=node.alias, session_id=node.session_id,
                                 now=node.time())
        message.setdefault("SESSION_ID", node.session_id)
        message.setdefault("TIME", time_text(node.time()))
        if address is not None:
            message["EE_ADDR"] = address
        if profile.encrypt_commands and address is not None:
            message = encrypt_command(message, sender=node.identity, receivers=address)
        topic = profile.config(address if profile.commands_by_address and address else (alias or target))
        return self.send(topic, message)


@functools.cache
def _sorted_text() -> SortedTextFn | None:
    """The orjson writer of canonical text when orjson is installed (same bytes, faster), else None."""
    from pye2.wire import canonical_text_writer

    return canonical_text_writer()
