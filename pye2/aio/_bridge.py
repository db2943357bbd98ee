"""The hand-over from the session's threads to the event loop, and the callbacks run there.

:class:`LoopBridge` is the one place where another thread reaches the loop:

* :meth:`LoopBridge.call` runs a function on the loop: at once when already on
  the loop's thread (a virtual-clock session processes messages there), else
  through ``loop.call_soon_threadsafe``. It never blocks.
* :meth:`LoopBridge.deliver` runs a user callback on the loop. Calls queue in
  order and are run in slices of about a millisecond (the loop is never held
  longer, however many are queued). A callback that returns an awaitable (an
  ``async def``) becomes a task of its own, started in message order; its
  exception is logged and counted (``stats.callback_errors``), as a plain
  callback's is. The calls queued for the loop are bounded (``backlog``):
  past it the session's dispatcher thread waits for room, so a loop that does
  not keep up makes the session's bounded inbox drop (and count,
  ``stats.dropped``) what does not fit, exactly as a slow callback does in the
  sync API; a loop stalled longer than the session's
  ``blocked_callback_timeout`` is reported by the session's watchdog like a
  blocked callback. Callback *tasks* are not bounded: they may await the
  session itself (a confirmation needs the dispatcher, so holding the
  dispatcher for them could stall both); to bound the work in flight, read a
  payload stream instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pye2.service.stats import SessionStats

__all__ = ["DEFAULT_BACKLOG", "LoopBridge", "relay"]

log = logging.getLogger("pye2.aio")

#: user callback calls queued for the loop before the dispatcher waits for room
DEFAULT_BACKLOG = 1000
#: the longest the loop runs queued callbacks before it lets other tasks run (seconds)
SLICE = 0.001


def _name(callback: Callable[..., Any]) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


class LoopBridge:
    """Runs functions and user callbacks on one event loop, from any thread (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stats: SessionStats, *, backlog: int = DEFAULT_BACKLOG) -> None:
        self.loop = loop
        self.stats = stats
        self.backlog = max(1, int(backlog))
        self.thread_id = threading.get_ident()  # built on the loop's thread (inside a coroutine)
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._room = threading.Condition()
        self._tasks = 0  # callback tasks still running
        self._scheduled = False
        self._closed = False
        self._live: set[asyncio.Future[Any]] = set()  # strong references: a task nobody holds may be collected
        #: called on the loop when a coroutine callback was started (the virtual-clock driver then lets it
        #: run before time moves on)
        self.on_task: Callable[[], None] | None = None

    @property
    def on_loop(self) -> bool:
        """True on the loop's own thread."""
        return threading.get_ident() == self.thread_id

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on the loop (now, when on its thread); dropped once the loop is closed."""
        if self.on_loop:
            fn()
            return
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed: nobody is left to hand anything to
            self._closed = True

    # -- user callbacks ------------------------------------------------------------------
    def deliver(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Run ``callback(*args)`` on the loop, in order with the other deliveries."""
        if self.on_loop:  # a virtual-clock session: messages are processed on the loop already
            self._invoke(callback, args)
            return
        with self._room:
            while len(self._queue) >= self.backlog and not self._closed:
                if self.loop.is_closed():  # asyncio.run ended without closing the session: nobody will drain
                    self._closed = True
                    break
                self._room.wait(0.5)
            if self._closed:
                return
            self._queue.append((callback, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            self.close()

    def _drain(self) -> None:
        """(On the loop.) Run queued callbacks for about :data:`SLICE` seconds, then yield to other tasks."""
        start = time.perf_counter()
        queue = self._queue
        while True:
            with self._room:
                if not queue or self._closed:
                    self._scheduled = False
                    self._room.notify_all()
                    return
                callback, args = queue.popleft()
                self._room.notify()
            self._invoke(callback, args)
            if time.perf_counter() - start >= SLICE:
                break
        self.loop.call_soon(self._drain)  # still scheduled: more to run after the loop's other work

    def _invoke(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """(On the loop.) Call; an awaitable result runs as a task. Errors are logged and counted, never raised."""
        try:
            result = callback(*args)
        except Exception:
            self.stats.bump("callback_errors")
            log.exception("user callback %s raised; delivery continues", _name(callback))
            return
        if inspect.isawaitable(result):
            self._track(asyncio.ensure_future(result), callback)
            if self.on_task is not None:
                self.on_task()

    def _track(self, task: asyncio.Future[Any], callback: Callable[..., Any]) -> None:
        with self._room:
            self._tasks += 1
        self._live.add(task)

        def done(finished: asyncio.Future[Any]) -> None:
            self._live.discard(finished)
            with self._room:
                self._tasks -= 1
                self._room.notify()
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                self.stats.bump("callback_errors")
                log.error("user callback %s raised; delivery continues", _name(callback),
                          exc_info=(type(error), error, error.__traceback__))

        task.add_done_callback(done)

    def pending(self) -> int:
        """Callback calls queued for the loop (not counting the callback tasks still running)."""
        with self._room:
            return len(self._queue)

    @property
    def running_tasks(self) -> int:
        """Coroutine callbacks started and not finished."""
        with self._room:
            return self._tasks

    async def settle(self) -> None:
        """Wait until every queued callback ran and every callback task finished (on the loop)."""
        while True:
            with self._room:
                idle = not self._queue and not self._scheduled
            tasks = list(self._live)
            if idle and not tasks:
                return
            if tasks:
                await asyncio.wait(tasks)
            else:
                await asyncio.sleep(0)

    def close(self) -> None:
        """Stop delivering: queued calls are dropped, waiting threads released, running tasks cancelled."""
        with self._room:
            self._closed = True
            dropped = len(self._queue)
            self._queue.clear()
            self._room.notify_all()
        if dropped:
            log.info("%d queued callback call(s) dropped: the async session closed", dropped)
        if self.on_loop:
            for task in list(self._live):
                task.cancel()


def relay(callback: Callable[..., Any], convert: Callable[[Any], Any],
          deliver: Callable[[Callable[..., Any], tuple[Any, ...]], None]) -> Callable[..., None]:
    """A sync callback for the session's dispatcher: converts its first argument and hands the call over.

    It keeps ``callback``'s signature (``functools.wraps``), so the custom-code adapter
    still tells two-argument callbacks from three-argument ones.
    """

    @functools.wraps(callback)
    def relayed(*args: Any) -> None:
        deliver(callback, (convert(args[0]), *args[1:]) if args else args)

    return relayed
