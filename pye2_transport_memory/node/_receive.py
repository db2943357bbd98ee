"""What simulated nodes receive, parsed and verified once: :class:`ReceiveCache`.

A network shares one cache between its nodes, so a body heard by 100 nodes
is parsed, verified and (heartbeats) inflated once: the in-memory hub hands
the same bytes to every subscriber. Cached messages and views are
read-only: whoever hands one to user code copies it.

Two shortcuts keep the verdicts exact while skipping repeated work:

* the cache's verifier is a
  :class:`~pye2_transport_memory.node._witness.SignatureMemo`: signatures the
  nodes made themselves (their signers go through :meth:`ReceiveCache.witness`)
  skip the curve arithmetic; digests are still recomputed and compared;
* :meth:`ReceiveCache.vouch`: a node publishing a message it has just signed
  records what parsing and verifying the bytes will give, when that is
  certain (a message of strings, integers, finite floats, booleans, nulls,
  lists and objects is returned unchanged by a JSON round trip, and its
  signature by a checked signer under the cache's profile verifies). Others
  (numpy values, NaN...) are parsed and verified as received.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pye2.domain.keys import address_body
from pye2.errors import DecodeError, Pye2Error
from pye2.wire import verify_message
from pye2_transport_memory.node._fastview import heartbeat_view
from pye2_transport_memory.node._pending import PendingView, pending_view
from pye2_transport_memory.node._signing import make_verifier
from pye2_transport_memory.node._witness import SignatureMemo

if TYPE_CHECKING:
    from pye2.domain.profiles import WireProfile
    from pye2.ports.signer import Signer, Verifier

__all__ = ["ReceiveCache", "Received", "body_of", "plain_copy"]

log = logging.getLogger(__name__)

_CACHE_SIZE = 512
# orjson (the nodes' serialiser) writes integers in this range; others are refused before publishing.
_INT_MIN, _INT_END = -(2**63), 2**64


@functools.lru_cache(maxsize=4096)
def _body(address: str) -> str | None:
    try:
        return address_body(address)
    except DecodeError:
        return None


def body_of(address: Any) -> str | None:
    """The prefix-free body of an address, or None when it is not one (cached: few distinct addresses)."""
    return _body(address) if isinstance(address, str) else None


@dataclass(frozen=True)
class Received:
    """One received body: the parsed message, and its verified sender or why not."""

    message: dict[str, Any] | None
    sender: str | None = None
    error: str | None = None
    signed: bool = False


_UNSET: Any = object()  # heartbeat view not computed yet


#: exact types a JSON round trip returns unchanged whatever their value
_AS_IS = frozenset((str, bool, type(None)))


class _NotPlain(Exception):
    """A value a JSON round trip might change."""


def _plain(value: Any) -> Any:
    """``value`` if a JSON round trip returns it unchanged, a copy for containers; else raise."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        if _INT_MIN <= value < _INT_END:
            return value
    elif kind is float:  # written in shortest round-trip form; NaN and infinities become null
        if math.isfinite(value):
            return value
    elif kind is dict:
        return _plain_dict(value)
    elif kind is list:
        if set(map(type, value)) <= _AS_IS:  # e.g. an allow-list: one C-level pass, one copy
            return value.copy()
        return [_plain(item) for item in value]
    raise _NotPlain  # tuples, numpy values, subclasses...: let the parser decide


def _plain_dict(value: dict[Any, Any]) -> dict[str, Any]:
    out = value.copy()
    for key, item in value.items():
        if type(key) is not str:
            raise _NotPlain
        kind = type(item)  # scalars inline: a heartbeat has ~40 fields and one list
        if kind is str or item is None or kind is bool or (kind is int and _INT_MIN <= item < _INT_END):
            continue
        out[key] = _plain(item)
    return out


