"""The transport's outgoing side: a bounded FIFO and the thread that empties it into paho.

:class:`Outbox` is plain state (not thread-safe; the transport's Condition guards
it): the queue with its overflow policy, plus the flow control towards paho —
how many messages paho holds unconfirmed (``in_paho``: QoS 0 until written,
QoS > 0 until acknowledged) and whether paho reported "no connection" on the
current link. Messages that come back from paho after a lost connection
(:meth:`Outbox.new_link`) bypass the bound, since they were accepted earlier,
so the queue holds at most ``limit + max_inflight`` messages.

:class:`Sender` is the thread that hands queued messages to ``paho.Client.publish``,
in queue order. The transport's direct path (:meth:`Outbox.take_now`) hands a
message over from the caller's thread instead, only while the queue is empty
and under the same send mutex, so the order of acceptance is the order on the
wire either way.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pye2.domain.logtext import clip
from pye2.errors import QueueFull

__all__ = ["Outbox", "Outgoing", "Sender"]

log = logging.getLogger(__name__)

SENT, NO_CONNECTION, FAILED = "sent", "no_connection", "failed"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message waiting to be handed to paho."""

    topic: str
    body: bytes
    qos: int


class Outbox:
    """Bounded FIFO of :class:`Outgoing` messages plus flow control towards paho."""

    def __init__(self, limit: int, overflow: str, max_inflight: int) -> None:
        self._items: deque[Outgoing] = deque()
        self._limit = limit
        self._overflow = overflow
        self._max_inflight = max_inflight
        self.in_paho = 0
        self._link = 0
        self._blocked_link: int | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """No room for another message."""
        return len(self._items) >= self._limit

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing unconfirmed in paho."""
        return not self._items and self.in_paho == 0

    def put(self, item: Outgoing, *, connected: bool) -> None:
        """Append ``item``, applying the overflow policy when the queue is full.

        Raises:
            QueueFull: the queue is full and the policy is ``raise``.
        """
        if len(self._items) < self._limit:
            self._items.append(item)
            return
        state = "connected, waiting for the broker" if connected else "disconnected"
        if self._overflow == "raise":
            raise QueueFull(f"MQTT outgoing queue is full ({self._limit} messages, {state}); "
                            f"message for {item.topic!r} refused")
        self.dropped += 1
        if self._overflow == "drop_oldest":
            old = self._items.popleft()
            self._items.append(item)
            log.warning("MQTT outgoing queue full (%d, %s): dropped the oldest message (for %s); %d dropped so far",
                        self._limit, state, clip(old.topic), self.dropped)
        else:
            log.warning("MQTT outgoing queue full (%d, %s): dropped the new message for %s; %d dropped so far",
                        self._limit, state, clip(item.topic), self.dropped)

    def ready(self) -> bool:
        """Whether the next message may be handed to paho now (the link being up)."""
        return bool(self._items) and self.in_paho < self._max_inflight and self._blocked_link != self._link

    def take_now(self) -> int | None:
        """Count one message as handed to paho without queueing it; returns the link number.

        Only when it overtakes nothing and fits the window: the queue empty, fewer than
        ``max_inflight`` unconfirmed and the link not blocked. None otherwise (queue it).
        The caller then reports the outcome with :meth:`settle`, as for :meth:`take`.
        """
        if self._items or self.in_paho >= self._max_inflight or self._blocked_link == self._link:
            return None
        self.in_paho += 1
        return self._link

    def take(self) -> tuple[Outgoing, int]:
        """Remove the next message for paho; returns it with the current link number."""
        self.in_paho += 1
        return self._items.popleft(), self._link

    def settle(self, item: Outgoing, link: int, outcome: str) -> None:
        """Record what paho did with a taken message."""
        if outcome == NO_CONNECTION:
            self._blocked_link = link  # paho lost the socket: wait for the next CONNACK
            if item.qos == 0:  # paho dropped it; QoS > 0 stays in paho and comes back via new_link
                self.in_paho -= 1
                self._items.appendleft(item)
        elif outcome == FAILED:
            self.in_paho -= 1

    def confirmed(self) -> None:
        """Paho wrote (QoS 0) or got an acknowledgement for (QoS > 0) one message."""
        self.in_paho = max(self.in_paho - 1, 0)

    def new_link(self, unacknowledged: list[Outgoing]) -> None:
        """A new connection: paho's unacknowledged messages (oldest first) go first."""
        self._items.extendleft(reversed(unacknowledged))
        self.in_paho = 0  # paho dropped its QoS 0 backlog and gave us the rest
        self._link += 1
        self._blocked_link = None

    def clear(self) -> int:
        """Drop everything; return how many were queued or unconfirmed."""
        count = len(self._items) + self.in_paho
        self._items.clear()
        self.in_paho = 0
        return count


class Sender:
    """The thread that hands queued messages to paho, one at a time, in queue order.

    ``send_mutex`` is held around each take-and-publish so that the transport
    can swap links (:meth:`Outbox.new_link`) while no publish is half done.
    ``publish`` returns ``SENT``, ``NO_CONNECTION`` or ``FAILED`` and never raises.
    """

    def __init__(self, name: str, cond: threading.Condition, send_mutex: threading.Lock, outbox: Outbox,
                 link_up: Callable[[], bool], stopped: Callable[[], bool],
                 publish: Callable[[Outgoing], str]) -> None:
        self._cond = cond
        self._send_mutex = send_mutex
        self._outbox = outbox
        self._link_up = link_up
        self._stopped = stopped
        self._publish = publish
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to end (after ``stopped()`` turned true and the Condition was notified)."""
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join()

    def _can_send(self) -> bool:
        return self._link_up() and self._outbox.ready()

    def _main(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped() or self._can_send())
                if self._stopped():
                    return
            with self._send_mutex:
                with self._cond:
                    if not self._can_send():
                        continue
                    item, link = self._outbox.take()
                outcome = self._publish(item)  # no lock of ours held: paho calls back under its own
                with self._cond:
                    self._outbox.settle(item, link, outcome)
                    self._cond.notify_all()
