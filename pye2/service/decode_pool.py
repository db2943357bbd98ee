"""DecodePool: decode a batch of received messages on several threads, results in batch order.

Decoding a message (parse, canonical text, SHA-256, ECDSA, heartbeat inflate)
is most of a session's work, and its longest parts — libsecp256k1's verify,
zlib, SHA-256 of large texts — run without the GIL. Splitting each batch
between the dispatcher thread and ``threads - 1`` helper threads lets those
parts of one message overlap with the Python parts of another, on another
core. Routing and user callbacks stay on the one dispatcher thread, in the
order the messages arrived; only ``decode`` runs concurrently, so it must be
thread-safe (``ProtocolEngine.receive`` is: it only reads shared state, and
its two caches tolerate concurrent writers).

``decode`` must not raise; if it does anyway, the exception is returned in
that message's place (the caller counts it) instead of being lost on a helper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import Generic, TypeVar

from pye2.domain.logtext import clip
from pye2.service.settings import env_count

__all__ = ["DECODE_THREADS_ENV", "DEFAULT_DECODE_THREADS", "DecodePool", "default_decode_threads"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: One: the dispatcher decodes alone. Measured on 2 cores (payload ingest over MQTT), a helper
#: thread made it slower (9.5k vs 13.5k msg/s): libsecp256k1 and SHA-256 release the GIL for a few
#: microseconds at a time, and every release costs a GIL hand-off between the decoding threads.
#: Worth trying (``decode_threads`` / ``$PYE2_DECODE_THREADS``) where decoding is dominated by long
#: GIL-free work, e.g. large zlib-compressed heartbeats.
DEFAULT_DECODE_THREADS = 1
#: Environment variable overriding :data:`DEFAULT_DECODE_THREADS` (a Session's ``decode_threads`` wins).
DECODE_THREADS_ENV = "PYE2_DECODE_THREADS"
_MIN_SPLIT = 8  # below this many messages per thread the hand-off costs more than it saves


def default_decode_threads() -> int:
    """``$PYE2_DECODE_THREADS`` if set (a positive integer), else :data:`DEFAULT_DECODE_THREADS`.

    Raises:
        ConfigError: the variable is not a positive integer.
    """
    return env_count(DECODE_THREADS_ENV, DEFAULT_DECODE_THREADS, minimum=1)


class _Job(Generic[T, R]):
    __slots__ = ("_claim", "done", "items", "results")

    def __init__(self, items: Sequence[T]) -> None:
        self.items = items
        self.results: list[R | BaseException] = []
        self.done = threading.Event()
        self._claim = threading.Lock()

    def claim(self) -> bool:
        """True for the one thread that runs this job (a helper, or the caller after close)."""
        return self._claim.acquire(blocking=False)


class DecodePool(Generic[T, R]):
    """Runs ``decode(item)`` over batches, on the caller's thread plus helpers.

    Args:
        decode: the per-item function (thread-safe, should not raise).
        threads: total threads decoding a batch, the caller's included (1: no helpers).
        name: used in the helper threads' names.
    """

    def __init__(self, decode: Callable[[T], R], threads: int = DEFAULT_DECODE_THREADS, *, name: str = "pye2") -> None:
        self.decode = decode
        self.threads = max(1, int(threads))
        self._jobs: SimpleQueue[_Job[T, R] | None] = SimpleQueue()
        self._helpers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._name = name

    def _start_helpers(self) -> None:
        with self._lock:
            if self._helpers or self._closed:
                return
            for i in range(self.threads - 1):
                t = threading.Thread(target=self._helper, name=f"pye2-decode-{self._name}-{i + 1}", daemon=True)
                self._helpers.append(t)
                t.start()

    def map(self, items: Sequence[T]) -> list[R | BaseException]:
        """``decode`` of every item, in order (an exception object where ``decode`` raised)."""
        helpers = min(self.threads - 1, len(items) // _MIN_SPLIT - 1)
        if helpers <= 0 or self._closed:
            return self._run(items)
        if not self._helpers:
            self._start_helpers()
        size = -(-len(items) // (helpers + 1))
        jobs: list[_Job[T, R]] = []
        for start in range(size, len(items), size):
            job: _Job[T, R] = _Job(items[start:start + size])
            jobs.append(job)
            self._jobs.put(job)
        results = self._run(items[:size])
        for job in jobs:
            while not job.done.wait(0.5):
                if self._closed and job.claim():  # the helpers are gone: do it here
                    job.results = self._run(job.items)
                    job.done.set()
            results.extend(job.results)
        return results

    def _run(self, items: Sequence[T]) -> list[R | BaseException]:
        out: list[R | BaseException] = []
        decode = self.decode
        for item in items:
            try:
                out.append(decode(item))
            except Exception as exc:
                # the error's text may quote the message: one clipped line; the traceback at debug level
                log.error("decoding a message failed: %s: %s", type(exc).__name__, clip(exc))
                log.debug("decoding a message failed", exc_info=True)
                out.append(exc)
        return out

    def _helper(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.claim():
                continue
            try:
                job.results = self._run(job.items)
            finally:
                job.done.set()

    def close(self) -> None:
        """Stop the helpers (a batch being decoded is finished first)."""
        with self._lock:
            self._closed = True
            helpers, self._helpers = self._helpers, []
        for _ in helpers:
            self._jobs.put(None)
        for t in helpers:
            if t is not threading.current_thread():
                t.join(timeout=5)
