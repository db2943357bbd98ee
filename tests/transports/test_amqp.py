"""AMQP transport: the shipped conformance kit plus AMQP-specific checks.

Broker tests are marked ``amqp`` and use the ``amqp_url`` fixture (RabbitMQ on
127.0.0.1:5672 unless PYE2_AMQP_URL; skipped with a hint when it is down, failed under
PYE2_REQUIRE_BROKERS=1). Tests without the mark need no broker: URL parsing, options,
backoff, outbox policies, offline behaviour, an unreachable port.
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pye2.errors import ConfigError, Pye2Error, QueueFull, TransportClosed, TransportConnectError, TransportError
from pye2.testing import Collector, EventRecorder, TransportTests, Watched, address_matches, sync
from pye2_transport_amqp import AmqpConfig, AmqpTransport
from pye2_transport_amqp._backoff import Backoff
from pye2_transport_amqp._outbox import Outbox, Outgoing
from pye2_transport_amqp.config import parse_url
from pye2_transport_amqp.topology import route_for
from pye2_transport_memory.smoke import start_smoke_node

FAST: dict[str, Any] = {"reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.5, "connect_timeout": 5.0}
WAIT = 10.0
amqp = pytest.mark.amqp


def free_port() -> int:
    """A loopback TCP port nobody listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_url() -> str:
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/"


# -- the conformance kit --------------------------------------------------------------------

@amqp
class TestAmqpTransport(TransportTests):
    machine_max_examples = 5
    reconnect_timeout = 15.0

    @pytest.fixture
    def make_transport(self, amqp_url: str) -> Callable[[], AmqpTransport]:
        return lambda: AmqpTransport.from_url(amqp_url, **FAST)

    @pytest.fixture
    def unreachable_transport(self) -> AmqpTransport:
        return AmqpTransport.from_url(unreachable_url(), connect_timeout=2.0)

    @pytest.fixture
    def connect_timeout(self) -> float:
        return 2.0

    @pytest.fixture
    def make_node(self) -> Callable[..., Any]:
        return start_smoke_node


# -- fixtures of the AMQP-specific tests ----------------------------------------------------

@pytest.fixture
def make(amqp_url: str) -> Iterator[Callable[..., AmqpTransport]]:
    """``make(connect=True, **options)``: a transport on the test broker, closed at teardown."""
    made: list[AmqpTransport] = []

    def make_(*, connect: bool = True, rng: random.Random | None = None, **options: Any) -> AmqpTransport:
        transport = AmqpTransport(parse_url(amqp_url, **{**FAST, **options}), rng=rng)
        made.append(transport)
        if connect:
            transport.connect()
        return transport

    yield make_
    for transport in reversed(made):
        transport.close()


@pytest.fixture
def offline() -> Iterator[Callable[..., AmqpTransport]]:
    """Transports pointed at a port nobody listens on (never connected)."""
    made: list[AmqpTransport] = []

    def make_(**options: Any) -> AmqpTransport:
        transport = AmqpTransport.from_url(unreachable_url(), **options)
        made.append(transport)
        return transport

    yield make_
    for transport in made:
        transport.close()


@pytest.fixture
def prefix() -> str:
    return f"pye2test/{uuid.uuid4().hex}"


@pytest.fixture
def fresh_root(amqp_url: str) -> Iterator[str]:
    """A root (= exchange) of its own, deleted from the broker afterwards."""
    import pika

    root = f"pye2test_{uuid.uuid4().hex[:12]}"
    yield root
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().exchange_delete(root)
    finally:
        connection.close()


# -- URL and options (no broker) ------------------------------------------------------------

