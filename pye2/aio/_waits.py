"""Waiting on a session's clock from asyncio: ``await until(ready, timeout)``.

Two implementations, one per kind of session (the sync session's own rule:
a :class:`~pye2.adapters.system_clock.SystemClock` means threads):

* :class:`ThreadedWaits` (wall clock, real brokers): the transport and the
  dispatcher run on their own threads; whatever may make a waiter ready
  (a message was routed, a confirmation settled, a stream got an item)
  calls :meth:`ThreadedWaits.poke` from that thread, which re-checks the
  waiters on the loop through one ``call_soon_threadsafe`` (coalesced: one
  pending check at a time, none when nobody waits). Timeouts are the loop's
  own ``call_later``.
* :class:`VirtualWaits` (the simulated network's virtual clock, no threads):
  nothing moves unless someone advances the clock. As in the sync API, time
  moves while someone waits: while any waiter is pending, one driver task
  per clock and loop runs the clock's timers one by one (messages are
  delivered and processed as they fall due, on the loop's thread) and
  re-checks the waiters after each. It gives the loop back every
  :data:`SLICE` seconds of work and whenever a waiter becomes ready, so the
  woken task runs before time moves on, and other tasks and timers keep
  running: the loop is never held for longer than one slice plus one timer.
  A coroutine callback started by a timer gets to run (up to its first
  await) before the next timer does. A timeout is a deadline in virtual seconds: with no timer due before it,
  time jumps to it. When nobody waits, virtual time stands still (an
  ``asyncio.sleep`` does not move it; ``await session.sleep(s)`` does).
  With no timer left and no deadline, a waiter gets False at once, as
  ``VirtualClock.run_until`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["SLICE", "ThreadedWaits", "VirtualWaits"]

log = logging.getLogger("pye2.aio")

#: the longest the virtual-clock driver runs timers before it lets the loop run other tasks (seconds)
SLICE = 0.0005

Ready = Callable[[], bool]


class ThreadedWaits:
    """Waiters on a wall-clock session, woken by :meth:`poke` from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_loop: Callable[[], bool]) -> None:
        self.loop = loop
        self._on_loop = on_loop
        self._waiters: dict[int, tuple[Ready, asyncio.Future[bool]]] = {}
        self._scheduled = False

    def pending(self) -> int:
        """Waiters not settled yet."""
        return len(self._waiters)

    async def until(self, ready: Ready, timeout: float | None) -> bool:
        """True once ``ready()`` holds; False after ``timeout`` seconds (None: no limit)."""
        if ready():
            return True
        fut: asyncio.Future[bool] = self.loop.create_future()
        key = id(fut)
        self._waiters[key] = (ready, fut)
        timer = None
        if timeout is not None:
            def expire() -> None:
                if not fut.done():
                    fut.set_result(bool(ready()))

            timer = self.loop.call_later(max(0.0, timeout), expire)
        try:
            if ready():  # settled between the first check and the registration
                return True
            return await fut
        finally:
            self._waiters.pop(key, None)
            if timer is not None:
                timer.cancel()

    def poke(self) -> None:
        """Something changed (any thread): re-check the waiters on the loop."""
        if not self._waiters or self._scheduled:
            return
        if self._on_loop():
            self._check()
            return
        self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._check)
        except RuntimeError:  # the loop is closed
            self._scheduled = False

    def _check(self) -> None:
        self._scheduled = False
        for ready, fut in list(self._waiters.values()):
            if not fut.done() and ready():
                fut.set_result(True)

    def close(self) -> None:
        """Settle every waiter with its condition's value now (the session is closing)."""
        for ready, fut in list(self._waiters.values()):
            if not fut.done():
                fut.set_result(bool(ready()))


class _Waiter:
    __slots__ = ("deadline", "fut", "ready")

    def __init__(self, ready: Ready, deadline: float, fut: asyncio.Future[bool]) -> None:
        self.ready = ready
        self.deadline = deadline
        self.fut = fut


_drivers: weakref.WeakKeyDictionary[Any, VirtualWaits] = weakref.WeakKeyDictionary()


