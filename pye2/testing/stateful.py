"""``TransportMachine``: random subscribe / cancel / publish / reconnect runs against a model.

The model is a list of subscriptions with, for each, the messages it must have
received (computed with the kit's own filter matcher); a permanent witness
subscription that sees every address is part of it, so every publish is
checked. Checks are made after a :func:`~pye2.testing.collect.sync`, so
asynchronous brokers are handled without sleeping: every received list must
equal the model's, per address and in order when the transport promises
``ordered_per_address``. Because ``publish()`` may return before the broker
has the message, the machine settles in-flight messages (a sync) before each
subscribe and cancel, so what a subscription must receive is exact.

Use :func:`run_transport_machine` with a factory of unconnected transports on
one broker; :class:`~pye2.testing.transport.TransportTests` does so in
``test_transport_machine``. Against a real broker run few examples (the
defaults of ``TransportTests`` do); against memory, many.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, precondition, rule, run_state_machine_as_test

from pye2.ports.transport import Delivery, Subscription, Transport
from pye2.testing.collect import (
    SENTINEL_MARK,
    Collector,
    EventRecorder,
    Watched,
    address_matches,
    can_force_reconnect,
    force_reconnect_and_wait,
    sync,
)
from pye2.testing.strategies import bodies

__all__ = ["RELATIVE_ADDRESSES", "RELATIVE_WILDCARD_FILTERS", "TransportMachine", "run_transport_machine"]

RELATIVE_ADDRESSES = ("a", "b", "a/b", "a/c", "b/b", "a/b/c")
RELATIVE_WILDCARD_FILTERS = ("#", "+", "a/#", "a/+", "+/b", "+/+/c", "a/b/#")


@dataclass
class _ModelSubscription:
    filter: str
    collector: Collector
    handle: Subscription
    expected: list[Delivery] = field(default_factory=list)
    active: bool = True

    def __repr__(self) -> str:  # what hypothesis prints in a failing program
        return f"<subscription {self.filter!r}{'' if self.active else ' cancelled'}>"


def _by_address(deliveries: list[Delivery], ordered: bool) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for delivery in deliveries:
        grouped[delivery.address].append(delivery.body)
    return {a: (b if ordered else sorted(b)) for a, b in grouped.items()}


class TransportMachine(RuleBasedStateMachine):
    """Subscribe, cancel, publish and reconnect at random; received must equal the model.

    A publisher and a subscriber transport are made per example from
    ``make_transport``; :func:`run_transport_machine` binds it and the timeouts.
    """

    make_transport: ClassVar[Callable[[], Transport]]
    timeout: ClassVar[float] = 10.0
    reconnect_timeout: ClassVar[float] = 30.0
    address_root: ClassVar[str] = "pye2test"

    subscriptions = Bundle("subscriptions")

    def __init__(self) -> None:
        super().__init__()
        prefix = f"{self.address_root}/{uuid.uuid4().hex}"
        self.publisher = type(self).make_transport()
        self.subscriber = type(self).make_transport()
        self.recorders: dict[str, EventRecorder] = {}
        self.reconnectable = can_force_reconnect(self.publisher) and can_force_reconnect(self.subscriber)
        if self.reconnectable:
            for role, transport in (("publisher", self.publisher), ("subscriber", self.subscriber)):
                self.recorders[role] = EventRecorder()
                transport.add_connection_listener(self.recorders[role])  # type: ignore[attr-defined]
        caps = self.subscriber.capabilities
        self.ordered = caps.ordered_per_address
        self.addresses = [f"{prefix}/{a}" for a in RELATIVE_ADDRESSES]
        relative = RELATIVE_ADDRESSES + (RELATIVE_WILDCARD_FILTERS if caps.wildcards else ())
        self.filters = [f"{prefix}/{f}" for f in relative]
        self.model: list[_ModelSubscription] = []
        self.unsettled = False
        try:  # hypothesis calls teardown() only once __init__ has returned
            self.publisher.connect()
            self.subscriber.connect()
            # Permanent witnesses see every address: every publish is checked, and a sync proves
            # all earlier publishes reached the broker (publish() may return before they do).
            for filter_ in [f"{prefix}/#"] if caps.wildcards else self.addresses:
                collector = Collector()
                handle = self.subscriber.subscribe(filter_, collector)
                self.model.append(_ModelSubscription(filter_, collector, handle))
        except BaseException:
            self.publisher.close()
            self.subscriber.close()
            raise

    @rule(target=subscriptions, data=st.data())
    def subscribe(self, data: st.DataObject) -> _ModelSubscription:
        filter_ = data.draw(st.sampled_from(self.filters), label="filter")
        # Messages still in flight could reach the new subscription or not: settle them first.
        self._settle()
        collector = Collector()
        handle = self.subscriber.subscribe(filter_, collector)
        sub = _ModelSubscription(filter_, collector, handle)
        self.model.append(sub)
        return sub

    @rule(sub=consumes(subscriptions))
    def cancel(self, sub: _ModelSubscription) -> None:
        # Settle first, so what this subscription must have received is exact.
        self._settle()
        sub.handle.cancel()
        sub.active = False

    @rule(data=st.data(), body=bodies(max_size=64).filter(lambda b: not b.startswith(SENTINEL_MARK)))
    def publish(self, data: st.DataObject, body: bytes) -> None:
        address = data.draw(st.sampled_from(self.addresses), label="address")
        self.publisher.publish(address, body)
        self.unsettled = True
        for sub in self.model:
            if sub.active and address_matches(sub.filter, address):
                sub.expected.append(Delivery(address, body))

    @rule()
    def check(self) -> None:
        self._sync_and_check()

    @precondition(lambda self: self.reconnectable)
    @rule(role=st.sampled_from(["subscriber", "publisher"]))
    def reconnect(self, role: str) -> None:
        self._sync_and_check()
        transport = self.subscriber if role == "subscriber" else self.publisher
        assert force_reconnect_and_wait(transport, self.recorders[role], self.reconnect_timeout), (
            f"{role}: no 'connected' event after force_reconnect()"
        )
        # Sentinels may be lost while subscriptions are restored: retry rounds until one completes.
        assert sync(self.publisher, self._watched(), self.addresses, self.reconnect_timeout, retry_every=0.05), (
            f"{role}: subscriptions not restored after reconnect"
        )

    def teardown(self) -> None:
        try:
            self._sync_and_check()
        finally:
            self.subscriber.close()
            self.publisher.close()

    def _watched(self) -> list[Watched]:
        return [Watched(s.filter, s.collector) for s in self.model if s.active]

    def _settle(self) -> None:
        if self.unsettled:
            self._sync_and_check()

    def _sync_and_check(self) -> None:
        assert sync(self.publisher, self._watched(), self.addresses, self.timeout), "sentinels did not arrive in time"
        self.unsettled = False
        for sub in self.model:
            received = sub.collector.without_sentinels()
            assert _by_address(received, self.ordered) == _by_address(sub.expected, self.ordered), (
                f"{sub!r} received {received!r}, expected {sub.expected!r}"
            )


def run_transport_machine(
    make_transport: Callable[[], Transport],
    *,
    max_examples: int = 50,
    step_count: int = 25,
    timeout: float = 10.0,
    reconnect_timeout: float = 30.0,
    address_root: str = "pye2test",
) -> None:
    """Run :class:`TransportMachine` on transports from ``make_transport``.

    Args:
        make_transport: returns a new, unconnected transport on one shared broker.
        max_examples: hypothesis examples (few against a real broker, many in memory).
        step_count: maximum rules per example.
        timeout: seconds to wait for deliveries at each check.
        reconnect_timeout: seconds to wait for a forced reconnect to complete.
        address_root: first address level of every address used.

    Raises:
        AssertionError: the shrunk failing program is printed by hypothesis.
    """
    bound = type(
        "BoundTransportMachine",
        (TransportMachine,),
        {
            "make_transport": staticmethod(make_transport),
            "timeout": timeout,
            "reconnect_timeout": reconnect_timeout,
            "address_root": address_root,
        },
    )
    run_state_machine_as_test(
        bound,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=step_count,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
