"""Conformance suite every pye2 transport passes: subclass :class:`TransportTests`.

How a transport author uses it (one test file)::

    import pytest
    from pye2.testing import TransportTests
    from my_package import MyTransport

    class TestMyTransport(TransportTests):
        machine_max_examples = 5          # real broker: few, slow examples

        @pytest.fixture
        def make_transport(self, my_broker_url):
            # each call: a NEW, UNCONNECTED transport on the SAME broker
            return lambda: MyTransport.from_url(my_broker_url)

        @pytest.fixture                   # optional; default None skips the check
        def unreachable_transport(self):
            return MyTransport.from_url("my://127.0.0.1:9", connect_timeout=2)

        @pytest.fixture                   # optional; default 10 seconds
        def connect_timeout(self):
            return 2.0

Fixtures a subclass provides: ``make_transport`` (required), ``unreachable_transport``
and ``connect_timeout`` (optional), ``make_node`` (the Session smoke test; return
``pye2_transport_memory.smoke.start_smoke_node``). Fixture names the kit uses itself, do
not redefine them: ``open_transport``, ``prefix``, ``capabilities``. Class attributes to tune:
``delivery_timeout``, ``reconnect_timeout``, ``address_root``,
``machine_max_examples``, ``machine_step_count``, ``large_body_limit``.

Checks are skipped, with the reason, when ``transport.capabilities`` says the
feature is absent (``ordered_per_address``, ``fanout``, ``wildcards``,
``max_message_bytes``). Reconnect checks run only when the transport
implements :class:`~pye2.testing.collect.SupportsForcedReconnect`
(``force_reconnect()``), reports connection events
(``add_connection_listener``) and declares ``capabilities.reconnects``.

Every test uses its own address prefix ``<address_root>/<uuid>/...`` so runs
against a shared broker never collide; address levels are ``[a-z0-9_]`` only.
Bodies starting with :data:`~pye2.testing.collect.SENTINEL_MARK` are the kit's.
Nothing sleeps: waits are Conditions with timeouts, and "nothing else arrived"
is checked by publishing sentinels afterwards (order per address makes that sound).

Contract checked beyond the port's docstring (what pye2's Session relies on):

* ``subscribe()`` before ``connect()`` is allowed; it is active once
  ``connect()`` returns. While connected, ``subscribe()`` returns once the
  broker routes to it: a message published afterwards, by any connection, arrives.
* Each subscription receives each matching message exactly once, also when
  several subscriptions of one transport overlap (same filter or wildcards),
  and ``Delivery.address`` is the concrete address the message was published on.
* After ``Subscription.cancel()`` returns, its handler gets nothing published later.
  ``cancel()`` is idempotent, also after ``close()``.
* ``publish()`` is thread-safe; order is kept per publisher and address. A
  transport receives its own publishes on its own subscriptions.
* Publishing to an empty address or one holding ``+``/``#``, or subscribing with
  a malformed filter (``a/#/b``, ``a+``, empty), raises ``ConfigError``.
* After ``close()``, ``publish()`` and ``subscribe()`` raise ``TransportClosed``.
  ``publish()`` before the first ``connect()`` either raises a ``TransportError``
  or is queued; ``connect()`` after ``close()`` reopens or raises ``TransportClosed``.
* With connection events, ``connect()`` emits ``"connected"`` and ``close()`` ``"closed"``.
* With share groups (:class:`~pye2.ports.transport.SupportsSharedSubscriptions`):
  two transports in one group on one address get each message once between them,
  both some of them; a plain subscription still gets all; a member that cancels
  gets nothing more, the other gets the rest; a bad group name is a ``ConfigError``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from pye2.errors import ConfigError, MessageTooLarge, Pye2Error, TransportClosed, TransportConnectError, TransportError
from pye2.ports.transport import (
    Delivery,
    Subscription,
    SupportsConnectionEvents,
    SupportsSharedSubscriptions,
    Transport,
    TransportCapabilities,
)
from pye2.testing.collect import (
    Collector,
    EventRecorder,
    Watched,
    can_force_reconnect,
    force_reconnect_and_wait,
    sync,
)
from pye2.testing.stateful import run_transport_machine

__all__ = ["OpenTransport", "TransportTests"]

OpenTransport = Callable[..., Transport]

ROUNDTRIP_BODIES = [
    b"",
    b"\x00",
    bytes(range(256)),
    b"\xff\xfe\xfd\x80",  # not UTF-8
    "h\u00e9llo \u2713 \u4e16\u754c".encode(),
    b'{"EE_ID": "node", "DATA": [1, 2.5, null]}',
]

INVALID_PUBLISH_SUFFIXES = ["a/+", "a/#", "+", "a/b+", "a/#/b"]
INVALID_FILTER_SUFFIXES = ["a/#/b", "a+", "a/+b", "a/b#", "#/a"]


class TransportTests:
    """Pytest base class: the shipped conformance checks for one transport."""

    delivery_timeout: ClassVar[float] = 10.0
    reconnect_timeout: ClassVar[float] = 30.0
    address_root: ClassVar[str] = "pye2test"
    machine_max_examples: ClassVar[int] = 10
    machine_step_count: ClassVar[int] = 20
    large_body_limit: ClassVar[int] = 16 << 20  # caps the "largest body" check for huge maxima

    # -- fixtures a subclass provides -------------------------------------------

    @pytest.fixture
    def make_transport(self) -> Callable[[], Transport]:
        """Return a callable building a new, unconnected transport on one shared broker."""
        pytest.fail(f"{type(self).__name__} must define the make_transport fixture")

    @pytest.fixture
    def unreachable_transport(self) -> Transport | None:
        """An unconnected transport whose ``connect()`` must fail; None skips the check."""
        return None

    @pytest.fixture
    def connect_timeout(self) -> float:
        """Seconds within which ``unreachable_transport.connect()`` must give up."""
        return 10.0

    @pytest.fixture
    def make_node(self) -> Callable[..., Any] | None:
        """Factory of a simulated node on the candidate transport (Session smoke test); None skips it."""
        return None

    # -- fixtures of the kit ----------------------------------------------------

    @pytest.fixture
    def open_transport(self, make_transport: Callable[[], Transport]) -> Iterator[OpenTransport]:
        """``open_transport(connect=True)``: a transport from the factory, closed at teardown."""
        made: list[Transport] = []

        def open_(*, connect: bool = True) -> Transport:
            transport = make_transport()
            made.append(transport)
            if connect:
                transport.connect()
            return transport

        yield open_
        for transport in reversed(made):
            transport.close()

    @pytest.fixture
    def prefix(self) -> str:
        """A fresh address prefix so concurrent runs on one broker never collide."""
        return f"{self.address_root}/{uuid.uuid4().hex}"

    @pytest.fixture
    def capabilities(self, open_transport: OpenTransport) -> TransportCapabilities:
        """The capabilities the transport declares (read from an unconnected one)."""
        return open_transport(connect=False).capabilities

    # -- helpers ----------------------------------------------------------------

    def _settle(self, publisher: Transport, watched: list[Watched], addresses: list[str]) -> None:
        """Wait until everything published so far reached the watched subscriptions."""
        assert sync(publisher, watched, addresses, self.delivery_timeout), "sentinels did not arrive in time"

    # -- 1. connect / close -----------------------------------------------------

    def test_connect_close_idempotent(self, open_transport: OpenTransport) -> None:
        transport = open_transport(connect=False)
        assert not transport.is_connected
        transport.connect()
        transport.connect()
        assert transport.is_connected
        transport.close()
        transport.close()
        assert not transport.is_connected

    def test_close_before_connect(self, open_transport: OpenTransport) -> None:
        transport = open_transport(connect=False)
        transport.close()
        assert not transport.is_connected

    def test_subscribe_before_connect(self, open_transport: OpenTransport, prefix: str) -> None:
        subscriber = open_transport(connect=False)
        got = Collector()
        subscriber.subscribe(f"{prefix}/early", got)
        subscriber.connect()
        open_transport().publish(f"{prefix}/early", b"early")
        assert got.wait_for_body(b"early", self.delivery_timeout)

    def test_connection_events(self, open_transport: OpenTransport) -> None:
        transport = open_transport(connect=False)
        if not isinstance(transport, SupportsConnectionEvents):
            pytest.skip("transport does not report connection events")
        recorder = EventRecorder()
        transport.add_connection_listener(recorder)
        transport.connect()
        assert recorder.wait_for_state("connected", self.delivery_timeout)
        mark = recorder.mark()
        transport.close()
        assert recorder.wait_for_state("closed", self.delivery_timeout, after=mark)

    # -- 2. bytes in == bytes out -----------------------------------------------

    def test_bodies_roundtrip_unchanged(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        address = f"{prefix}/bytes"
        got = Collector()
        subscriber.subscribe(address, got)
        for body in ROUNDTRIP_BODIES:
            publisher.publish(address, body)
        self._settle(publisher, [Watched(address, got)], [address])
        received = got.without_sentinels()
        assert sorted(d.body for d in received) == sorted(ROUNDTRIP_BODIES)
        assert all(type(d.body) is bytes and d.address == address for d in received)

    def test_largest_body_roundtrips(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        limit = publisher.capabilities.max_message_bytes
        size = min(limit if limit is not None else 1 << 20, self.large_body_limit)
        body = bytes((i * 7 + 3) % 256 for i in range(size))
        got = Collector()
        subscriber.subscribe(f"{prefix}/large", got)
        publisher.publish(f"{prefix}/large", body)
        assert got.wait_for(1, self.delivery_timeout)
        assert got.bodies[0] == body

    # -- 3. order ---------------------------------------------------------------

    def test_order_per_publisher(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        if not publisher.capabilities.ordered_per_address:
            pytest.skip("transport does not promise order per address")
        address = f"{prefix}/order"
        got = Collector()
        subscriber.subscribe(address, got)
        sent = [i.to_bytes(4, "big") for i in range(300)]
        for body in sent:
            publisher.publish(address, body)
        self._settle(publisher, [Watched(address, got)], [address])
        assert [d.body for d in got.without_sentinels()] == sent

    def test_concurrent_publishers_keep_their_order(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        address = f"{prefix}/threads"
        got = Collector()
        subscriber.subscribe(address, got)
        threads, per_thread = 4, 50

        def publish_series(t: int) -> None:
            for i in range(per_thread):
                publisher.publish(address, bytes([t, i]))

        workers = [threading.Thread(target=publish_series, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(self.delivery_timeout)
        assert not any(worker.is_alive() for worker in workers), "publish() blocked"
        self._settle(publisher, [Watched(address, got)], [address])
        bodies = [d.body for d in got.without_sentinels()]
        assert sorted(bodies) == sorted(bytes([t, i]) for t in range(threads) for i in range(per_thread))
        if publisher.capabilities.ordered_per_address:
            for t in range(threads):
                assert [b[1] for b in bodies if b[0] == t] == list(range(per_thread))

    # -- 4. fanout --------------------------------------------------------------

    def test_fanout_to_two_subscribers(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, first, second = open_transport(), open_transport(), open_transport()
        if not publisher.capabilities.fanout:
            pytest.skip("transport does not fan out")
        address = f"{prefix}/fan"
        a, b, also_a = Collector(), Collector(), Collector()
        first.subscribe(address, a)
        first.subscribe(address, also_a)
        second.subscribe(address, b)
        publisher.publish(address, b"to-all")
        self._settle(publisher, [Watched(address, c) for c in (a, b, also_a)], [address])
        for collector in (a, b, also_a):
            assert [d.body for d in collector.without_sentinels()] == [b"to-all"]

    # -- 4b. share groups (SupportsSharedSubscriptions) -------------------------

    def _sharing(self, open_transport: OpenTransport) -> tuple[Transport, Transport, Transport]:
        """A publisher and two connected transports that support share groups (else skip)."""
        publisher, first, second = open_transport(), open_transport(), open_transport()
        if not isinstance(first, SupportsSharedSubscriptions):
            pytest.skip("transport has no shared subscriptions (SupportsSharedSubscriptions)")
        return publisher, first, second

    def test_share_group_splits_messages_between_members(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, first, second = self._sharing(open_transport)
        address, count = f"{prefix}/shared", 20
        everyone, shares = Collector(), {"first": Collector(), "second": Collector()}
        in_group = Collector()
        for transport, name in ((first, "first"), (second, "second")):
            share = shares[name]

            def member(delivery: Delivery, share: Collector = share) -> None:
                share(delivery)
                in_group(delivery)

            transport.subscribe_shared(address, "kit", member)  # type: ignore[attr-defined]
        publisher.subscribe(address, everyone)  # outside the group: gets every message
        bodies = [f"m{i}".encode() for i in range(count)]
        for body in bodies:
            publisher.publish(address, body)
        assert in_group.wait_until(lambda got: len({d.body for d in got} & set(bodies)) == count,
                                   self.delivery_timeout), [d.body for d in in_group.deliveries]
        self._settle(publisher, [Watched(address, everyone)], [address])
        assert [d.body for d in everyone.without_sentinels()] == bodies
        got = {name: [d.body for d in c.without_sentinels()] for name, c in shares.items()}
        assert sorted(got["first"] + got["second"]) == sorted(bodies), got  # each message once, to one member
        assert got["first"] and got["second"], got  # the broker shared them out
        assert all(d.address == address for c in shares.values() for d in c.deliveries)

    def test_share_group_member_that_cancels_leaves_the_rest_to_the_others(
        self, open_transport: OpenTransport, prefix: str
    ) -> None:
        publisher, first, second = self._sharing(open_transport)
        address = f"{prefix}/leave"
        leaving, staying = Collector(), Collector()
        subscription = first.subscribe_shared(address, "kit", leaving)  # type: ignore[attr-defined]
        second.subscribe_shared(address, "kit", staying)  # type: ignore[attr-defined]
        subscription.cancel()
        bodies = [f"m{i}".encode() for i in range(10)]
        for body in bodies:
            publisher.publish(address, body)
        assert staying.wait_for(len(bodies), self.delivery_timeout), staying.bodies
        assert staying.bodies == bodies and leaving.bodies == []

    @pytest.mark.parametrize("group", ["", "a/b", "+", "#", "a.b", "x" * 65])
    def test_bad_share_group_raises_config_error(self, open_transport: OpenTransport, prefix: str,
                                                 group: str) -> None:
        transport = open_transport(connect=False)
        if not isinstance(transport, SupportsSharedSubscriptions):
            pytest.skip("transport has no shared subscriptions (SupportsSharedSubscriptions)")
        with pytest.raises(ConfigError):
            transport.subscribe_shared(f"{prefix}/x", group, Collector())

    # -- 5. wildcards -----------------------------------------------------------

    def _wildcard_case(self, open_transport: OpenTransport, filter_: str, hit: list[str], miss: list[str]) -> None:
        publisher, subscriber = open_transport(), open_transport()
        if not publisher.capabilities.wildcards:
            pytest.skip("transport has no wildcard subscriptions")
        got = Collector()
        subscriber.subscribe(filter_, got)
        for address in hit + miss:
            publisher.publish(address, address.encode())
        self._settle(publisher, [Watched(filter_, got)], hit + miss)
        assert sorted((d.address, d.body) for d in got.without_sentinels()) == sorted((a, a.encode()) for a in hit)

    def test_wildcard_single_level(self, open_transport: OpenTransport, prefix: str) -> None:
        self._wildcard_case(
            open_transport, f"{prefix}/+/x",
            hit=[f"{prefix}/a/x", f"{prefix}/b/x"],
            miss=[f"{prefix}/a/y", f"{prefix}/a/b/x", f"{prefix}/x"],
        )

    def test_wildcard_multi_level(self, open_transport: OpenTransport, prefix: str) -> None:
        self._wildcard_case(
            open_transport, f"{prefix}/a/#",
            hit=[f"{prefix}/a", f"{prefix}/a/b", f"{prefix}/a/b/c"],
            miss=[f"{prefix}/b", f"{prefix}/ab", f"{prefix}/b/a"],
        )

    def test_overlapping_subscriptions_each_receive_once(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        if not publisher.capabilities.wildcards:
            pytest.skip("transport has no wildcard subscriptions")
        address = f"{prefix}/a/b"
        filters = [f"{prefix}/#", f"{prefix}/a/+", address, address]
        collectors = [Collector() for _ in filters]
        for filter_, collector in zip(filters, collectors):
            subscriber.subscribe(filter_, collector)
        publisher.publish(address, b"once")
        self._settle(publisher, [Watched(f, c) for f, c in zip(filters, collectors)], [address])
        for collector in collectors:
            assert [(d.address, d.body) for d in collector.without_sentinels()] == [(address, b"once")]

    # -- 6. cancel --------------------------------------------------------------

    def test_cancel_stops_delivery(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        address = f"{prefix}/cancel"
        cancelled = Collector()
        subscription: Subscription = subscriber.subscribe(address, cancelled)
        assert subscription.address == address
        publisher.publish(address, b"before")
        assert cancelled.wait_for(1, self.delivery_timeout)
        subscription.cancel()
        subscription.cancel()
        witness = Collector()
        subscriber.subscribe(address, witness)
        publisher.publish(address, b"after")
        self._settle(publisher, [Watched(address, witness)], [address])
        assert cancelled.bodies == [b"before"]
        assert [d.body for d in witness.without_sentinels()] == [b"after"]

    # -- 7. failing handler -----------------------------------------------------

    def test_raising_handler_does_not_stop_delivery(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, subscriber = open_transport(), open_transport()
        address = f"{prefix}/raise"
        failing = Collector(raises=RuntimeError("handler failure raised on purpose by the conformance kit"))
        subscriber.subscribe(address, failing)
        publisher.subscribe(address, failing)  # a transport delivering to itself must not raise from publish()
        for i in range(3):
            publisher.publish(address, bytes([i]))
        assert failing.wait_for(6, self.delivery_timeout)
        assert sorted(failing.bodies) == sorted([bytes([i]) for i in range(3)] * 2)

    # -- 8. closed and oversize -------------------------------------------------

    def test_publish_after_close_raises(self, open_transport: OpenTransport, prefix: str) -> None:
        transport = open_transport()
        subscription = transport.subscribe(f"{prefix}/x", Collector())
        transport.close()
        with pytest.raises(TransportClosed):
            transport.publish(f"{prefix}/x", b"late")
        with pytest.raises(TransportClosed):
            transport.subscribe(f"{prefix}/x", Collector())
        subscription.cancel()  # harmless after close

    def test_oversize_raises_message_too_large(self, open_transport: OpenTransport, prefix: str) -> None:
        transport = open_transport()
        limit = transport.capabilities.max_message_bytes
        if limit is None:
            pytest.skip("transport declares no maximum message size")
        with pytest.raises(MessageTooLarge):
            transport.publish(f"{prefix}/big", bytes(limit + 1))

    # -- 9. unreachable broker --------------------------------------------------

    def test_unreachable_broker_raises_connect_error(
        self, unreachable_transport: Transport | None, connect_timeout: float
    ) -> None:
        if unreachable_transport is None:
            pytest.skip("no unreachable_transport fixture")
        outcome: list[BaseException | None] = []

        def attempt() -> None:
            try:
                unreachable_transport.connect()
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - the test inspects whatever escaped
                outcome.append(exc)

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(connect_timeout * 2 + 5)  # a liveness bound, generous on purpose
        try:
            assert not worker.is_alive(), f"connect() did not give up within about {connect_timeout}s"
            assert outcome and isinstance(outcome[0], TransportConnectError), f"got {outcome!r}"
            assert not unreachable_transport.is_connected
        finally:
            unreachable_transport.close()

    # -- 10. only pye2 errors ---------------------------------------------------

    @pytest.mark.parametrize("suffix", INVALID_PUBLISH_SUFFIXES)
    def test_publish_to_invalid_address_raises_config_error(
        self, open_transport: OpenTransport, prefix: str, suffix: str
    ) -> None:
        with pytest.raises(ConfigError):
            open_transport().publish(f"{prefix}/{suffix}", b"x")

    def test_publish_to_empty_address_raises_config_error(self, open_transport: OpenTransport) -> None:
        with pytest.raises(ConfigError):
            open_transport().publish("", b"x")

    @pytest.mark.parametrize("suffix", INVALID_FILTER_SUFFIXES)
    def test_invalid_filter_raises_config_error(self, open_transport: OpenTransport, prefix: str, suffix: str) -> None:
        with pytest.raises(ConfigError):
            open_transport().subscribe(f"{prefix}/{suffix}", Collector())

    def test_only_pye2_errors_escape(self, open_transport: OpenTransport, prefix: str) -> None:
        transport = open_transport(connect=False)
        odd_calls: list[Callable[[], object]] = [
            lambda: transport.publish(f"{prefix}/early", b"before connect"),
            transport.connect,
            lambda: transport.publish(f"{prefix}/text", "not bytes"),  # type: ignore[arg-type]
            lambda: transport.subscribe("", Collector()),
            transport.close,
            transport.connect,
            lambda: transport.publish(f"{prefix}/late", b"after close"),
            transport.close,
        ]
        for call in odd_calls:
            try:
                call()
            except Pye2Error:
                pass
            except BaseException as exc:  # noqa: BLE001
                pytest.fail(f"{type(exc).__module__}.{type(exc).__name__} escaped: {exc}")
        transport.close()

    def test_publish_before_connect_is_queued_or_transport_error(
        self, open_transport: OpenTransport, prefix: str
    ) -> None:
        transport = open_transport(connect=False)
        try:
            transport.publish(f"{prefix}/early", b"x")
        except TransportError:
            pass

    # -- reconnect --------------------------------------------------------------

    def _reconnectable(self, open_transport: OpenTransport) -> tuple[Transport, EventRecorder]:
        transport = open_transport(connect=False)
        if not can_force_reconnect(transport):
            pytest.skip("transport cannot be forced to reconnect (see SupportsForcedReconnect)")
        recorder = EventRecorder()
        transport.add_connection_listener(recorder)  # type: ignore[attr-defined]
        transport.connect()
        return transport, recorder

    def test_subscriptions_survive_reconnect(self, open_transport: OpenTransport, prefix: str) -> None:
        subscriber, recorder = self._reconnectable(open_transport)
        publisher = open_transport()
        kept, dropped = f"{prefix}/kept", f"{prefix}/dropped"
        got, cancelled = Collector(), Collector()
        subscriber.subscribe(kept, got)
        subscriber.subscribe(dropped, cancelled).cancel()
        publisher.publish(kept, b"before")
        assert got.wait_for_body(b"before", self.delivery_timeout)

        assert force_reconnect_and_wait(subscriber, recorder, self.reconnect_timeout), "no 'connected' event"
        assert subscriber.is_connected
        assert sync(publisher, [Watched(kept, got)], [kept], self.reconnect_timeout, retry_every=0.05), (
            "subscription not restored after reconnect"
        )
        publisher.publish(kept, b"after")
        witness = Collector()
        subscriber.subscribe(dropped, witness)
        publisher.publish(dropped, b"to-witness")
        self._settle(publisher, [Watched(kept, got), Watched(dropped, witness)], [kept, dropped])
        assert [d.body for d in got.without_sentinels()] == [b"before", b"after"]
        assert [d.body for d in witness.without_sentinels()] == [b"to-witness"]
        assert cancelled.deliveries == [], "a cancelled subscription came back after reconnect"

    def test_publisher_works_after_reconnect(self, open_transport: OpenTransport, prefix: str) -> None:
        publisher, recorder = self._reconnectable(open_transport)
        subscriber = open_transport()
        address = f"{prefix}/pub"
        got = Collector()
        subscriber.subscribe(address, got)
        assert force_reconnect_and_wait(publisher, recorder, self.reconnect_timeout), "no 'connected' event"
        publisher.publish(address, b"after reconnect")
        assert got.wait_for_body(b"after reconnect", self.delivery_timeout)

    # -- 11. stateful -----------------------------------------------------------

    def test_transport_machine(self, make_transport: Callable[[], Transport]) -> None:
        run_transport_machine(
            make_transport,
            max_examples=self.machine_max_examples,
            step_count=self.machine_step_count,
            timeout=self.delivery_timeout,
            reconnect_timeout=self.reconnect_timeout,
            address_root=self.address_root,
        )

    # -- 12. session smoke (placeholder) ----------------------------------------

    def test_session_smoke(self, make_transport: Callable[[], Transport],
                           make_node: Callable[..., Any] | None) -> None:
        """A simulated node on this transport answers create_pipeline; its result reaches the callback.

        ``make_node(transport, profile)`` must start a node on ``transport`` and return an
        object with ``alias``, ``clock`` (the clock the session shares) and ``stop()``;
        ``pye2_transport_memory.smoke.start_smoke_node`` is one.
        """
        if make_node is None:
            pytest.skip("session smoke test: no make_node fixture")
        from pye2 import AIXP, Session
        from pye2.wire import Identity

        profile = AIXP.with_root(f"pye2smoke{uuid.uuid4().hex[:10]}")
        session = None
        node = None
        results: list[Any] = []
        try:
            node = make_node(make_transport(), profile)
            session = Session(transport=make_transport(), profile=profile, clock=node.clock,
                              identity=Identity.generate(), name="smoke", env_file=None)
            session.connect()
            assert session.wait_for_node(node.alias, self.reconnect_timeout), "no heartbeat from the node"
            pipe = session.create_pipeline(e2id=node.alias, name="smoke", data_source="Void",
                                           wait=self.reconnect_timeout)
            pipe.start_custom_plugin(instance_id="ping", plain_code="_result = 'pong'",
                                     on_data=lambda _p, result: results.append(result), process_delay=0.5)
            assert session.wait(lambda: "pong" in results, self.reconnect_timeout), "no payload reached on_data"
            assert pipe.close().wait(self.reconnect_timeout), "archive not confirmed"
            assert session.stats.rejected.get("signature", 0) == 0
        finally:
            if session is not None:
                session.close()
            if node is not None:
                node.stop()
