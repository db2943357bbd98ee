"""The in-memory Hub: topic matching, isolation, deterministic delivery, interceptor hooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.errors import ConfigError
from pye2.ports.transport import Delivery
from pye2.testing import address_matches, strategies
from pye2_transport_memory import Hub, HubRegistry, VirtualClock
from pye2_transport_memory.hub import filter_matches

Log = list[tuple[str, str, bytes]]


def recorder(log: Log, tag: str) -> Callable[[Delivery], None]:
    return lambda d: log.append((tag, d.address, d.body))


MATCHING = [
    ("a/b", "a/b", True),
    ("a/b", "a/c", False),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
    ("a/+", "a/b", True),
    ("a/+", "a", False),
    ("a/+", "a/b/c", False),
    ("a/+", "a/", True),  # + matches an empty level
    ("a/+/c", "a//c", True),
    ("+", "a", True),
    ("+", "a/b", False),
    ("+/+", "a/b", True),
    ("+/a", "/a", True),  # leading empty level
    ("a/#", "a", True),  # '#' includes zero levels
    ("a/#", "a/b/c", True),
    ("a/#", "ab", False),
    ("a/#", "b/a", False),
    ("+/#", "a", True),
    ("a/+/#", "a", False),
    ("a/+/#", "a/b", True),
    ("#", "a", True),
    ("#", "a/b/c", True),
    ("#", "/", True),
    ("#", "$SYS/x", False),  # wildcards at level one skip $-addresses, as in MQTT
    ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/x", True),
    ("$SYS/+", "$SYS/x", True),
    ("a", "a/", False),
    ("a/", "a/", True),
    ("lummetry/+/config", "lummetry/node-1/config", True),
    ("lummetry/+/config", "lummetry/ctrl", False),
]


@pytest.mark.parametrize(("filter_", "address", "expected"), MATCHING)
def test_topic_matching_table(filter_: str, address: str, expected: bool) -> None:
    hub = Hub()
    log: Log = []
    hub.subscribe(filter_, recorder(log, "s"))
    hub.publish(address, b"m")
    assert (log == [("s", address, b"m")]) is expected
    assert filter_matches(filter_, address) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a+", "a/+b", "#a", "a/b#", "##", "a\x00b", 123, None])
def test_invalid_filter_raises_config_error(bad: object) -> None:
    with pytest.raises(ConfigError):
        Hub().subscribe(bad, lambda d: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a/+", "#", "a/#", "a+b", "a\x00", None, b"a"])
def test_invalid_address_raises_config_error(bad: object) -> None:
    with pytest.raises(ConfigError):
        Hub().publish(bad, b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize("body", ["text", 12, None, [1, 2]])
def test_non_bytes_body_raises_config_error(body: object) -> None:
    with pytest.raises(ConfigError):
        Hub().publish("a", body)  # type: ignore[arg-type]


def test_bytes_like_bodies_arrive_as_bytes() -> None:
    hub = Hub()
    got: list[Delivery] = []
    hub.subscribe("a", got.append)
    hub.publish("a", bytearray(b"xy"))  # type: ignore[arg-type]
    hub.publish("a", memoryview(b"z"))  # type: ignore[arg-type]
    assert [(type(d.body), d.body) for d in got] == [(bytes, b"xy"), (bytes, b"z")]


@given(
    filters=st.lists(strategies.topic_filters(max_levels=3), min_size=1, max_size=8),
    address=strategies.addresses(max_levels=4),
)
def test_hub_routing_agrees_with_the_kit_reference_matcher(filters: list[str], address: str) -> None:
    hub = Hub()
    log: Log = []
    for i, filter_ in enumerate(filters):
        hub.subscribe(filter_, recorder(log, str(i)))
    hub.publish(address, b"m")
    assert [int(tag) for tag, _, _ in log] == [i for i, f in enumerate(filters) if address_matches(f, address)]


def test_fanout_in_subscription_order_and_each_once() -> None:
    hub = Hub()
    log: Log = []
    hub.subscribe("a/#", recorder(log, "hash"))
    hub.subscribe("a/b", recorder(log, "exact"))
    hub.subscribe("a/+", recorder(log, "plus"))
    hub.subscribe("a/b", recorder(log, "exact2"))
    hub.publish("a/b", b"1")
    assert [tag for tag, _, _ in log] == ["hash", "exact", "plus", "exact2"]
    assert hub.counters.delivered == 4 and hub.counters.published == 1


def test_two_hubs_are_isolated() -> None:
    first, second = Hub(), Hub()
    got_first: Log = []
    got_second: Log = []
    first.subscribe("#", recorder(got_first, "1"))
    second.subscribe("#", recorder(got_second, "2"))
    first.publish("x", b"only-first")
    assert got_first == [("1", "x", b"only-first")]
    assert got_second == []
    assert second.counters.published == 0 and second.subscription_count == 1


def scenario() -> Log:
    hub = Hub()
    log: Log = []

    def echo(d: Delivery) -> None:
        log.append(("echo", d.address, d.body))
        if d.body.startswith(b"ping"):
            hub.publish("reply/" + d.address, b"pong" + d.body[4:])

    hub.subscribe("req/+", echo)
    hub.subscribe("#", recorder(log, "all"))
    for i in range(5):
        hub.publish(f"req/{i % 2}", b"ping%d" % i)
    return log


def test_delivery_order_is_deterministic() -> None:
    first = scenario()
    assert first == scenario()
    assert first[:4] == [
        ("echo", "req/0", b"ping0"),
        ("all", "req/0", b"ping0"),
        ("all", "reply/req/0", b"pong0"),
        ("echo", "req/1", b"ping1"),
    ]


def test_reentrant_publish_is_breadth_first_and_never_recurses() -> None:
    hub = Hub()
    log: list[str] = []
    depth = [0, 0]  # current, maximum

    def enter(tag: str) -> None:
        depth[0] += 1
        depth[1] = max(depth[1], depth[0])
        log.append(tag)

    def root(d: Delivery) -> None:
        enter("root:" + d.address)
        hub.publish("child/1", b"")
        hub.publish("child/2", b"")
        depth[0] -= 1

    def child(d: Delivery) -> None:
        enter("child:" + d.address)
        hub.publish("grandchild", b"")
        depth[0] -= 1

    def other(d: Delivery) -> None:
        enter("other:" + d.address)
        depth[0] -= 1

    hub.subscribe("start", root)
    hub.subscribe("start", other)
    hub.subscribe("child/+", child)
    hub.subscribe("grandchild", other)
    hub.publish("start", b"")
    assert log == [
        "root:start", "other:start",
        "child:child/1", "child:child/2",
        "other:grandchild", "other:grandchild",
    ]
    assert depth[1] == 1
    assert hub.idle


def test_handler_error_is_logged_counted_and_delivery_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    got: Log = []

    def broken(d: Delivery) -> None:
        raise RuntimeError("boom in handler")

    hub.subscribe("a", broken)
    hub.subscribe("a", recorder(got, "ok"))
    with caplog.at_level(logging.ERROR, logger="pye2_transport_memory.hub"):
        hub.publish("a", b"1")
        hub.publish("a", b"2")
    assert [b for _, _, b in got] == [b"1", b"2"]
    assert hub.counters.handler_errors == 2 and hub.counters.delivered == 2
    assert any(r.exc_info and "boom in handler" in str(r.exc_info[1]) for r in caplog.records)


def test_cancel_also_skips_messages_already_queued() -> None:
    hub = Hub()
    got: Log = []
    victim = hub.subscribe("b", recorder(got, "victim"))

    def trigger(d: Delivery) -> None:
        hub.publish("b", b"queued")  # queued behind this delivery
        victim.cancel()

    hub.subscribe("a", trigger)
    hub.subscribe("b", recorder(got, "witness"))
    hub.publish("a", b"")
    assert got == [("witness", "b", b"queued")]
    victim.cancel()  # idempotent
    assert hub.subscription_count == 2


def test_matching_happens_at_publish_time() -> None:
    hub = Hub()
    got: Log = []

    def late_subscriber(d: Delivery) -> None:
        hub.publish("b", b"before-subscribe")
        hub.subscribe("b", recorder(got, "late"))
        hub.publish("b", b"after-subscribe")

    hub.subscribe("a", late_subscriber)
    hub.publish("a", b"")
    assert got == [("late", "b", b"after-subscribe")]


def test_wildcard_churn_leaves_no_subscriptions() -> None:
    hub = Hub()
    subs = [hub.subscribe(f"x/{i}/+/#", lambda d: None) for i in range(50)]
    subs += [hub.subscribe("x/#", lambda d: None) for _ in range(3)]
    for sub in subs:
        sub.cancel()
    assert hub.subscription_count == 0
    got: Log = []
    hub.subscribe("x/7/+/#", recorder(got, "new"))
    hub.publish("x/7/a", b"m")
    assert got == [("new", "x/7/a", b"m")]


def test_only_one_thread_drains_others_enqueue() -> None:
    hub = Hub()
    entered, release = threading.Event(), threading.Event()
    delivered_on: dict[bytes, str] = {}

    def handler(d: Delivery) -> None:
        delivered_on[d.body] = threading.current_thread().name
        if d.body == b"first":
            entered.set()
            assert release.wait(10)

    hub.subscribe("t", handler)
    drainer = threading.Thread(target=hub.publish, args=("t", b"first"), name="drainer")
    drainer.start()
    assert entered.wait(10)
    hub.publish("t", b"second")  # returns at once: the drainer thread delivers it
    assert b"second" not in delivered_on
    assert not hub.idle
    release.set()
    drainer.join(10)
    assert not drainer.is_alive()
    assert delivered_on == {b"first": "drainer", b"second": "drainer"}
    assert hub.idle


# -- interceptor -------------------------------------------------------------------


def test_interceptor_drop() -> None:
    hub = Hub()
    got: Log = []
    hub.subscribe("#", recorder(got, "s"))
    hub.interceptor = lambda address, body: [] if address == "lost" else [(0.0, address, body)]
    hub.publish("lost", b"x")
    hub.publish("kept", b"y")
    assert got == [("s", "kept", b"y")]
    assert hub.counters.dropped == 1 and hub.counters.published == 2


def test_interceptor_duplicate_and_corrupt() -> None:
    hub = Hub()
    got: Log = []
    hub.subscribe("#", recorder(got, "s"))
    hub.interceptor = lambda address, body: [(0.0, address, body), (0.0, address, body[::-1])]
    hub.publish("t", b"ab")
    assert got == [("s", "t", b"ab"), ("s", "t", b"ba")]


def test_interceptor_delay_uses_the_clock_and_is_not_reapplied() -> None:
    clock = VirtualClock()
    hub = Hub(clock=clock)
    got: Log = []
    calls: list[bytes] = []
    hub.subscribe("#", recorder(got, "s"))

    def delay_slow(address: str, body: bytes) -> list[tuple[float, str, bytes]]:
        calls.append(body)
        return [(5.0 if body == b"slow" else 0.0, address, body)]

    hub.interceptor = delay_slow
    hub.publish("t", b"slow")
    hub.publish("t", b"fast")
    assert got == [("s", "t", b"fast")]
    clock.advance(4.9)
    assert got == [("s", "t", b"fast")]
    clock.advance(0.1)
    assert got == [("s", "t", b"fast"), ("s", "t", b"slow")]
    assert calls == [b"slow", b"fast"]
    assert hub.counters.delayed == 1


def test_interceptor_delay_without_clock_is_a_config_error() -> None:
    hub = Hub()
    hub.interceptor = lambda address, body: [(1.0, address, body)]
    with pytest.raises(ConfigError):
        hub.publish("t", b"x")


def test_failing_interceptor_delivers_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    got: Log = []
    hub.subscribe("t", recorder(got, "s"))

    def broken(address: str, body: bytes) -> list[tuple[float, str, bytes]]:
        raise KeyError("bug in a fault plan")

    hub.interceptor = broken
    with caplog.at_level(logging.ERROR, logger="pye2_transport_memory.hub"):
        hub.publish("t", b"x")
    assert got == [("s", "t", b"x")]
    assert hub.counters.interceptor_errors == 1
    assert any(r.exc_info for r in caplog.records)


# -- registry ----------------------------------------------------------------------


def test_registry_names_hubs_and_registries_are_isolated() -> None:
    one, two = HubRegistry(), HubRegistry()
    hub = one.get("net")
    assert one.get("net") is hub
    assert hub.name == "net" and "net" in one and one.names() == ["net"]
    assert "net" not in two
    with pytest.raises(ConfigError):
        two.get("net", create=False)
    with pytest.raises(ConfigError):
        one.add("net", Hub())
    one.remove("net")
    assert one.get("net") is not hub


def test_registry_hubs_use_the_registry_clock() -> None:
    clock = VirtualClock()
    assert HubRegistry(clock=clock).get("x").clock is clock
