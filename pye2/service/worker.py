"""The session's dispatcher thread and its watchdog (wall-clock sessions only).

One dispatcher thread drains the inbox in batches: each batch is decoded
(parse, verify...) by a :class:`~pye2.service.decode_pool.DecodePool` (the
dispatcher plus helper threads), then applied (routing, user callbacks) by the
dispatcher alone, in arrival order.

With a :class:`~pye2.service.verify_workers.VerifyPool`, signatures are
checked in worker processes one step ahead: the bodies of the next batches
(up to as many as there are processes, taken from what is already queued,
also what arrived while waiting for the current batch's verdicts) are
submitted before the current batch is decoded, so the processes verify while
this thread parses and applies. The decoder then receives
``(kind, body, verdict)`` instead of ``(kind, body)``; ``verdict`` is None
for items that are not bytes (connection events) and for batches of fewer
than 16 messages, which the engine checks itself: such batches come when the
dispatcher keeps up, and for them the round trip costs more than the check.

The watchdog notices a user callback blocked longer than ``blocked_timeout``:
it reports it, marks that callback busy (later deliveries to it are skipped
and counted until it returns) and starts a fresh dispatcher thread, so
delivery to every other callback goes on. The decoded messages the blocked
thread had not applied yet, and the batches submitted for verification, are
kept in the worker, not in the thread, so its successor applies them: none is
lost. When the inbox closes, the batches already submitted are still decoded
and applied.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pye2.service.decode_pool import DEFAULT_DECODE_THREADS, DecodePool
from pye2.service.dispatch import Dispatcher
from pye2.service.inbox import Inbox
from pye2.service.stats import SessionStats

if TYPE_CHECKING:
    from pye2.service.verify_workers import Verdict, VerifyHandle, VerifyPool

__all__ = ["DispatchWorker"]

log = logging.getLogger("pye2.session")

_BATCH = 256
_SEND_AT_LEAST = 16  # smaller batches are verified by the dispatcher (see DispatchWorker._submit)
Batch = list[tuple[str, Any]]


class DispatchWorker:
    """Runs ``apply(kind, item, decode((kind, item)))`` for every inbox item, on a replaceable thread.

    Args:
        inbox: where transport threads put ``(kind, item)``.
        decode: ``(kind, item) -> decoded``, or ``(kind, item, verdict)`` with a
            ``verifier``; thread-safe (runs on several threads).
        apply: ``(kind, item, decoded)``; runs on the dispatcher thread, in order.
        decode_threads: threads decoding each batch, the dispatcher's included.
        verifier: checks the signatures of ``bytes`` items in worker processes,
            ahead of decoding (closed by :meth:`stop`).
    """

    def __init__(self, inbox: Inbox[tuple[str, Any]], decode: Callable[[tuple[Any, ...]], Any],
                 apply: Callable[[str, Any, Any], None], dispatcher: Dispatcher, stats: SessionStats, *,
                 name: str, blocked_timeout: float = 10.0, decode_threads: int = DEFAULT_DECODE_THREADS,
                 verifier: VerifyPool | None = None) -> None:
        self.inbox = inbox
        self.apply = apply
        self.pool: DecodePool[tuple[Any, ...], Any] = DecodePool(decode, decode_threads, name=name)
        self.verifier = verifier
        self._ahead: deque[tuple[Batch, VerifyHandle | None]] = deque()  # submitted for verification, in order
        self._depth = verifier.size if verifier is not None else 0
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
        """Close the inbox and join the threads (a thread stuck in user code is left behind).

        The verify workers stop first: batches still with them are verified by the
        dispatcher itself, so it never waits on a process that is going away.
        Batches already taken from the inbox are still applied; what is still
        queued in the inbox is left there: the owner calls ``inbox.discard()``
        after this to count it as dropped (through the inbox's ``on_overflow``).
        """
        self.inbox.close()
        self._stop.set()
        if self.verifier is not None:
            self.verifier.close()
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
        while generation == self._generation:
            if not pending:
                taken = self._take()
                if taken is None:
                    break
                batch, items = taken
                if not batch:
                    continue
                decoded = self.pool.map(items)
                with self._turn:  # (no callback runs while decoding, so this thread is still current)
                    pending.extend(zip(batch, decoded))
            while (entry := self._next(generation)) is not None:
                (kind, body), result = entry
                self.apply(kind, body, result)
        if generation != self._generation:
            # this thread was replaced while stuck in a callback; that callback may run again
            self.dispatcher.busy.clear()

    def _take(self) -> tuple[Batch, Sequence[tuple[Any, ...]]] | None:
        """The next batch and what to decode for it; None once the inbox is closed and nothing is left."""
        verifier = self.verifier
        inbox = self.inbox
        if verifier is None:
            if inbox.closed:
                return None
            batch = inbox.get_batch(_BATCH, timeout=0.5)
            return batch, batch
        ahead = self._ahead
        if not ahead:
            if inbox.closed:
                return None
            batch = inbox.get_batch(_BATCH, timeout=0.5)
            if not batch:
                return batch, []
            ahead.append((batch, self._submit(verifier, batch)))
        self._top_up(verifier)
        batch, handle = ahead[0]
        try:
            verdicts: list[Verdict] | None = handle.result() if handle is not None else None
        except Exception:  # never expected (the pool falls back itself); then the engine checks each message
            log.exception("verify workers failed on a batch: checking its signatures here")
            verdicts = None
        ahead.popleft()
        self._top_up(verifier)  # what arrived while we waited is verified while we decode this batch
        return batch, _with_verdicts(batch, verdicts)

    @staticmethod
    def _submit(verifier: VerifyPool, batch: Batch) -> VerifyHandle | None:
        """Hand the batch's bodies to the processes; None for a small batch, checked here instead.

        A batch is small when the dispatcher keeps up (the inbox held little): then the
        round trip to a process costs more than the check, and checking here makes the
        next batches larger until they are worth sending again.
        """
        bodies = _bodies(batch)
        return verifier.submit(bodies) if len(bodies) >= _SEND_AT_LEAST else None

    def _top_up(self, verifier: VerifyPool) -> None:
        """Submit what is queued now (no waiting), up to ``depth`` batches beyond the current one."""
        ahead = self._ahead
        inbox = self.inbox
        while len(ahead) <= self._depth and not inbox.closed:
            more = inbox.get_batch(_BATCH, timeout=0)
            if not more:
                return
            ahead.append((more, self._submit(verifier, more)))

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


def _bodies(batch: Batch) -> list[bytes]:
    return [body for _, body in batch if type(body) is bytes]


def _with_verdicts(batch: Batch, verdicts: list[Verdict] | None) -> list[tuple[Any, ...]]:
    """``(kind, body, verdict)`` per item; items that were not submitted (not bytes) get None."""
    if verdicts is None:
        return [(kind, body, None) for kind, body in batch]
    if len(verdicts) == len(batch):
        return [(kind, body, verdict) for (kind, body), verdict in zip(batch, verdicts)]
    it = iter(verdicts)
    return [(kind, body, next(it) if type(body) is bytes else None) for kind, body in batch]
