"""Wire values made safe for a log line: one token, no control characters, bounded length.

:func:`clip` is for every value a sender controls (message fields, topics,
sender addresses, node ids, notification texts, error texts quoting them)
before it reaches a log call::

    log.warning("rejected %s from %s: %s", kind, clip(sender), clip(reason))

What comes out:

* one line: newlines, carriage returns, tabs, every C0 and C1 control
  character (terminal escapes included), DEL, the Unicode line and paragraph
  separators, bidirectional overrides and isolates, zero-width and other
  format characters (everything :meth:`str.isprintable` refuses) are written
  as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``; a backslash as ``\\\\``, so
  the escapes cannot be forged;
* at most ``limit`` characters (an escape is never split), then a marker
  saying how much was cut: ``…(+N chars)`` (``…(+N bytes)`` for bytes; for
  a container, characters of its bounded rendering);
* bounded work whatever the input: a 1 GB string, a list of a million
  items, a megabyte of bytes or a 10,000-digit integer is rendered from its
  head, never in full. ``str()`` is used for scalars and exceptions,
  :mod:`reprlib` for containers.

A string that is short and printable, with no backslash, comes back as is
(two C-speed checks), so the common case costs almost nothing.
"""

from __future__ import annotations

import reprlib
from collections import deque
from typing import Any

__all__ = ["MARKER_MAX", "clip"]

#: the longest cut marker :func:`clip` can append (a count below 2**63)
MARKER_MAX = len(f"…(+{2**63 - 1} chars)")

#: rendered with reprlib (subclasses and other objects render themselves with str())
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, deque})
_BYTES = (bytes, bytearray, memoryview)
_INT_BITS = 4000  # above this an int is described, not printed (str() of a huge int is slow or refused)


def clip(value: object, limit: int = 200) -> str:
    """``value`` as one printable token of at most ``limit`` characters plus a cut marker.

    Args:
        value: anything; a ``str`` is used as is, other values are rendered
            (bounded) first.
        limit: characters kept (escapes included), at least 1.

    Returns:
        A string with only printable characters, at most
        ``limit + MARKER_MAX`` long; ``value`` itself when it is a short
        printable ``str`` without backslashes.
    """
    if type(value) is str:
        if len(value) <= limit and value.isprintable() and "\\" not in value:
            return value
        if limit < 1:
            raise ValueError("clip limit must be at least 1")
        return _escape(value, limit, backslash=True)
    if limit < 1:
        raise ValueError("clip limit must be at least 1")
    if isinstance(value, str):  # a str subclass: its characters, not its __str__
        return _escape(str.__str__(value), limit, backslash=True)
    if isinstance(value, _BYTES):
        return _clip_bytes(value, limit)
    if type(value) in _CONTAINERS:
        # repr output is printable and its backslashes are escapes already (only the
        # repr of a foreign object inside may not be): escape what is not printable
        return _escape(_bounded_repr(limit).repr(value), limit, backslash=False)
    return _escape(_scalar_text(value, limit), limit, backslash=True)


def _escape(text: str, limit: int, *, backslash: bool) -> str:
    """``text`` escaped and cut to ``limit`` characters, with the cut marker."""
    head = text[:limit]
    if head.isprintable() and not (backslash and "\\" in head):  # long but clean: just cut
        return head if len(text) <= limit else f"{head}…(+{len(text) - limit} chars)"
    out: list[str] = []
    used = 0
    taken = 0
    for ch in text:
        if ch.isprintable() and not (backslash and ch == "\\"):
            piece = ch
        else:
            piece = _escape_char(ch)
        if used + len(piece) > limit:
            break
        out.append(piece)
        used += len(piece)
        taken += 1
    else:
        return "".join(out)
    return f"{''.join(out)}…(+{len(text) - taken} chars)"


def _escape_char(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _clip_bytes(value: bytes | bytearray | memoryview, limit: int) -> str:
    """``b'...'`` from the head of the bytes (repr escapes, never the whole value)."""
    view = memoryview(value)
    total = view.nbytes
    try:
        view = view.cast("B")
    except TypeError:  # not contiguous (or not byte-shaped): a copy of its first rows only
        view = memoryview(view[: limit].tobytes())
    out = ["b'"]
    used = 2
    taken = 0
    for byte in view[: limit]:
        piece = _BYTE_REPR[byte]
        if used + len(piece) + 1 > limit:
            break
        out.append(piece)
        used += len(piece)
        taken += 1
    if taken == total:
        return "".join(out) + "'"
    return f"{''.join(out)}…(+{total - taken} bytes)"


#: each byte as it appears inside a bytes repr between single quotes
_BYTE_REPR = tuple(repr(bytes([b]))[2:-1] if b != 0x27 else "\\'" for b in range(256))


def _scalar_text(value: object, limit: int) -> str:
    """``str(value)`` for a scalar, an exception or another object; bounded for huge ints."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _INT_BITS:
        return f"<int of {value.bit_length()} bits>"
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ (or a refused conversion) must not break the log call
        return f"<unprintable {type(value).__name__}>"


class _BoundedRepr(reprlib.Repr):
    """:class:`reprlib.Repr` that also bounds bytes and huge ints (reprlib renders those in full)."""

    def repr_bytes(self, x: bytes, level: int) -> str:
        return _clip_bytes(x, self.maxstring)

    def repr_bytearray(self, x: bytearray, level: int) -> str:
        return _clip_bytes(x, self.maxstring)

    def repr_memoryview(self, x: memoryview, level: int) -> str:
        return _clip_bytes(x, self.maxstring)

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > _INT_BITS:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            return super().repr_instance(x, level)
        except Exception:  # noqa: BLE001 - as in _scalar_text
            return f"<unprintable {type(x).__name__}>"


_REPRS: dict[int, _BoundedRepr] = {}


def _bounded_repr(limit: int) -> _BoundedRepr:
    """A reprlib renderer whose output stays near ``limit`` characters (cached per limit)."""
    renderer = _REPRS.get(limit)
    if renderer is None:
        renderer = _BoundedRepr()
        renderer.maxlevel = 2  # at most items**2 leaves of at most maxstring characters each
        items = max(1, min(10, limit // 4))
        renderer.maxdict = renderer.maxlist = renderer.maxtuple = items
        renderer.maxset = renderer.maxfrozenset = renderer.maxdeque = renderer.maxarray = items
        renderer.maxstring = renderer.maxother = renderer.maxlong = max(8, min(limit, 100))
        if len(_REPRS) < 64:
            _REPRS[limit] = renderer
    return renderer
