"""The bounded inbox between transport threads and the session's dispatcher.

The single place threads meet: transport handlers call :meth:`Inbox.put`
(cheap, never blocks); the dispatcher calls :meth:`Inbox.get_batch`. When
the inbox is full the policy decides, and every overflow is counted and
logged (rate-limited), never silent:

* ``"drop_oldest"`` (default): evict the oldest queued message; telemetry
  wants fresh data more than old data.
* ``"drop_newest"``: refuse the arriving message.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from pye2.errors import ConfigError

__all__ = ["POLICIES", "Inbox"]

log = logging.getLogger(__name__)
T = TypeVar("T")
POLICIES = ("drop_oldest", "drop_newest")


class Inbox(Generic[T]):
    """A bounded FIFO with an overflow policy and a condition to wait on."""

    def __init__(
        self,
        maxsize: int = 100_000,
        policy: str = "drop_oldest",
        *,
        on_overflow: Callable[[T], None] | None = None,
    ) -> None:
        if maxsize <= 0:
            raise ConfigError("inbox size must be positive")
        if policy not in POLICIES:
            raise ConfigError(f"unknown inbox policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.maxsize = maxsize
        self.policy = policy
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._on_overflow = on_overflow
        self.dropped = 0
        self.high_water = 0

    def put(self, item: T) -> bool:
        """Queue ``item``; returns False if the item (or an older one) was dropped."""
        dropped: T | None = None
        with self._cond:
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                self.dropped += 1
                if self.policy == "drop_newest":
                    dropped = item
                else:
                    dropped = self._items.popleft()
                    self._items.append(item)
            else:
                self._items.append(item)
            size = len(self._items)
            self.high_water = max(self.high_water, size)
            self._cond.notify()
        if dropped is not None:
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("inbox full (%d): %d message(s) dropped so far (policy %s)",
                            self.maxsize, self.dropped, self.policy)
            if self._on_overflow is not None:
                self._on_overflow(dropped)
            return False
        return True

    def get_batch(self, max_items: int = 256, timeout: float | None = None) -> list[T]:
        """Up to ``max_items`` items; waits up to ``timeout`` for the first one."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout)
            n = min(max_items, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def drain(self) -> list[T]:
        """Everything queued now (no waiting)."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        """Wake waiters; later puts are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
