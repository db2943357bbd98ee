"""The merged view of a v2 heartbeat, with its status decoded when first read.

A v2 heartbeat carries the node's status as ``ENCODED_DATA``: base64 of zlib
of about 12 KB of JSON. Inflating and parsing it costs more than the rest of
receiving the heartbeat, signature check included, and most receivers never
look at it: a session marks the node online from the envelope, and a
callback that only counts heartbeats or reads the node id it is handed does
not need the status at all. :class:`HeartbeatView` is the merged view
``{**envelope, **status}`` (exactly what
:func:`~pye2.domain.codecs.heartbeat.decode_heartbeat` returns) that only
decodes the status on its first read; :class:`EncodedStatus` is the compact
form a node record keeps between heartbeats (the compressed text, about
3.6 KB, instead of the parsed status).

Anyone on a shared broker can send a heartbeat, so its status is hostile
input until decoded:

* it never overrides the envelope's :data:`PROTECTED_FIELDS` (who signed
  what, and when): the envelope's values stay, and one the envelope lacks is
  not added by the status either (eager decoder, view and
  :class:`EncodedStatus` alike);
* it is capped: :data:`DEFAULT_MAX_STATUS_BYTES` (4 MiB; a real node's is
  12-100 KB) is the cap a session uses; inflating past the cap stops after
  ``cap + 1`` bytes, and a text longer than any compressed form of ``cap``
  bytes (:func:`~pye2.domain.codecs.code.max_compressed_chars`) is refused
  without inflating;
* decoding errors are the eager decoder's own (same types, same messages):
  :class:`~pye2.errors.DecompressionBomb` over the cap and
  :class:`~pye2.errors.DecodeError` for text that is not base64 / zlib /
  UTF-8 / a JSON object. The eager decoder raises them; a view never does: on
  its first read it finds out, keeps the error in :attr:`HeartbeatView.error`
  and becomes the envelope alone, without ``ENCODED_DATA`` (so code reading
  it, such as a user's ``on_heartbeat``, sees a heartbeat without a status,
  never an exception nor the undecodable blob; the session counts such a
  heartbeat as rejected). :meth:`EncodedStatus.decode` raises them (its
  reader, the network view, records why).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from pye2.domain.codecs.code import decompress_text
from pye2.errors import ConfigError, DecodeError

__all__ = ["DEFAULT_MAX_STATUS_BYTES", "PROTECTED_FIELDS", "EncodedStatus", "HeartbeatView", "check_max_inflated",
           "decode_status", "restore_envelope"]

#: the cap on a heartbeat's decoded status (bytes of JSON) a session uses; a real node's is 12-100 KB
DEFAULT_MAX_STATUS_BYTES = 4 * 1024 * 1024

#: envelope fields a heartbeat's status never overrides: who sent it, what was signed, when
PROTECTED_FIELDS = ("EE_SENDER", "EE_ID", "EE_SIGN", "EE_HASH", "EE_TIMESTAMP", "EE_ETH_SENDER", "EE_ETH_SIGN",
                    "SIGN_CANON_V", "EE_IS_ENCRYPTED", "EE_DEST")


def restore_envelope(merged: dict[str, Any], envelope: Mapping[str, Any]) -> None:
    """Put back (or remove) the :data:`PROTECTED_FIELDS` a status merged over ``envelope`` changed."""
    for name in PROTECTED_FIELDS:
        if name in envelope:
            dict.__setitem__(merged, name, envelope[name])
        else:
            dict.pop(merged, name, None)


_ENCODED = "ENCODED_DATA"
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def check_max_inflated(max_inflated: int) -> int:
    """``max_inflated`` itself if it is a positive int (the cap checked when the view is built)."""
    if isinstance(max_inflated, bool) or not isinstance(max_inflated, int) or max_inflated <= 0:
        raise ConfigError(f"max_size must be a positive int, not {max_inflated!r}")
    return max_inflated


def decode_status(encoded: str, *, max_inflated: int) -> dict[str, Any]:
    """The status dict compressed in a v2 heartbeat's ``ENCODED_DATA``.

    Raises:
        DecompressionBomb: it inflates beyond ``max_inflated`` bytes, or the
            text is too long to be the compressed form of at most that many
            (refused without inflating it).
        DecodeError: not base64, zlib, UTF-8 or JSON, or not a JSON object.
    """
    text = decompress_text(encoded, max_size=max_inflated)
    try:
        status = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"ENCODED_DATA is not valid JSON: {exc}") from exc
    if not isinstance(status, dict):
        raise DecodeError(f"ENCODED_DATA holds a JSON {type(status).__name__}, not an object")
    return status


class EncodedStatus:
    """A v2 heartbeat's status, still compressed, with the envelope fields it is merged over.

    Args:
        encoded: the ``ENCODED_DATA`` text.
        max_inflated: the inflation cap for :meth:`decode`.
        envelope: envelope fields the status is merged over (only those the
            holder will read: usually none); the status overrides them except
            :data:`PROTECTED_FIELDS`, which it can neither override nor add.
    """

    __slots__ = ("encoded", "envelope", "max_inflated")

    def __init__(self, encoded: str, max_inflated: int, envelope: Mapping[str, Any] = _NOTHING) -> None:
        self.encoded = encoded
        self.max_inflated = max_inflated
        self.envelope = envelope

    def decode(self) -> dict[str, Any]:
        """``{**envelope, **status}`` but for :data:`PROTECTED_FIELDS`; raises as :func:`decode_status`."""
        merged = decode_status(self.encoded, max_inflated=self.max_inflated)
        if self.envelope:
            merged = {**self.envelope, **merged}
        restore_envelope(merged, self.envelope)
        return merged

    def __repr__(self) -> str:
        return f"<EncodedStatus {len(self.encoded)} chars, {len(self.envelope)} envelope field(s)>"


class HeartbeatView(dict[str, Any]):
    """``{**envelope, **status}`` of a v2 heartbeat, a dict whose status is decoded on first use.

    Any read (a key, ``in``, ``len``, iteration, ``keys()``/``items()``,
    ``==``, ``repr``, ``dict(view)``, ``json.dumps``, copies) first inflates
    and parses ``ENCODED_DATA`` and merges the status over the envelope, as
    :func:`~pye2.domain.codecs.heartbeat.decode_heartbeat` does (the status
    wins, except over :data:`PROTECTED_FIELDS`; ``ENCODED_DATA`` stays); so do
    writes, after which the view is an ordinary dict. If the status cannot be
    decoded, the view becomes the envelope alone, without ``ENCODED_DATA``
    (:attr:`envelope` still has it), :attr:`error` says why
    (:class:`~pye2.errors.DecodeError` or :class:`~pye2.errors.DecompressionBomb`)
    and :attr:`pending` is False: no read ever raises (a status key is then
    missing, as from any dict).

    :attr:`envelope`, :attr:`pending`, :attr:`error` and :meth:`compact` never
    decode. Code that bypasses a dict's methods and reads its storage
    directly (``dict.__getitem__(view, k)``, C extensions such as
    ``orjson.dumps``) sees only the envelope until the view was first read.

    Args:
        envelope: the received message (kept, not copied: do not change it).
        encoded: its ``ENCODED_DATA``.
        max_inflated: the inflation cap (a positive int).
    """

    __slots__ = ("_encoded", "_envelope", "_max_inflated", "_state")

    def __init__(self, envelope: Mapping[str, Any], encoded: str, max_inflated: int) -> None:
        dict.__init__(self, envelope)  # the envelope shows through until the status is merged over it
        self._envelope = envelope
        self._encoded = encoded
        self._max_inflated = max_inflated
        # True while pending, the error if decoding failed, None once decoded
        self._state: DecodeError | bool | None = True

    # -- state, without decoding ----------------------------------------------------
    @property
    def envelope(self) -> Mapping[str, Any]:
        """The message as received (``EE_ID``, ``EE_SENDER``, ``ENCODED_DATA``...), not merged with the status."""
        return self._envelope

    @property
    def pending(self) -> bool:
        """True until the status was decoded (or found undecodable)."""
        return self._state is True

    @property
    def error(self) -> DecodeError | None:
        """Why the status could not be decoded, once a read found out; else None."""
        state = self._state
        return state if isinstance(state, DecodeError) else None

    def compact(self, keys: Iterable[str] = ()) -> EncodedStatus:
        """The status to decode again later, merged over the envelope's ``keys`` (decoded or not)."""
        envelope = self._envelope
        fields = {k: envelope[k] for k in keys if k in envelope}
        return EncodedStatus(self._encoded, self._max_inflated, fields or _NOTHING)

    def _decode(self) -> None:
        if self._state is not True:
            return  # decoded, or found undecodable: the view is what it is
        try:
            status = decode_status(self._encoded, max_inflated=self._max_inflated)
        except DecodeError as exc:
            # a copy without the traceback (it holds the inflated text); the view is the envelope alone,
            # without the blob that did not decode (a hostile sender's, up to the message size)
            dict.pop(self, _ENCODED, None)
            self._state = type(exc)(*exc.args)
            return
        dict.update(self, status)
        restore_envelope(self, self._envelope)
        self._state = None

    # -- reads ------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if self._state is not None:
            self._decode()
        return dict.__getitem__(self, key)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        if self._state is not None:
            self._decode()
        return dict.get(self, *args, **kwargs)

    def __contains__(self, key: object) -> bool:
        if self._state is not None:
            self._decode()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        if self._state is not None:
            self._decode()
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        if self._state is not None:
            self._decode()
        return dict.__reversed__(self)

    def __len__(self) -> int:
        if self._state is not None:
            self._decode()
        return dict.__len__(self)

    def keys(self) -> Any:
        if self._state is not None:
            self._decode()
        return dict.keys(self)

    def values(self) -> Any:
        if self._state is not None:
            self._decode()
        return dict.values(self)

    def items(self) -> Any:
        if self._state is not None:
            self._decode()
        return dict.items(self)

    def __eq__(self, other: object) -> bool:
        if self._state is not None:
            self._decode()
        if isinstance(other, HeartbeatView) and other._state is not None:
            other._decode()  # dict's comparison reads the other's storage directly
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def copy(self) -> dict[str, Any]:
        """A plain dict copy of the merged view."""
        if self._state is not None:
            self._decode()
        return dict(dict.items(self))

    def __or__(self, other: Any) -> Any:
        if self._state is not None:
            self._decode()
        return self.copy() | other

    def __ror__(self, other: Any) -> Any:
        if self._state is not None:
            self._decode()
        return dict.__ror__(self.copy(), other)

    def __reduce__(self) -> tuple[Any, ...]:
        """Copies and pickles are plain dicts of the merged view."""
        return (dict, (self.copy(),))

    def __repr__(self) -> str:
        if self._state is not None:
            self._decode()
        error = self.error
        if error is not None:
            return f"<HeartbeatView of {self._envelope.get('EE_ID')!r}: undecodable status ({error})>"
        return dict.__repr__(self)

    # -- writes (decode first, then the view is a plain dict) ------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        if self._state is not None:
            self._decode()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        if self._state is not None:
            self._decode()
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> Any:
        if self._state is not None:
            self._decode()
        dict.update(self, other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        if self._state is not None:
            self._decode()
        dict.update(self, *args, **kwargs)

    def setdefault(self, *args: Any, **kwargs: Any) -> Any:
        if self._state is not None:
            self._decode()
        return dict.setdefault(self, *args, **kwargs)

    def pop(self, *args: Any, **kwargs: Any) -> Any:
        if self._state is not None:
            self._decode()
        return dict.pop(self, *args, **kwargs)

    def popitem(self) -> tuple[str, Any]:
        if self._state is not None:
            self._decode()
        return dict.popitem(self)

    def clear(self) -> None:
        if self._state is not None:
            self._decode()
        dict.clear(self)
