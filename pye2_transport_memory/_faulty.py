"""The transport wrapper of a :class:`~pye2_transport_memory.faults.FaultPlan`.

Implements the Transport port around any transport of one party (a node id
or ``"client"``): publishing records the message's origin (node rules and
partitions need it) and is suppressed while the party is silenced, message
faults run before publishing on real brokers (the in-memory hub runs them as
its interceptor), and deliveries from the other side of a partition are
dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pye2.errors import ConfigError, Pye2Error
from pye2.ports.transport import Delivery, Handler, Subscription, SupportsSharedSubscriptions, TransportCapabilities

if TYPE_CHECKING:
    from pye2.ports.transport import Transport
    from pye2_transport_memory.faults import FaultPlan

__all__ = ["FaultyTransport"]

log = logging.getLogger(__name__)


class _Sub:
    """Subscription handle of a :class:`FaultyTransport`."""

    def __init__(self, inner: Subscription) -> None:
        self._inner = inner

    @property
    def address(self) -> str:
        return self._inner.address

    def cancel(self) -> None:
        self._inner.cancel()


class FaultyTransport:
    """A transport seen through a :class:`FaultPlan` (implements the Transport port).

    Publishing records the origin (for node rules and partitions) and is
    suppressed while the party is silenced; deliveries from parties on the
    other side of a partition are dropped.
    """

    def __init__(self, inner: Transport, plan: FaultPlan, party: str, *, apply_message_faults: bool = False) -> None:
        self.inner = inner
        self.plan = plan
        self.party = party
        self._apply = apply_message_faults
        self.name = getattr(inner, "name", "faulty")
        self.capabilities: TransportCapabilities = getattr(inner, "capabilities", TransportCapabilities())
        #: called with ``(address, body)`` before each publish (the network learns its sessions' addresses)
        self.on_publish: Callable[[str, bytes], None] | None = None

    def connect(self) -> None:
        """Connect the wrapped transport."""
        self.inner.connect()

    def close(self) -> None:
        """Close the wrapped transport."""
        self.inner.close()

    @property
    def is_connected(self) -> bool:
        """The wrapped transport's state."""
        return bool(self.inner.is_connected)

    def publish(self, address: str, body: bytes) -> None:
        """Publish unless silenced; apply message faults first on real brokers."""
        if self.on_publish is not None:
            self.on_publish(address, body)
        plan = self.plan
        if plan.is_silenced(self.party):
            plan.counters["silenced"] += 1
            return
        plan.note_origin(body, self.party)
        if not self._apply:
            self.inner.publish(address, body)
            return
        for delay, topic, out in plan.intercept(address, body):
            if delay <= 0 or plan.clock is None:
                self.inner.publish(topic, out)
            else:
                plan.clock.call_later(delay, _Publisher(self.inner, topic, out))

    def subscribe(self, address: str, handler: Handler) -> _Sub:
        """Subscribe; deliveries across a partition are dropped."""
        return _Sub(self.inner.subscribe(address, self._partitioned(handler)))

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> _Sub:
        """Join a share group (if the wrapped transport has them); partitions apply as to ``subscribe``.

        Raises:
            ConfigError: the wrapped transport has no shared subscriptions.
        """
        inner = self.inner
        if not isinstance(inner, SupportsSharedSubscriptions):
            raise ConfigError(f"share groups need a transport with shared subscriptions; {self.name!r} has none")
        return _Sub(inner.subscribe_shared(address, group, self._partitioned(handler)))

    def _partitioned(self, handler: Handler) -> Handler:
        plan, party = self.plan, self.party

        def filtered(delivery: Delivery) -> None:
            if plan.partitioned and not plan.can_hear(party, plan.origin_of(delivery.body)):
                plan.counters["partitioned"] += 1
                return
            handler(delivery)

        return filtered

    def __enter__(self) -> FaultyTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Publisher:
    """A delayed publish on a real broker (callable for ``call_later``)."""

    def __init__(self, transport: Transport, topic: str, body: bytes) -> None:
        self.transport, self.topic, self.body = transport, topic, body

    def __call__(self) -> None:
        try:
            self.transport.publish(self.topic, self.body)
        except Pye2Error as exc:
            log.warning("delayed publish to %s failed: %s", self.topic, exc)
