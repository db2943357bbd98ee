"""The bounded inbox between transport threads and the session's dispatcher.

The single place threads meet: transport handlers call :meth:`Inbox.put`
(cheap, never blocks); the dispatcher calls :meth:`Inbox.get_batch`.

Two bounds, both enforced on every put: ``maxsize`` items and, when given,
``max_bytes`` bytes of queued items (``size_of(item)``, by default the length
of the bytes in the item, see :func:`body_size`). When an item does not fit,
the policy decides:

* ``"drop_oldest"`` (default): evict the oldest queued items until it fits;
  telemetry wants fresh data more than old data. When it is bytes that are
  short, the *bulky* queued items (at least 1/256 of the byte bound, 64 KiB at
  least) go first, oldest of them first: a flood of large messages then costs
  the ordinary small traffic nothing while there are large ones to shed. Items
  are always taken in arrival order.
* ``"drop_newest"``: refuse the arriving item.

An item larger than ``max_bytes`` on its own is always refused (evicting
everything would not make room). After :meth:`close`, puts are refused too,
and :meth:`discard` drops what is still queued.

Every item the inbox drops, for whatever reason, is passed to
``on_overflow`` exactly once and counted once in :attr:`Inbox.dropped`;
nothing is dropped silently (drops are logged, rate-limited). The inbox's
own counter is for its log lines and for tests: whoever keeps the message
accounting (the session's ``stats.dropped``) counts in ``on_overflow`` and
nowhere else, so a drop is never counted twice.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pye2.errors import ConfigError

__all__ = ["DEFAULT_MAX_BYTES", "POLICIES", "Inbox", "body_size"]

log = logging.getLogger(__name__)
T = TypeVar("T")
POLICIES = ("drop_oldest", "drop_newest")
#: the byte bound for a session's inbox (``inbox_bytes``; an Inbox itself has none unless given one)
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_LOG_EVERY = 1000  # after the first drop, one warning per this many
#: an item larger than max_bytes / BIG_SHARE that does not fit is refused instead of evicting older ones
BIG_SHARE = 16
#: queued items of at least max(BULKY_MIN, max_bytes / BULKY_SHARE) bytes are evicted first when bytes run short
BULKY_SHARE = 256
BULKY_MIN = 64 * 1024


def body_size(item: Any) -> int:
    """Bytes an inbox item holds: its length if bytes (or str), else the bytes directly in a tuple or list.

    ``(kind, body)`` counts ``len(body)`` (the kind is a shared constant); an
    item without bytes (``(kind, connection_event)``) counts 0.
    """
    if isinstance(item, (bytes, bytearray, str)):
        return len(item)
    if isinstance(item, memoryview):
        return item.nbytes
    if isinstance(item, (tuple, list)):
        total = 0
        for part in item:
            if isinstance(part, (bytes, bytearray)):
                total += len(part)
            elif isinstance(part, memoryview):
                total += part.nbytes
        return total
    return 0


class Inbox(Generic[T]):
    """A FIFO bounded in items and bytes, with an overflow policy and a condition to wait on.

    Args:
        maxsize: items queued at most.
        policy: ``"drop_oldest"`` or ``"drop_newest"`` (see the module doc).
        max_bytes: bytes queued at most (``size_of`` of each item); None: no byte bound.
        size_of: an item's size in bytes (default :func:`body_size`); called once per
            put, outside the lock.
        on_overflow: called with every dropped item, once, outside the lock, on the
            thread that put the item (or called :meth:`discard`).

    Attributes:
        dropped: items dropped so far (evicted, refused, refused after close, discarded).
        high_water: the most items queued at once.
    """

    def __init__(
        self,
        maxsize: int = 100_000,
        policy: str = "drop_oldest",
        *,
        max_bytes: int | None = None,
        size_of: Callable[[T], int] | None = None,
        on_overflow: Callable[[T], None] | None = None,
    ) -> None:
        if maxsize <= 0:
            raise ConfigError("inbox size must be positive")
        if policy not in POLICIES:
            raise ConfigError(f"unknown inbox policy {policy!r}; choose one of {', '.join(POLICIES)}")
        if max_bytes is not None and max_bytes <= 0:
            raise ConfigError("inbox byte bound must be positive")
        self.maxsize = maxsize
        self.policy = policy
        self.max_bytes = max_bytes
        self._size_of: Callable[[T], int] = size_of if size_of is not None else body_size
        #: items of at least this many bytes are "bulky": short of bytes, they are evicted first
        self.bulky_bytes: int | None = None if max_bytes is None else max(BULKY_MIN, max_bytes // BULKY_SHARE)
        # two FIFO lanes of (arrival number, item, size): taken in arrival order across both
        self._small: deque[tuple[int, T, int]] = deque()
        self._bulky: deque[tuple[int, T, int]] = deque()
        self._seq = 0
        self._count = 0
        self._bytes = 0
        self._cond = threading.Condition()
        self._closed = False
        self._on_overflow = on_overflow
        self.dropped = 0
        self.high_water = 0
        self._drops: dict[str, int] = {}  # per reason (full, too_large, closed), for the log lines

    def put(self, item: T) -> bool:
        """Queue ``item``; False if it was refused or older items were evicted for it."""
        size = self._size_of(item)
        limit = self.max_bytes
        with self._cond:  # (every branch decides under the lock; drops are reported after it)
            if not self._closed and self._count < self.maxsize and (limit is None or self._bytes + size <= limit):
                self._append(item, size)
                return True
            dropped: list[T] = []
            why = "full"
            if self._closed:
                dropped.append(item)
                why = "closed"
            elif limit is not None and size > limit:
                dropped.append(item)
                why = "too_large"
            elif self.policy == "drop_newest":
                dropped.append(item)
            elif limit is not None and size > limit // BIG_SHARE and self._bytes + size > limit:
                # a big message that does not fit is refused, rather than evicting many small ones for it:
                # a flood of big messages must not push out the ordinary traffic queued before it
                dropped.append(item)
                why = "big"
            else:
                while self._count and (self._count >= self.maxsize or (limit is not None and self._bytes + size > limit)):
                    # short of bytes: the bulkiest queued messages go first (oldest of them first), so
                    # a flood of large messages costs few of the small ones; short of slots: the oldest
                    bulky = self._count < self.maxsize and bool(self._bulky)
                    dropped.append(self._pop(self._bulky if bulky else self._oldest_lane()))
                self._append(item, size)
            self.dropped += len(dropped)
            before = self._drops.get(why, 0)
            count = self._drops[why] = before + len(dropped)
            report = before == 0 or count // _LOG_EVERY > before // _LOG_EVERY
        if report:
            self._log_drop(why, size, count)
        self._report(dropped)
        return False

    def _report(self, dropped: list[T]) -> None:
        """Each dropped item to ``on_overflow``, once (one that raises does not stop the others)."""
        callback = self._on_overflow
        if callback is None:
            return
        for lost in dropped:
            try:
                callback(lost)
            except Exception:
                log.exception("inbox on_overflow callback raised")

    def _append(self, item: T, size: int) -> None:
        """(Under the lock.)"""
        self._seq += 1
        lane = self._bulky if self.bulky_bytes is not None and size >= self.bulky_bytes else self._small
        lane.append((self._seq, item, size))
        self._bytes += size
        self._count += 1
        self.high_water = max(self.high_water, self._count)
        self._cond.notify()

    def _oldest_lane(self) -> deque[tuple[int, T, int]]:
        """(Under the lock, not empty.) The lane whose first item arrived first."""
        small, bulky = self._small, self._bulky
        if not bulky or (small and small[0][0] < bulky[0][0]):
            return small
        return bulky

    def _pop(self, lane: deque[tuple[int, T, int]]) -> T:
        """(Under the lock.)"""
        _, item, size = lane.popleft()
        self._bytes -= size
        self._count -= 1
        return item

    def _log_drop(self, why: str, size: int, count: int) -> None:
        """The first drop of each kind, then one line per thousand."""
        if why == "closed":
            log.info("inbox closed: %d message(s) that arrived since were dropped", count)
        elif why == "too_large":
            log.warning("inbox: a message of %d bytes is larger than the inbox's byte bound (%d bytes); "
                        "%d such message(s) dropped so far", size, self.max_bytes, count)
        else:
            log.warning("inbox full (%d items%s): %d message(s) dropped so far (policy %s)", self.maxsize,
                        "" if self.max_bytes is None else f" or {self.max_bytes} bytes", count, self.policy)

    def get_batch(self, max_items: int = 256, timeout: float | None = None) -> list[T]:
        """Up to ``max_items`` items; waits up to ``timeout`` for the first one."""
        with self._cond:
            if not self._count and not self._closed:
                self._cond.wait_for(lambda: bool(self._count) or self._closed, timeout)
            n = min(max_items, self._count)
            if n == self._count:
                return self._take_all()
            if not self._bulky:
                small = self._small
                batch = [small.popleft() for _ in range(n)]
                self._bytes -= sum(entry[2] for entry in batch)
                self._count -= n
                return [entry[1] for entry in batch]
            return [self._pop(self._oldest_lane()) for _ in range(n)]

    def drain(self) -> list[T]:
        """Everything queued now (no waiting)."""
        with self._cond:
            return self._take_all()

    def _take_all(self) -> list[T]:
        """(Under the lock.) Everything, in arrival order."""
        small, bulky = self._small, self._bulky
        if bulky:
            entries = sorted((*small, *bulky), key=lambda entry: entry[0])
        else:
            entries = list(small)
        small.clear()
        bulky.clear()
        self._bytes = 0
        self._count = 0
        return [entry[1] for entry in entries]

    def discard(self) -> int:
        """Drop everything still queued (each item to ``on_overflow``); how many were dropped.

        For a consumer that stops for good: what it will never take is counted
        as dropped instead of staying queued forever.
        """
        with self._cond:
            dropped = self._take_all()
            self.dropped += len(dropped)
        if dropped:
            log.info("inbox: %d queued message(s) dropped (no longer read)", len(dropped))
            self._report(dropped)
        return len(dropped)

    def close(self) -> None:
        """Wake waiters; later puts are refused (and reported as dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def bytes(self) -> int:
        """Bytes queued now (the sum of ``size_of`` over the queued items)."""
        return self._bytes

    def __len__(self) -> int:
        return self._count
