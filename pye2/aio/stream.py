"""PayloadStream: ``async for payload in pipeline.payloads()``.

A stream is a bounded queue between the session's dispatcher (which puts
each payload of its pipeline or instance into it, never waiting) and one
``async for`` reader. It is the session inbox's own class
(:class:`~pye2.service.inbox.Inbox`), so it has the same bound (``maxsize``
payloads), the same policies (``"drop_oldest"``, the default: a reader that
falls behind gets the freshest payloads; ``"drop_newest"``: it gets the
oldest) and the same counters: :attr:`PayloadStream.dropped` and
:attr:`PayloadStream.high_water`; every dropped payload is also counted once
in the session's ``stats.stream_dropped`` (and logged, rate-limited, by the
inbox). Each stream gets every payload (two streams on one pipeline both
see all of them).

The stream starts listening when it is made (nothing is missed between
``payloads()`` and the first ``async for``) and ends when it is closed
(:meth:`PayloadStream.close`, or leaving its ``async with`` block; a
``break`` out of the loop does not close it, so it can be read again), when
its pipeline is archived (or its instance stopped), or when the session
closes; in those three cases the payloads already queued are still read
before the loop ends.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pye2.service.inbox import Inbox
from pye2.service.payload import Payload

if TYPE_CHECKING:
    from pye2.aio.session import AsyncSession

__all__ = ["DEFAULT_STREAM_SIZE", "PayloadStream"]

#: payloads a stream holds by default before its policy drops some
DEFAULT_STREAM_SIZE = 10_000


class PayloadStream:
    """An async iterator of :class:`~pye2.service.payload.Payload` (see the module docstring)."""

    def __init__(self, session: AsyncSession, description: str, ended: Callable[[], bool], *,
                 maxsize: int = DEFAULT_STREAM_SIZE, policy: str = "drop_oldest") -> None:
        self._session = session
        self.description = description
        self._ended = ended
        self._inbox: Inbox[Payload] = Inbox(maxsize, policy, on_overflow=self._count_drop)
        self._removers: list[Callable[[], None]] = []
        self._batch: list[Payload] = []
        self.closed = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._inbox)} queued"
        return f"<PayloadStream {self.description}: {state}, {self.dropped} dropped>"

    # -- fed by the session (dispatcher thread, or the loop on a virtual clock) ---------------
    def _listen(self, removers: list[Callable[[], None]]) -> None:
        self._removers.extend(removers)

    def _put(self, payload: Payload) -> None:
        self._inbox.put(payload)
        self._session._poke()

    def _count_drop(self, _payload: Payload) -> None:
        self._session.stats.bump("stream_dropped")

    # -- counters ------------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Payloads this stream dropped (its reader fell behind, or it was closed with payloads queued)."""
        return self._inbox.dropped

    @property
    def high_water(self) -> int:
        """The most payloads queued at once."""
        return self._inbox.high_water

    @property
    def maxsize(self) -> int:
        return self._inbox.maxsize

    @property
    def policy(self) -> str:
        return self._inbox.policy

    def __len__(self) -> int:
        return len(self._batch) + len(self._inbox)

    # -- reading ---------------------------------------------------------------------------------
    def _done(self) -> bool:
        return self.closed or self._ended() or self._session.closed

    def _ready(self) -> bool:
        return bool(len(self._inbox)) or self._done()

    def __aiter__(self) -> PayloadStream:
        return self

    async def __anext__(self) -> Payload:
        while True:
            if self._batch:
                return self._batch.pop()
            taken = self._inbox.drain()
            if taken:
                taken.reverse()
                self._batch = taken
                continue
            if self._done():
                self._stop()
                raise StopAsyncIteration
            if not await self._session._until(self._ready, None) and not len(self._inbox):
                # a virtual clock with nothing left to run: nothing will ever come
                self._stop()
                raise StopAsyncIteration

    async def get(self, timeout: float | None = None) -> Payload | None:
        """The next payload, or None if none came within ``timeout`` seconds of the session clock or it ended."""
        if not self._batch and not len(self._inbox) and not self._done():
            await self._session._until(self._ready, timeout)
        if not self._batch and not len(self._inbox):
            return None
        return await self.__anext__()

    # -- closing -------------------------------------------------------------------------------
    def _stop(self) -> None:
        """Stop listening (the payloads still queued stay readable)."""
        self.closed = True
        for remove in self._removers:
            remove()
        self._removers.clear()
        self._session._forget_stream(self)

    def close(self) -> None:
        """Stop listening and end the ``async for`` (idempotent; queued payloads are dropped and counted)."""
        if self._inbox.closed:
            return
        self._stop()
        self._batch.clear()
        self._inbox.close()
        self._inbox.discard()
        self._session._poke()

    async def __aenter__(self) -> PayloadStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    async def aclose(self) -> None:
        """``close`` as a coroutine (the async-generator protocol)."""
        self.close()

    @staticmethod
    def _feeder(stream: PayloadStream) -> Callable[..., Any]:
        """A dispatcher callback that puts its last argument (the payload) into ``stream``."""
        put = stream._put

        def feed(*args: Any) -> None:
            put(args[-1])

        feed.__qualname__ = f"PayloadStream.feed[{stream.description}]"
        return feed