def plain_copy(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """What ``json.loads`` returns for the serialised ``message``, when certain; else None.

    Certain when the message holds only ``str``, ``int`` (64-bit), finite
    ``float``, ``bool``, None, and lists and str-keyed dicts of them (exact
    types): the nodes' serialiser writes floats in shortest round-trip form.
    """
    if type(message) is not dict:
        return None
    try:
        copied = _plain_dict(message)
    except (_NotPlain, RecursionError):
        return None
    return copied


class ReceiveCache:
    """Parse + verify (and inflate heartbeats) once per body; bounded LRU (see the module docstring).

    Args:
        profile: wire profile the messages are verified under.
        verifier: ECDSA backend (default: the fastest available).
        size: bodies remembered.
    """

    def __init__(self, profile: WireProfile, verifier: Verifier | None = None, size: int = _CACHE_SIZE) -> None:
        self.profile = profile
        self.memo = SignatureMemo(verifier if verifier is not None else make_verifier())
        self.verifier: Verifier = self.memo
        self._size = size
        # body -> [verdict, heartbeat view (_UNSET until asked for)]
        self._entries: OrderedDict[bytes, list[Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.vouched = 0

    def __repr__(self) -> str:
        return f"<ReceiveCache {len(self._entries)} bodies, hits={self.hits} misses={self.misses}>"

    def witness(self, signer: Signer) -> Signer:
        """``signer`` with its signatures known to this cache's verifier."""
        return self.memo.witness(signer)

    def vouch(self, body: bytes, signed: Mapping[str, Any], signer: Signer, profile: WireProfile, *,
              heartbeat: tuple[str, Mapping[str, Any]] | None = None) -> bool:
        """Record the verdict on ``body``, which ``signer`` just signed (``signed``) and serialised.

        Only when the verdict is certain (see the module docstring): ``signer``
        came from :meth:`witness` and its first signature verified, ``profile``
        is the cache's and the message survives a JSON round trip unchanged.
        ``heartbeat``: for a v2 heartbeat, ``(text, status)``: the JSON
        compressed into its ``ENCODED_DATA`` and the status it encodes; the
        heartbeat view is then recorded too (pending, see
        :class:`~pye2_transport_memory.node._pending.PendingView`).
        Returns whether the verdict was recorded.
        """
        if (profile is not self.profile and profile != self.profile) or not self.memo.vouches_for(signer):
            return False
        message = plain_copy(signed)
        sender = signed.get("EE_SENDER")
        if message is None or not isinstance(sender, str):
            return False
        self.memo.settled(signer)
        view: Any = _UNSET
        if heartbeat is not None:
            text, status = heartbeat
            view = pending_view(message, text, status)
            if view is None:
                try:
                    view = heartbeat_view(message, text)
                except DecodeError:
                    view = _UNSET  # left to the receiving side, which logs it
        self._remember(body, Received(message, sender=sender, signed=True), view)
        self.vouched += 1
        return True

    def _remember(self, body: bytes, received: Received, view: Any = _UNSET) -> list[Any]:
        entries = self._entries
        entry = entries[body] = [received, view]
        if len(entries) > self._size:
            entries.popitem(last=False)
        return entry

    def message(self, body: bytes, receivers: int = 1) -> Received:
        """The parsed and verified form of ``body`` (never raises).

        ``receivers``: how many receptions this lookup serves (a shared
        monitor answers a whole network's nodes with one lookup); all but the
        first parse count as cache hits.
        """
        return self._entry(body, receivers)[0]  # type: ignore[no-any-return]

    def _entry(self, body: bytes, receivers: int) -> list[Any]:
        entry = self._entries.get(body)
        if entry is not None:
            self.hits += receivers
            return entry
        self.misses += 1
        self.hits += receivers - 1
        return self._remember(body, self._decode(body))

    def _decode(self, body: bytes) -> Received:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return Received(None, error=f"malformed JSON: {exc}")
        if not isinstance(message, dict):
            return Received(None, error="not a JSON object")
        signed = "EE_SIGN" in message
        try:
            sender = verify_message(message, profile=self.profile, verifier=self.verifier, json_native=True)
        except Pye2Error as exc:
            return Received(message, error=f"signature: {exc}", signed=signed)
        return Received(message, sender=sender, signed=True)

    def heartbeat(self, body: bytes, receivers: int = 1) -> tuple[dict[str, Any] | None, Received]:
        """The merged heartbeat view of a verified ``body`` (None if it does not verify or decode)."""
        view, received = self.heartbeat_or_pending(body, receivers)
        if type(view) is PendingView:
            view = view.view()
        return view, received

    def heartbeat_or_pending(self, body: bytes, receivers: int = 1) -> tuple[Any, Received]:
        """As :meth:`heartbeat`, but a vouched heartbeat's view may come as a :class:`PendingView`."""
        entry = self._entry(body, receivers)
        received: Received = entry[0]
        if received.sender is None or received.message is None:
            return None, received
        view = entry[1]
        if view is _UNSET:
            try:
                view = heartbeat_view(received.message)
            except DecodeError as exc:
                log.debug("undecodable heartbeat from %s: %s", received.sender, exc)
                view = None
            entry[1] = view
        return view, received