class VirtualWaits:
    """Waiters on a virtual clock, and the task that advances it while any is pending (module docstring)."""

    @classmethod
    def for_clock(cls, clock: Any, loop: asyncio.AbstractEventLoop) -> VirtualWaits:
        """The one driver of ``clock`` on ``loop`` (sessions sharing a simulated network share it)."""
        found = _drivers.get(clock)
        if found is None or found.loop is not loop or loop.is_closed():
            found = _drivers[clock] = cls(clock, loop)
        return found

    def __init__(self, clock: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.clock = clock
        self.loop = loop
        self.thread_id = threading.get_ident()  # built on the loop's thread
        self._waiters: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self._woke = False
        #: timers the driver ran, and the longest stretch it held the loop (seconds of wall time, and of
        #: this thread's CPU time: the difference is time the process was not running at all), for reports
        self.steps = 0
        self.longest_slice = 0.0
        self.longest_slice_cpu = 0.0

    def pending(self) -> int:
        """Waiters not settled yet."""
        return len(self._waiters)

    async def until(self, ready: Ready, timeout: float | None) -> bool:
        """Advance virtual time until ``ready()`` holds (True) or ``timeout`` virtual seconds pass (False)."""
        if ready():
            return True
        deadline = math.inf if timeout is None else self.clock.monotonic() + max(0.0, float(timeout))
        waiter = _Waiter(ready, deadline, self.loop.create_future())
        self._waiters.append(waiter)
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._drive(), name="pye2-virtual-clock")
        try:
            return await waiter.fut
        finally:
            if waiter in self._waiters:  # cancelled: time no longer moves for it
                self._waiters.remove(waiter)

    def poke(self) -> None:
        """Something changed (a stream got a payload or closed...): settle who is ready now, on the loop."""
        if not self._waiters:
            return
        if threading.get_ident() == self.thread_id:
            self._settle()
            return
        try:
            self.loop.call_soon_threadsafe(self._settle)
        except RuntimeError:  # the loop is closed
            pass

    def hold(self) -> None:
        """(On the loop.) Let the loop run before time moves on (a coroutine callback was just started)."""
        self._woke = True

    def _settle(self) -> bool:
        """Resolve waiters that are ready or past their deadline; True if any was."""
        now = self.clock.monotonic()
        kept: list[_Waiter] = []
        woke = False
        for waiter in self._waiters:
            if waiter.fut.done():
                continue
            if waiter.ready():
                waiter.fut.set_result(True)
                woke = True
            elif now >= waiter.deadline:
                waiter.fut.set_result(False)
                woke = True
            else:
                kept.append(waiter)
        self._waiters[:] = kept
        self._woke = self._woke or woke
        return woke

    def _step(self) -> bool:
        """Run the next timer, or jump to the nearest deadline; False if neither exists (waiters get False)."""
        deadline = min((w.deadline for w in self._waiters), default=math.inf)
        due = self.clock.next_due()
        if due is not None and due <= deadline:
            self.clock.step()
            self.steps += 1
            return True
        if deadline != math.inf:
            self.clock.advance(max(0.0, deadline - self.clock.monotonic()))
            return True
        log.info("virtual clock: no timer left and no deadline; %d waiter(s) get False", len(self._waiters))
        for waiter in self._waiters:
            if not waiter.fut.done():
                waiter.fut.set_result(bool(waiter.ready()))
        self._waiters.clear()
        return False

    async def _drive(self) -> None:
        """Advance the clock while anyone waits, a slice at a time."""
        while self._waiters:
            start, cpu = time.perf_counter(), time.thread_time()
            self._woke = False
            while self._waiters and not self._settle() and not self._woke:
                if not self._step() or time.perf_counter() - start >= SLICE:
                    break
            self.longest_slice = max(self.longest_slice, time.perf_counter() - start)
            self.longest_slice_cpu = max(self.longest_slice_cpu, time.thread_time() - cpu)
            await asyncio.sleep(0)  # the woken tasks (and everyone else) run before time moves on

    def close(self) -> None:
        """Settle every waiter with its condition's value now (the session is closing)."""
        for waiter in self._waiters:
            if not waiter.fut.done():
                waiter.fut.set_result(bool(waiter.ready()))
        self._waiters.clear()