def test_url_defaults() -> None:
    config = parse_url("amqp://")
    assert (config.host, config.port, config.vhost, config.username, config.password) == (
        "localhost", 5672, "/", "guest", "guest")
    assert config.confirms and config.confirm_filters == ("+/+/config",)
    assert config.overflow == "raise" and config.max_message_bytes == 16 * 1024 * 1024
    assert parse_url("amqps://broker").port == 5671


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://u:p@h:5673/%2F", {"host": "h", "port": 5673, "vhost": "/", "username": "u", "password": "p"}),
        ("amqp://u:p@h/prod", {"vhost": "prod"}),
        ("amqp://h/", {"vhost": "/", "username": "guest"}),
        ("amqp://us%40er:p%3Aw%2Fd@h", {"username": "us@er", "password": "p:w/d"}),
        ("amqp://u@h", {"username": "u", "password": ""}),
        ("AMQPS://[::1]:5000/v%2Fh", {"scheme": "amqps", "host": "::1", "port": 5000, "vhost": "v/h"}),
        ("amqp://h?heartbeat=0&confirms=false&overflow=drop_oldest&offline_queue_max=0",
         {"heartbeat": 0, "confirms": False, "overflow": "drop_oldest", "offline_queue_max": 0}),
        ("amqp://h?confirm_filters=+/+/config,lummetry/%23&reconnect_max_attempts=none",
         {"confirm_filters": ("+/+/config", "lummetry/#"), "reconnect_max_attempts": None}),
        ("amqps://h?ca_file=/etc/ca.pem&connect_timeout=2.5", {"ca_file": "/etc/ca.pem", "connect_timeout": 2.5}),
    ],
)
def test_url_parsing(url: str, expected: dict[str, object]) -> None:
    config = parse_url(url)
    assert {k: getattr(config, k) for k in expected} == expected


