"""Outgoing messages of the AMQP transport: waiter, item and the bounded outbox.

Not thread-safe on its own: the transport guards an :class:`Outbox` with its lock. The
I/O thread pops from the front; callers append at the back; messages a dead connection
never confirmed go back to the front so order is kept across a reconnect.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from pye2.errors import QueueFull

from .topology import Route

__all__ = ["Outbox", "Outgoing", "Waiter"]


class Waiter:
    """A one-shot result a caller thread blocks on; resolved once, by the I/O thread."""

    __slots__ = ("_event", "error")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.error: BaseException | None = None

    def resolve(self, error: BaseException | None = None) -> None:
        """Record the outcome (None = success) and wake the waiting thread; later calls are ignored."""
        if not self._event.is_set():
            self.error = error
            self._event.set()

    @property
    def done(self) -> bool:
        """True once resolved."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until resolved or ``timeout`` seconds pass; True if resolved."""
        return self._event.wait(timeout)


@dataclass(eq=False, slots=True)
class Outgoing:
    """One message on its way to the broker; ``waiter`` is set when the caller waits for a confirm."""

    address: str
    route: Route
    body: bytes
    waiter: Waiter | None = field(default=None)

    def settle(self, error: BaseException | None = None) -> None:
        """Tell a waiting caller how it ended (no-op for fire-and-forget messages)."""
        if self.waiter is not None:
            self.waiter.resolve(error)


class Outbox:
    """FIFO of :class:`Outgoing` with a bound and an overflow policy.

    ``offer`` applies the bound: ``raise`` refuses the new message with
    :class:`~pye2.errors.QueueFull`; ``drop_oldest`` evicts the oldest one and returns it
    so the caller can log, count and settle it. ``push_front`` ignores the bound: those
    messages were accepted before and must not be lost to it.
    """

    def __init__(self, limit: int, policy: str) -> None:
        self.limit = limit
        self.policy = policy
        self._items: deque[Outgoing] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: Outgoing, limit: int | None = None) -> Outgoing | None:
        """Append ``item`` within ``limit`` (default: the configured one); return an evicted item.

        Raises:
            QueueFull: the queue is full and the policy is ``raise`` (or nothing can be evicted).
        """
        bound = self.limit if limit is None else limit
        evicted: Outgoing | None = None
        if len(self._items) >= bound:
            if self.policy != "drop_oldest" or not self._items:
                raise QueueFull(
                    f"AMQP outgoing queue is full ({bound} messages waiting for the broker); "
                    f"message to {item.address!r} refused (overflow policy {self.policy!r})"
                )
            evicted = self._items.popleft()
        self._items.append(item)
        return evicted

    def peek(self) -> Outgoing | None:
        """The next message to send, or None."""
        return self._items[0] if self._items else None

    def popleft(self) -> Outgoing:
        """Remove and return the next message."""
        return self._items.popleft()

    def remove(self, item: Outgoing) -> bool:
        """Take ``item`` out if it is still waiting; True if it was."""
        try:
            self._items.remove(item)
        except ValueError:
            return False
        return True

    def push_front(self, items: Iterable[Outgoing]) -> int:
        """Put ``items`` (in their order) before everything else; return how many."""
        batch = list(items)
        self._items.extendleft(reversed(batch))
        return len(batch)

    def clear(self) -> list[Outgoing]:
        """Empty the queue and return what was in it."""
        items = list(self._items)
        self._items.clear()
        return items
