"""A bounded memory of what was logged recently, so a sender cannot flood the log (or the memory).

:class:`LogLimiter` answers "may this line be logged now?" per key (say
``(sender, reason)``): yes once per ``interval`` seconds per key. Keys come
from the wire, so what it stores is bounded whatever they are:

* at most ``max_keys`` keys, least recently used forgotten first;
* each key small: a tuple of at most :data:`MAX_PARTS` strings of at most
  :data:`SHORT` characters is kept as is; anything else (a longer string, a
  megabyte of bytes, a container, more parts) is reduced to an 8-byte
  BLAKE2b digest of a bounded rendering (its head, tail and length), so
  deriving a key costs the same for a 1 KB and a 1 GB value. Two values that
  differ only in their middle share a key: they are then limited together,
  which errs on the side of fewer lines.

The caller passes ``now`` (any monotonic-enough clock: the session's clock,
virtual or real). A clock that steps back allows the line.

Thread-safety: every call takes a lock, so any number of threads may share
one limiter; callers on hot paths are expected to reach it only when they
are about to log (it is cheap, but not free).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from pye2.domain.logtext import clip

__all__ = ["MAX_PARTS", "SHORT", "LogLimiter"]

#: strings up to this many characters are kept in keys as they are
SHORT = 64
#: key tuples up to this many parts (all short strings) are kept as they are
MAX_PARTS = 4
_HEAD = 2048  # characters (or bytes) of a long part's head and tail that go into its digest

Key = tuple[str, ...] | bytes


class LogLimiter:
    """Allow one log line per key per ``interval`` seconds, remembering at most ``max_keys`` keys.

    Attributes:
        suppressed: lines refused so far (all keys).
    """

    def __init__(self, max_keys: int = 1024, interval: float = 60.0) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        if interval < 0:
            raise ValueError("interval must not be negative")
        self.max_keys = max_keys
        self.interval = interval
        self.suppressed = 0
        self._last: OrderedDict[Key, float] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key_parts: tuple[object, ...], now: float) -> bool:
        """True if no line with this key was allowed in the last ``interval`` seconds (then it is noted)."""
        key = make_key(key_parts)
        with self._lock:
            last = self._last.get(key)
            if last is not None:
                self._last.move_to_end(key)
                if 0 <= now - last < self.interval:
                    self.suppressed += 1
                    return False
            self._last[key] = now
            if len(self._last) > self.max_keys:
                self._last.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._last)

    def stored_keys(self) -> list[Key]:
        """The keys remembered now, least recently used first (for tests and debugging)."""
        with self._lock:
            return list(self._last)


def make_key(key_parts: tuple[object, ...]) -> Key:
    """The stored form of a key: the parts themselves when short strings, else an 8-byte digest."""
    if len(key_parts) <= MAX_PARTS and all(type(p) is str and len(p) <= SHORT for p in key_parts):
        return key_parts  # type: ignore[return-value]  # (checked: all short str)
    digest = hashlib.blake2b(digest_size=8)
    for part in key_parts:
        digest.update(_bounded_bytes(part))
        digest.update(b"\x00\xff")  # separator no UTF-8 rendering contains
    return digest.digest()


def _bounded_bytes(part: object) -> bytes:
    """At most about 8 KB standing for ``part``: type, length, head and tail."""
    if isinstance(part, str):
        size = len(part)
        text = part if size <= 2 * _HEAD else part[:_HEAD] + part[-_HEAD:]
        return b"s%d:" % size + text.encode("utf-8", "surrogatepass")
    if isinstance(part, (bytes, bytearray, memoryview)):
        view = memoryview(part)
        size = view.nbytes
        try:
            view = view.cast("B")
        except TypeError:
            return b"m%d:" % size + view[:_HEAD].tobytes()
        if size <= 2 * _HEAD:
            return b"b%d:" % size + view.tobytes()
        return b"b%d:" % size + view[:_HEAD].tobytes() + view[-_HEAD:].tobytes()
    text = clip(part, _HEAD)  # bounded whatever the object
    return b"o" + type(part).__qualname__.encode() + b":" + text.encode("utf-8", "surrogatepass")