def test_keyword_options_override_the_url() -> None:
    config = parse_url("amqp://u:p@h/?heartbeat=5&confirms=yes", heartbeat=7, confirms=False,
                       confirm_filters=["a/+"], password="other")
    assert (config.heartbeat, config.confirms, config.confirm_filters, config.password) == (7, False, ("a/+",), "other")
    assert AmqpConfig.from_url("amqp://h", port="5680").port == 5680


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("http://h", {}, "amqp:// or amqps://"),
        ("amqp://h:0", {}, "port"),
        ("amqp://h:99999", {}, "invalid AMQP URL"),
        ("amqp://[::1", {}, "invalid AMQP URL"),
        ("amqp://h/a/b", {}, "one segment"),
        ("amqp://h#frag", {}, "fragment"),
        ("amqp://h?heartbeat", {}, "no value"),
        ("amqp://h?heartbeat=1&heartbeat=2", {}, "twice"),
        ("amqp://h?hearbeat=3", {}, "did you mean 'heartbeat'"),
        ("amqp://h", {"conect_timeout": 1}, "did you mean 'connect_timeout'"),
        ("amqp://h", {"heartbeat": "often"}, "integer"),
        ("amqp://h", {"heartbeat": 70000}, "heartbeat"),
        ("amqp://h", {"heartbeat": True}, "integer"),
        ("amqp://h", {"connect_timeout": 0}, "positive"),
        ("amqp://h", {"publish_timeout": float("nan")}, "positive"),
        ("amqp://h", {"reconnect_initial_delay": 5, "reconnect_max_delay": 1}, "must not exceed"),
        ("amqp://h", {"reconnect_max_attempts": -1}, "reconnect_max_attempts"),
        ("amqp://h", {"confirms": "maybe"}, "boolean"),
        ("amqp://h", {"confirm_filters": ["a/#/b"]}, "'#'"),
        ("amqp://h", {"confirm_filters": 5}, "comma-separated"),
        ("amqp://h", {"overflow": "block"}, "overflow"),
        ("amqp://h", {"offline_queue_max": -1}, "offline_queue_max"),
        ("amqp://h", {"max_message_bytes": 0}, "max_message_bytes"),
        ("amqp://h", {"max_message_bytes": 600 * 1024 * 1024}, "max_message_bytes"),
        ("amqp://h", {"ca_file": "/x.pem"}, "amqps"),
        ("amqp://h", {"queue_prefix": "bad prefix"}, "queue prefix"),
        ("amqp://h", {"scheme": "amqps"}, "unknown AMQP option"),
    ],
)
def test_bad_urls_and_options_raise_config_error(url: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_url(url, **options)


@pytest.mark.parametrize("value", [None, 5, b"amqp://h"])
def test_non_string_url_is_config_error(value: object) -> None:
    with pytest.raises(ConfigError):
        parse_url(value)  # type: ignore[arg-type]


def test_direct_construction_validates_like_the_url() -> None:
    with pytest.raises(ConfigError):
        AmqpConfig(port="many")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        AmqpConfig(scheme="http")
    with pytest.raises(ConfigError):
        AmqpTransport("amqp://h")  # type: ignore[arg-type]


def test_password_is_never_shown() -> None:
    config = parse_url("amqp://alice:S3cr%21t@h/")
    transport = AmqpTransport(config)
    assert config.password == "S3cr!t"
    for text in (repr(config), str(config), config.safe_url, repr(transport)):
        assert "S3cr" not in text
    assert config.safe_url == "amqp://alice:***@h:5672/"
    with pytest.raises(ConfigError) as info:
        parse_url("amqp://h", password=12345678)
    assert "12345678" not in str(info.value)


def test_capabilities_follow_the_config() -> None:
    transport = AmqpTransport.from_url("amqp://h", max_message_bytes=1000, reconnect_max_attempts=0)
    caps = transport.capabilities
    assert (caps.wildcards, caps.fanout, caps.ordered_per_address) == (True, True, True)
    assert caps.max_message_bytes == 1000 and caps.reconnects is False
    assert AmqpTransport.from_url("amqp://h").capabilities.reconnects is True
    assert transport.name == "amqp" and not transport.is_connected and transport.state == "new"


# -- pure helpers (no broker) ---------------------------------------------------------------

def test_backoff_is_exponential_with_full_jitter() -> None:
    backoff = Backoff(0.5, 4.0, 5, random.Random(7))
    assert [backoff.cap(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    delays = [backoff.delay(n) for n in range(1, 6) for _ in range(50)]
    caps = [backoff.cap(n) for n in range(1, 6) for _ in range(50)]
    assert all(0.0 <= d <= c for d, c in zip(delays, caps))
    assert min(delays) < 0.1 and max(delays) > 3.0  # full jitter spans the whole range
    assert not backoff.exhausted(5) and backoff.exhausted(6)
    assert not Backoff(0.5, 4.0, None, random.Random()).exhausted(10**6)
    assert Backoff(0.5, 4.0, None, random.Random()).cap(10**6) == 4.0


def _item(n: int) -> Outgoing:
    return Outgoing(f"r/{n}", route_for(f"r/{n}"), bytes([n]))


def test_outbox_raise_policy_refuses_the_new_message() -> None:
    box = Outbox(2, "raise")
    box.offer(_item(1))
    box.offer(_item(2))
    with pytest.raises(QueueFull, match="'raise'"):
        box.offer(_item(3))
    assert [box.popleft().body for _ in range(len(box))] == [b"\x01", b"\x02"]


def test_outbox_drop_oldest_evicts_and_push_front_ignores_the_bound() -> None:
    box = Outbox(2, "drop_oldest")
    assert box.offer(_item(1)) is None
    assert box.offer(_item(2)) is None
    evicted = box.offer(_item(3))
    assert evicted is not None and evicted.body == b"\x01"
    assert box.push_front([_item(8), _item(9)]) == 2
    assert [i.body for i in box.clear()] == [b"\x08", b"\x09", b"\x02", b"\x03"]
    with pytest.raises(QueueFull):
        Outbox(0, "drop_oldest").offer(_item(1))  # nothing to evict


def test_importing_the_package_does_not_import_pika() -> None:
    code = ("import sys, pye2_transport_amqp, pye2_transport_amqp.plugin, pye2_transport_amqp.config, "
            "pye2_transport_amqp.topology; assert 'pika' not in sys.modules, 'pika imported'; "
            "pye2_transport_amqp.AmqpTransport; assert 'pika' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_plugin_host_builds_an_unconnected_amqp_transport(plugin_host: Any) -> None:
    transport = plugin_host.make_transport("amqps://u:p@broker.invalid/vh", heartbeat=5)
    assert isinstance(transport, AmqpTransport)
    assert transport.config.tls and transport.config.vhost == "vh" and transport.config.heartbeat == 5
    assert not transport.is_connected


# -- offline behaviour (no broker) ----------------------------------------------------------

def test_unreachable_broker_fails_with_chained_connect_error(offline: Callable[..., AmqpTransport]) -> None:
    transport = offline(connect_timeout=2.0)
    with pytest.raises(TransportConnectError, match="cannot connect") as info:
        transport.connect()
    assert info.value.__cause__ is not None  # the driver's error, kept for debugging
    assert "guest:guest" not in str(info.value)
    assert not transport.is_connected and transport.state == "new"
    with pytest.raises(TransportConnectError):
        transport.connect()  # a second attempt behaves the same


def test_silent_server_fails_within_the_connect_timeout() -> None:
    # Accepts TCP (the kernel completes the handshake into the backlog) but never speaks AMQP.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        transport = AmqpTransport.from_url(f"amqp://127.0.0.1:{server.getsockname()[1]}/", connect_timeout=1.0)
        outcome: list[BaseException] = []
        worker = threading.Thread(target=lambda: _capture(transport.connect, outcome), daemon=True)
        worker.start()
        worker.join(10.0)  # liveness bound only
        transport.close()
    assert not worker.is_alive(), "connect() hung"
    assert len(outcome) == 1 and isinstance(outcome[0], TransportConnectError), outcome


def _capture(call: Callable[[], object], into: list[BaseException]) -> None:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever escaped
        into.append(exc)


def test_unreadable_ca_file_is_a_config_error(tmp_path: Any) -> None:
    transport = AmqpTransport.from_url(f"amqps://127.0.0.1:{free_port()}/", ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="CA file"):
        transport.connect()
    transport.close()


def test_offline_queue_overflow_raises_queue_full(offline: Callable[..., AmqpTransport]) -> None:
    transport = offline(offline_queue_max=3)
    for i in range(3):
        transport.publish("pye2test/q", bytes([i]))
    with pytest.raises(QueueFull):
        transport.publish("pye2test/q", b"one too many")
    assert transport.stats()["outbox"] == 3


def test_offline_queue_drop_oldest_is_counted_and_logged(
    offline: Callable[..., AmqpTransport], caplog: pytest.LogCaptureFixture
) -> None:
    transport = offline(offline_queue_max=2, overflow="drop_oldest")
    with caplog.at_level(logging.WARNING, logger="pye2_transport_amqp"):
        for i in range(5):
            transport.publish("pye2test/q", bytes([i]))
    assert transport.stats()["dropped"] == 3 and transport.stats()["outbox"] == 2
    assert sum("dropped the oldest" in r.getMessage() for r in caplog.records) == 3


def test_command_publish_while_not_connected_is_withdrawn(offline: Callable[..., AmqpTransport]) -> None:
    transport = offline(publish_timeout=0.2)
    with pytest.raises(TransportError, match="withdrawn"):
        transport.publish("pye2test/node1/config", b"{}")
    assert transport.stats()["outbox"] == 0


def test_close_before_connect_drops_queued_messages_visibly(offline: Callable[..., AmqpTransport]) -> None:
    transport = offline()
    recorder = EventRecorder()
    transport.add_connection_listener(recorder)
    transport.publish("pye2test/a", b"1")
    transport.publish("pye2test/a", b"2")
    transport.close()
    assert transport.stats()["dropped"] == 2
    assert recorder.states == ["closed"]
    with pytest.raises(TransportClosed):
        transport.connect()
    with pytest.raises(TransportClosed):
        transport.force_reconnect()


def test_force_reconnect_needs_a_connection(offline: Callable[..., AmqpTransport]) -> None:
    with pytest.raises(TransportError, match="needs a connected transport"):
        offline().force_reconnect()


# -- topology on the real broker ------------------------------------------------------------

AWKWARD_ADDRESSES = ["a", "a/b", "a/b/c", "a/b.c", "a/b.c/d", "a/*", "a/%2E", "a/50%", "a//c", "a/", "a/#x"[:-2] + "/x"]
AWKWARD_FILTERS = ["#", "+", "a/#", "a/+", "a/+/c", "a/b.c/#", "a/*", "+/c", "a/+/#", "a/b.c", "a//c", "+/+"]


@amqp
def test_rabbitmq_routing_equals_mqtt_matching(make: Callable[..., AmqpTransport], prefix: str) -> None:
    publisher, subscriber = make(), make()
    addresses = [f"{prefix}/{a}" for a in AWKWARD_ADDRESSES]
    watched = []
    for relative in AWKWARD_FILTERS:
        got = Collector()
        subscriber.subscribe(f"{prefix}/{relative}", got)
        watched.append(Watched(f"{prefix}/{relative}", got))
    for address in addresses:
        publisher.publish(address, address.encode())
    assert sync(publisher, watched, addresses, WAIT)
    for w in watched:
        expected = sorted((a, a.encode()) for a in addresses if address_matches(w.filter, a))
        assert sorted((d.address, d.body) for d in w.collector.without_sentinels()) == expected, w.filter


@amqp
def test_first_level_wildcard_subscription_is_refused(make: Callable[..., AmqpTransport]) -> None:
    transport = make()
    for topic_filter in ("+/ctrl", "#"):
        with pytest.raises(ConfigError, match="starts with a wildcard"):
            transport.subscribe(topic_filter, Collector())
    assert transport.is_connected


# -- publisher confirms ---------------------------------------------------------------------

@amqp
def test_command_topic_publish_returns_after_the_broker_confirmed(
    make: Callable[..., AmqpTransport], fresh_root: str
) -> None:
    publisher, subscriber = make(), make()
    got = Collector()
    subscriber.subscribe(f"{fresh_root}/+/config", got)
    for i in range(5):
        publisher.publish(f"{fresh_root}/node{i}/config", b"cmd")  # matches the default "+/+/config"
        assert publisher.stats()["confirmed"] >= i + 1  # confirmed before publish() returned
    assert got.wait_for(5, WAIT)
    assert publisher.stats().get("nacked", 0) == 0


@amqp
def test_without_confirms_nothing_is_confirmed_and_messages_still_flow(
    make: Callable[..., AmqpTransport], prefix: str
) -> None:
    publisher, subscriber = make(confirms=False), make()
    got = Collector()
    subscriber.subscribe(f"{prefix}/#", got)
    publisher.publish(f"{prefix}/n/config", b"cmd")
    publisher.publish(f"{prefix}/x", b"plain")
    assert got.wait_for(2, WAIT)
    assert publisher.stats().get("confirmed", 0) == 0 and publisher.stats()["published"] == 2


# -- reconnect and connection events --------------------------------------------------------

@amqp
def test_force_reconnect_reports_events_and_restores_subscriptions(
    make: Callable[..., AmqpTransport], prefix: str
) -> None:
    subscriber, publisher = make(connect=False), make()
    recorder = EventRecorder()
    subscriber.add_connection_listener(recorder)
    got = Collector()
    subscriber.subscribe(f"{prefix}/+", got)
    subscriber.connect()
    mark = recorder.mark()
    subscriber.force_reconnect()
    assert recorder.wait_for_state("connected", WAIT, after=mark)
    events = recorder.events
    assert [e.state for e in events] == ["connected", "disconnected", "reconnecting", "connected"]
    assert isinstance(events[1].error, TransportError)
    assert events[2].attempt == 1 and 0.0 <= events[2].delay <= FAST["reconnect_initial_delay"]
    assert subscriber.is_connected and subscriber.stats()["reconnects"] == 1
    publisher.publish(f"{prefix}/after", b"after")
    assert got.wait_for_body(b"after", WAIT)
    assert [d.address for d in got.deliveries] == [f"{prefix}/after"]


@amqp
def test_messages_survive_a_publisher_reconnect(make: Callable[..., AmqpTransport], prefix: str) -> None:
    publisher, subscriber = make(), make()
    recorder = EventRecorder()
    publisher.add_connection_listener(recorder)
    got = Collector()
    subscriber.subscribe(f"{prefix}/n", got)
    sent = [i.to_bytes(2, "big") for i in range(400)]
    for i, body in enumerate(sent):
        if i == 200:
            publisher.force_reconnect()
        publisher.publish(f"{prefix}/n", body)
    assert recorder.wait_for_state("connected", WAIT, after=1)
    assert got.wait_until(lambda items: set(sent) <= {d.body for d in items}, WAIT)
    # At-least-once: unconfirmed messages are re-sent, so a duplicate may appear, a gap may not.
    assert set(got.bodies) == set(sent)


@amqp
def test_subscribe_while_reconnecting_is_set_up_on_reconnect(
    make: Callable[..., AmqpTransport], prefix: str
) -> None:
    subscriber = make(reconnect_initial_delay=1.0, reconnect_max_delay=1.0, rng=random.Random(3))
    publisher = make()
    recorder = EventRecorder()
    subscriber.add_connection_listener(recorder)
    subscriber.force_reconnect()
    assert recorder.wait_for_state("reconnecting", WAIT)
    got = Collector()
    subscriber.subscribe(f"{prefix}/late", got)  # returns at once while reconnecting
    assert recorder.wait_for_state("connected", WAIT)
    publisher.publish(f"{prefix}/late", b"late")
    assert got.wait_for_body(b"late", WAIT)


@amqp
def test_give_up_then_connect_again(make: Callable[..., AmqpTransport], prefix: str) -> None:
    transport, publisher = make(reconnect_max_attempts=0), make()
    recorder = EventRecorder()
    transport.add_connection_listener(recorder)
    got = Collector()
    transport.subscribe(f"{prefix}/x", got)
    transport.force_reconnect()
    assert recorder.wait_for_state("gave_up", WAIT)
    assert recorder.states == ["disconnected", "gave_up"]
    assert isinstance(recorder.events[-1].error, TransportError)
    assert not transport.is_connected and transport.state == "gave_up"
    with pytest.raises(TransportError, match="gave up"):
        transport.publish(f"{prefix}/x", b"lost?")
    with pytest.raises(TransportError, match="gave up"):
        transport.subscribe(f"{prefix}/y", Collector())
    transport.connect()  # an explicit connect() starts over, subscriptions included
    assert transport.is_connected and recorder.states[-1] == "connected"
    publisher.publish(f"{prefix}/x", b"back")
    assert got.wait_for_body(b"back", WAIT)


@amqp
def test_wrong_password_is_a_connect_error_that_hides_the_secret(amqp_url: str) -> None:
    config = parse_url(amqp_url, password="Wr0ngPa55", connect_timeout=5.0)
    transport = AmqpTransport(config)
    try:
        with pytest.raises(TransportConnectError, match="login refused") as info:
            transport.connect()
        assert "Wr0ngPa55" not in str(info.value)
    finally:
        transport.close()


@amqp
def test_tls_against_a_plain_amqp_port_is_a_connect_error(amqp_url: str) -> None:
    plain = parse_url(amqp_url)
    transport = AmqpTransport.from_url(f"amqps://{plain.host}:{plain.port}/", connect_timeout=3.0)
    try:
        with pytest.raises(TransportConnectError):
            transport.connect()
    finally:
        transport.close()


@amqp
def test_unknown_vhost_is_a_connect_error(amqp_url: str) -> None:
    transport = AmqpTransport(parse_url(amqp_url, vhost=f"nope-{uuid.uuid4().hex}", connect_timeout=5.0))
    try:
        with pytest.raises(TransportConnectError, match="vhost"):
            transport.connect()
    finally:
        transport.close()


@amqp
def test_broker_refusing_a_declaration_fails_that_call_only(
    make: Callable[..., AmqpTransport], prefix: str, fresh_root: str
) -> None:
    # The root's exchange already exists as non-durable: declaring it durable is refused (406).
    other = make(exchange_durable=False)
    other.subscribe(f"{fresh_root}/x", Collector())
    transport, publisher = make(), make()
    recorder = EventRecorder()
    transport.add_connection_listener(recorder)
    kept = Collector()
    transport.subscribe(f"{prefix}/kept", kept)
    with pytest.raises(TransportError, match="PRECONDITION_FAILED"):
        transport.subscribe(f"{fresh_root}/x", Collector())
    with pytest.raises(TransportError, match="PRECONDITION_FAILED"):
        transport.publish(f"{fresh_root}/n/config", b"cmd")
    assert recorder.wait_for_state("connected", WAIT)  # the transport recovered by itself
    assert sync(publisher, [Watched(f"{prefix}/kept", kept)], [f"{prefix}/kept"], WAIT, retry_every=0.5)
    assert transport.stats()["dropped"] >= 1


# -- handlers, threads, close ---------------------------------------------------------------

class LogRecords(logging.Handler):
    """Collects log records (from any thread) and lets a test wait for them on a Condition."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.cond = threading.Condition()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.records) >= n, timeout)


@amqp
def test_handler_errors_are_logged_with_traceback_and_counted(
    make: Callable[..., AmqpTransport], prefix: str
) -> None:
    transport = make()
    failing = Collector(raises=ValueError("boom on purpose"))
    transport.subscribe(f"{prefix}/x", failing)
    records = LogRecords(logging.ERROR)
    logger = logging.getLogger("pye2_transport_amqp")
    logger.addHandler(records)
    try:
        for i in range(3):
            transport.publish(f"{prefix}/x", bytes([i]))
        assert records.wait_for(3, WAIT)
    finally:
        logger.removeHandler(records)
    assert failing.bodies == [b"\x00", b"\x01", b"\x02"]  # every message reached the handler
    assert transport.stats()["handler_errors"] == 3
    assert all(r.exc_info and r.exc_info[0] is ValueError for r in records.records)
    assert all("raised" in r.getMessage() for r in records.records)


@amqp
def test_handlers_may_publish_and_subscribe_on_the_io_thread(
    make: Callable[..., AmqpTransport], prefix: str
) -> None:
    transport = make(confirm_filters=[f"{prefix}/+/config"])
    echoed, late = Collector(), Collector()
    errors: list[BaseException] = []

    def echo(delivery: Any) -> None:
        try:
            transport.publish(f"{prefix}/n1/config", b"echo:" + delivery.body)  # a command: cannot wait here
            transport.subscribe(f"{prefix}/late", late)
        except Pye2Error as exc:
            errors.append(exc)

    transport.subscribe(f"{prefix}/ping", echo)
    transport.subscribe(f"{prefix}/+/config", echoed)
    transport.publish(f"{prefix}/ping", b"1")
    assert echoed.wait_for_body(b"echo:1", WAIT)
    assert errors == []
    assert sync(transport, [Watched(f"{prefix}/late", late)], [f"{prefix}/late"], WAIT, retry_every=0.5)


@amqp
def test_close_flushes_what_was_handed_over(make: Callable[..., AmqpTransport], prefix: str) -> None:
    publisher, subscriber = make(), make()
    got = Collector()
    subscriber.subscribe(f"{prefix}/flush", got)
    sent = [i.to_bytes(2, "big") for i in range(500)]
    for body in sent:
        publisher.publish(f"{prefix}/flush", body)
    publisher.close()
    assert publisher.stats().get("dropped", 0) == 0
    assert got.wait_for(len(sent), WAIT)
    assert got.bodies == sent


@amqp
def test_close_joins_the_io_thread_emits_closed_and_is_terminal(make: Callable[..., AmqpTransport]) -> None:
    def io_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("pye2-amqp-")}

    before = io_threads()
    transport = make(connect=False)
    recorder = EventRecorder()
    transport.add_connection_listener(recorder)
    transport.connect()
    assert len(io_threads() - before) == 1
    transport.close()
    assert io_threads() - before == set()
    assert recorder.states == ["connected", "closed"]
    with pytest.raises(TransportClosed):
        transport.connect()
