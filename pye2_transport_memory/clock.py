"""VirtualClock: simulated time that only moves when told, implementing the Clock port.

Features:

* ``time()`` starts at a fixed epoch (``start``, default 2023-11-14T22:13:20Z)
  and ``monotonic()`` at 0.0; both move together and only through
  :meth:`~VirtualClock.advance`, :meth:`~VirtualClock.step` or
  :meth:`~VirtualClock.run_until`, so a simulated hour takes milliseconds.
* ``call_later`` timers run in due-time order, FIFO among equal due times, with
  the clock set to each timer's due time while it runs; timers scheduled by
  timers run in the same ``advance`` if they fall due within its window.
* ``run_until(predicate, timeout)`` jumps from timer to timer, never spins: with
  no timer due before the deadline it moves to the deadline (or, without a
  timeout, stays put) and returns the predicate's value at once.
* A timer callback that raises is logged with its traceback and counted in
  ``timer_errors``; later timers still run.
* Thread-safe (one lock for the timer heap, one re-entrant lock so a single
  thread runs timers at a time) and deterministic when driven by one thread.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections.abc import Callable

from pye2.errors import ConfigError

__all__ = ["DEFAULT_EPOCH", "VirtualClock", "VirtualTimer"]

log = logging.getLogger(__name__)

DEFAULT_EPOCH = 1_700_000_000.0


class VirtualTimer:
    """Handle of a callback scheduled on a :class:`VirtualClock`."""

    __slots__ = ("_cancelled", "_clock", "_done", "callback", "due")

    def __init__(self, clock: VirtualClock, due: float, callback: Callable[[], None]) -> None:
        self._clock = clock
        self.due = due
        self.callback = callback
        self._cancelled = False
        self._done = False

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called before the timer ran."""
        return self._cancelled

    @property
    def done(self) -> bool:
        """True once the callback has been started."""
        return self._done

    def cancel(self) -> None:
        """Prevent the callback from running (idempotent; no effect once run)."""
        self._clock._cancel(self)

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "done" if self._done else "pending"
        return f"<VirtualTimer due={self.due:.3f} {state}>"


class VirtualClock:
    """A Clock whose time only moves when the owner advances it."""

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        if not math.isfinite(start):
            raise ConfigError(f"start must be a finite number, got {start!r}")
        self._start = float(start)
        self._now = 0.0  # monotonic reading
        self._lock = threading.Lock()
        self._run_lock = threading.RLock()
        self._heap: list[tuple[float, int, VirtualTimer]] = []
        self._seq = 0
        self._live = 0
        self.timer_errors = 0

    def __repr__(self) -> str:
        return f"<VirtualClock monotonic={self._now:.3f} pending={self._live}>"

    # -- Clock port ------------------------------------------------------------------

    # Readers take no lock: ``_now`` is one float, replaced whole under the lock by the runner.
    def time(self) -> float:
        """Seconds since the epoch: ``start`` plus the simulated time elapsed."""
        return self._start + self._now

    def monotonic(self) -> float:
        """Simulated seconds elapsed since the clock was built."""
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> VirtualTimer:
        """Run ``callback`` when the clock reaches now + ``delay`` (negative means now)."""
        if not isinstance(delay, (int, float)) or not math.isfinite(delay):
            raise ConfigError(f"delay must be a finite number of seconds, got {delay!r}")
        delay = float(delay)
        with self._lock:
            timer = VirtualTimer(self, self._now + max(0.0, delay), callback)
            self._seq += 1
            heapq.heappush(self._heap, (timer.due, self._seq, timer))
            self._live += 1
            return timer

    def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float | None,
        condition: threading.Condition | None = None,
    ) -> bool:
        """Same as :meth:`run_until`; ``condition`` is unused (nothing runs behind our back)."""
        return self.run_until(predicate, timeout)

    # -- driving -----------------------------------------------------------------------

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``, running every timer due on the way.

        Returns the number of timers run. Time ends exactly at now + ``seconds``.
        """
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"seconds must be a finite number >= 0, got {seconds!r}")
        with self._run_lock:
            with self._lock:
                target = self._now + seconds
            ran = 0
            while self._run_next(target):
                ran += 1
            self._move_to(target)
            return ran

    def step(self) -> bool:
        """Jump to the next timer and run it; False (time unchanged) if none is pending."""
        with self._run_lock:
            return self._run_next(math.inf)

    def run_until(self, predicate: Callable[[], bool], timeout: float | None = None, max_steps: int = 100_000) -> bool:
        """Run timers one by one until ``predicate()`` holds; return its final value.

        Stops when the next timer lies beyond ``timeout`` simulated seconds (time
        is then set to the deadline), when no timer is left (time unchanged if
        ``timeout`` is None), or after ``max_steps`` timers (logged).
        """
        if timeout is not None and (not isinstance(timeout, (int, float)) or math.isnan(timeout)):
            raise ConfigError(f"timeout must be a number of seconds or None, got {timeout!r}")
        with self._run_lock:
            deadline = math.inf if timeout is None else self.monotonic() + max(float(timeout), 0.0)
            for _ in range(max_steps):
                if predicate():
                    return True
                if not self._run_next(deadline):
                    if deadline != math.inf:
                        self._move_to(deadline)
                    return predicate()
            log.warning("run_until: predicate still false after %d timers", max_steps)
            return predicate()

    # -- introspection -------------------------------------------------------------------

    def pending(self) -> int:
        """Number of timers scheduled and not yet run or cancelled."""
        with self._lock:
            return self._live

    def next_due(self) -> float | None:
        """Monotonic time of the next pending timer, or None."""
        with self._lock:
            self._discard_cancelled()
            return self._heap[0][0] if self._heap else None

    # -- internals -------------------------------------------------------------------------

    def _cancel(self, timer: VirtualTimer) -> None:
        with self._lock:
            if not timer._cancelled and not timer._done:
                timer._cancelled = True
                self._live -= 1

    def _discard_cancelled(self) -> None:
        # Caller holds the lock; cancelled timers are dropped lazily from the heap top.
        while self._heap and self._heap[0][2]._cancelled:
            heapq.heappop(self._heap)

    def _move_to(self, when: float) -> None:
        with self._lock:
            self._now = max(self._now, when)

    def _run_next(self, limit: float) -> bool:
        """Pop the first timer due at or before ``limit`` and run it; False if none."""
        with self._lock:
            self._discard_cancelled()
            if not self._heap or self._heap[0][0] > limit:
                return False
            due, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, due)
            timer._done = True
            self._live -= 1
        try:
            timer.callback()
        except Exception:
            self.timer_errors += 1
            log.exception("virtual clock: timer callback %r failed", timer.callback)
        return True
