"""The session's dispatcher thread and its watchdog (wall-clock sessions only).

One dispatcher thread drains the inbox in batches: each batch is decoded
(parse, verify...) by a :class:`~pye2.service.decode_pool.DecodePool` (the
dispatcher plus helper threads), then applied (routing, user callbacks) by the
dispatcher alone, in arrival order. The watchdog notices a user callback
blocked longer than ``blocked_timeout``: it reports it, marks that callback
busy (later deliveries to it are skipped and counted until it returns) and
starts a fresh dispatcher thread, so delivery to every other callback goes
on. The decoded messages the blocked thread had not applied yet are kept in
the worker, not in the thread, so its successor applies them: none is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pye2.service.decode_pool import DEFAULT_DECODE_THREADS, DecodePool
from pye2.service.dispatch import Dispatcher
from pye2.service.inbox import Inbox
from pye2.service.stats import SessionStats

__all__ = ["DispatchWorker"]

log = logging.getLogger("pye2.session")


class DispatchWorker:
    """Runs ``apply(kind, item, decode((kind, item)))`` for every inbox item, on a replaceable thread.

    Args:
        inbox: where transport threads put ``(kind, item)``.
        decode: ``(kind, item) -> decoded``; thread-safe (runs on several threads).
        apply: ``(kind, item, decoded)``; runs on the dispatcher thread, in order.
        decode_threads: threads decoding each batch, the dispatcher's included.
    """

    def __init__(self, inbox: Inbox[tuple[str, Any]], decode: Callable[[tuple[str, Any]], Any],
                 apply: Callable[[str, Any, Any], None], dispatcher: Dispatcher, stats: SessionStats, *,
                 name: str, blocked_timeout: float = 10.0, decode_threads: int = DEFAULT_DECODE_THREADS) -> None:
        self.inbox = inbox
        self.apply = apply
        self.pool: DecodePool[tuple[str, Any], Any] = DecodePool(decode, decode_threads, name=name)
        self.dispatcher = dispatcher
        self.stats = stats
        self.name = name
        self.blocked_timeout = blocked_timeout
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._pending: deque[tuple[tuple[str, Any], Any]] = deque()
        self._turn = threading.Lock()  # generation check + taking the next pending item

    def start(self) -> None:
        """Start the dispatcher and the watchdog."""
        self._spawn()
        watchdog = threading.Thread(target=self._watch, name=f"pye2-watchdog-{self.name}", daemon=True)
        self._threads.append(watchdog)
        watchdog.start()

    def stop(self) -> None:
        """Close the inbox and join the threads (a thread stuck in user code is left behind)."""
        self.inbox.close()
        self._stop.set()
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(timeout=5)
        self.pool.close()

    def _spawn(self) -> None:
        with self._turn:
            self._generation += 1
            gen = self._generation
        t = threading.Thread(target=self._loop, args=(gen,), name=f"pye2-dispatch-{self.name}-{gen}", daemon=True)
        self._threads.append(t)
        t.start()

    def _next(self, generation: int) -> tuple[tuple[str, Any], Any] | None:
        with self._turn:
            if generation != self._generation or not self._pending:
                return None
            return self._pending.popleft()

    def _loop(self, generation: int) -> None:
        pending = self._pending
        while not self.inbox.closed and generation == self._generation:
            if not pending:
                batch = self.inbox.get_batch(256, timeout=0.5)
                if not batch:
                    continue
                decoded = self.pool.map(batch)
                with self._turn:  # (no callback runs while decoding, so this thread is still current)
                    pending.extend(zip(batch, decoded))
            while (entry := self._next(generation)) is not None:
                (kind, body), result = entry
                self.apply(kind, body, result)
        if generation != self._generation:
            # this thread was replaced while stuck in a callback; that callback may run again
            self.dispatcher.busy.clear()

    def _watch(self) -> None:
        limit = self.blocked_timeout
        while not self._stop.wait(min(limit / 4, 1.0)):
            current = self.dispatcher.current
            if current is not None and time.monotonic() - current[1] > limit:
                callback = current[0]
                log.error("user callback %s has been blocked for more than %.1f s; it is skipped until it "
                          "returns and delivery continues on a new dispatcher thread",
                          getattr(callback, "__qualname__", callback), limit)
                self.stats.bump("slow_callbacks")
                self.dispatcher.busy.add(id(callback))
                self.dispatcher.current = None
                self._spawn()
