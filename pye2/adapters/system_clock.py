"""SystemClock: the Clock port on the real wall and monotonic clocks.

Features:

* ``time()`` is :func:`time.time`, ``monotonic()`` is :func:`time.monotonic`.
* ``call_later`` timers run on one daemon scheduler thread (a heap guarded by a
  Condition), started on first use; ``close()`` stops it and drops pending
  timers (a later ``call_later`` starts a fresh thread). A callback that
  raises is logged with its traceback; later timers still run. Callbacks run
  one at a time on that thread, so they must be short.
* ``wait_until(predicate, timeout, condition)`` blocks on
  ``condition.wait_for``: whoever changes what the predicate reads must notify
  that condition. Without one, the clock's own condition is used; wake it with
  :meth:`SystemClock.notify_all`. Nothing polls or sleeps.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections.abc import Callable

from pye2.errors import ConfigError

__all__ = ["SystemClock", "SystemTimer"]

log = logging.getLogger(__name__)


class SystemTimer:
    """Handle of a callback scheduled on a :class:`SystemClock`."""

    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Prevent the callback from running (idempotent; no effect once started)."""
        self.cancelled = True

    def __repr__(self) -> str:
        return f"<SystemTimer due={self.due:.3f}{' cancelled' if self.cancelled else ''}>"


class SystemClock:
    """Real time, with timers on one lazily started scheduler thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, SystemTimer]] = []
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._waiters = threading.Condition()

    def __repr__(self) -> str:
        return f"<SystemClock timers={len(self._heap)}>"

    def time(self) -> float:
        """Seconds since the epoch, from the wall clock."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    @property
    def condition(self) -> threading.Condition:
        """The condition ``wait_until`` uses when given none."""
        return self._waiters

    def notify_all(self) -> None:
        """Wake every ``wait_until`` call that waits on the clock's own condition."""
        with self._waiters:
            self._waiters.notify_all()

    def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float | None,
        condition: threading.Condition | None = None,
    ) -> bool:
        """Block until ``predicate()`` holds or ``timeout`` seconds pass; return its value.

        The predicate is re-checked each time ``condition`` (or, if None, the
        clock's own condition) is notified.
        """
        cond = self._waiters if condition is None else condition
        with cond:
            return cond.wait_for(predicate, timeout)

    def call_later(self, delay: float, callback: Callable[[], None]) -> SystemTimer:
        """Run ``callback`` on the scheduler thread ``delay`` seconds from now."""
        if not isinstance(delay, (int, float)) or not math.isfinite(delay):
            raise ConfigError(f"delay must be a finite number of seconds, got {delay!r}")
        timer = SystemTimer(time.monotonic() + max(float(delay), 0.0), callback)
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (timer.due, self._seq, timer))
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="pye2-clock", daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def close(self) -> None:
        """Stop the scheduler thread and drop pending timers (idempotent)."""
        with self._cond:
            thread = self._thread
            self._thread = None
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                timer = self._next_due_locked(me)
                if timer is None:
                    return
            try:
                timer.callback()
            except Exception:
                log.exception("system clock: timer callback %r failed", timer.callback)

    def _next_due_locked(self, me: threading.Thread) -> SystemTimer | None:
        """Wait (on the condition) for the next due, live timer; None when stopped."""
        while True:
            if self._stopping or self._thread is not me:
                return None
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                self._cond.wait()
                continue
            wait = self._heap[0][0] - time.monotonic()
            if wait > 0:
                self._cond.wait(wait)
                continue
            return heapq.heappop(self._heap)[2]
