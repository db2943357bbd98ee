"""MQTT transport: the shipped conformance kit against Mosquitto, plus MQTT-specific checks.

Broker tests (marked ``mqtt``) use the ``mqtt_url`` fixture: Mosquitto on
127.0.0.1:1883 unless PYE2_MQTT_URL says otherwise; they skip when it is down
(fail with PYE2_REQUIRE_BROKERS=1). Tests at the top are pure (config, topics,
queue and routing logic) and need no broker. Outage tests that kill a broker
live in test_mqtt_outage.py (they start their own Mosquitto).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pye2.errors import ConfigError, Pye2Error, QueueFull, TransportClosed, TransportConnectError, TransportError
from pye2.ports.transport import ConnectionEvent, Delivery, SupportsConnectionEvents, Transport
from pye2.testing import Collector, EventRecorder, TransportTests, Watched, force_reconnect_and_wait, sync
from pye2_transport_memory.smoke import start_smoke_node
from pye2_transport_mqtt import MqttConfig, MqttTransport
from pye2_transport_mqtt._outbox import FAILED, NO_CONNECTION, SENT, Outbox, Outgoing
from pye2_transport_mqtt._subscriptions import MqttSubscription, SubscriptionTable
from pye2_transport_mqtt._topics import matches, validate_filter, validate_topic
from pye2_transport_mqtt.config import parse_url

FAST = {"connect_timeout": 5, "reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.5}
SECRET = "s3cr3t-Pa55"


def free_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- conformance kit ----------------------------------------------------------------------


@pytest.mark.mqtt
class TestMqttTransport(TransportTests):
    """The shipped suite on MQTT 5 (the default protocol)."""

    machine_max_examples = 5
    machine_step_count = 20

    @pytest.fixture
    def make_transport(self, mqtt_url: str) -> Callable[[], Transport]:
        return lambda: MqttTransport.from_url(mqtt_url, **FAST)

    @pytest.fixture
    def unreachable_transport(self) -> Transport:
        return MqttTransport.from_url(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=2)

    @pytest.fixture
    def connect_timeout(self) -> float:
        return 2.0

    @pytest.fixture
    def make_node(self) -> Callable[..., Any]:
        return start_smoke_node


@pytest.mark.mqtt
class TestMqtt311Transport(TestMqttTransport):
    """The same suite on MQTT 3.1.1 (no subscription identifiers: local matching)."""

    machine_max_examples = 3

    @pytest.fixture
    def make_transport(self, mqtt_url: str) -> Callable[[], Transport]:
        return lambda: MqttTransport.from_url(mqtt_url, protocol="3.1.1", **FAST)


# -- config (pure) --------------------------------------------------------------------------


def test_url_defaults_per_scheme() -> None:
    plain = parse_url("mqtt://broker.example")
    secure = parse_url("mqtts://broker.example/")
    assert (plain.host, plain.port, plain.tls, plain.protocol) == ("broker.example", 1883, False, "5")
    assert (secure.port, secure.tls) == (8883, True)
    assert plain.client_id.startswith("pye2-") and plain.client_id != parse_url("mqtt://h").client_id
    assert plain.username is None and plain.password is None


def test_url_credentials_and_query_options() -> None:
    cfg = parse_url(
        "mqtts://us%40er:p%3Ass@10.0.0.5:9999?client_id=me&qos=1&ca=/etc/ca.pem&keepalive=30"
        "&clean_session=no&protocol=3.1.1&reconnect_max_attempts=4&overflow=drop_oldest"
    )
    assert (cfg.username, cfg.password, cfg.host, cfg.port) == ("us@er", "p:ss", "10.0.0.5", 9999)
    assert (cfg.client_id, cfg.qos, cfg.ca_file, cfg.keepalive) == ("me", 1, "/etc/ca.pem", 30)
    assert (cfg.clean_session, cfg.protocol, cfg.reconnect_max_attempts, cfg.overflow) == (
        False, "3.1.1", 4, "drop_oldest")


def test_keyword_options_override_the_url() -> None:
    cfg = MqttTransport.from_url("mqtt://h?qos=1&client_id=a", qos=2, client_id="b", password=None).config
    assert (cfg.qos, cfg.client_id) == (2, "b")
    assert MqttConfig.from_url("mqtt://h", offline_queue_max="7").offline_queue_max == 7


def test_plus_in_query_stays_a_wildcard() -> None:
    cfg = parse_url("mqtt://h?qos_overrides=lummetry/+/config:2,+/ctrl:1,a/%23:0")
    assert cfg.qos_overrides == (("lummetry/+/config", 2), ("+/ctrl", 1), ("a/#", 0))


@pytest.mark.parametrize(
    ("url", "options", "fragment"),
    [
        ("http://h", {}, "mqtt:// or mqtts://"),
        ("mqtt://h:99999", {}, "invalid MQTT URL"),
        ("mqtt://h:abc", {}, "invalid MQTT URL"),
        ("mqtt://h/some/path", {}, "path"),
        ("mqtt://h#frag", {}, "fragment"),
        ("mqtt://", {}, "no host"),
        ("mqtt://h?qos=3", {}, "qos"),
        ("mqtt://h?qos=one", {}, "integer"),
        ("mqtt://h?clean_session=maybe", {}, "boolean"),
        ("mqtt://h?keepalive", {}, "no value"),
        ("mqtt://h?qos=1&qos=2", {}, "twice"),
        ("mqtt://h?qoss=1", {}, "did you mean 'qos'"),
        ("mqtt://h?ca_file=/x.pem", {}, "mqtts"),
        ("mqtts://h?key_file=/k.pem", {}, "cert_file"),
        ("mqtt://h?qos_overrides=a/%23/b:1", {}, "topic filter"),
        ("mqtt://h?qos_overrides=a/b", {}, "FILTER:QOS"),
        ("mqtt://h?qos_overrides=a/b:5", {}, "0, 1 or 2"),
        ("mqtt://h", {"offline_queue_max": 0}, "offline_queue_max"),
        ("mqtt://h", {"reconnect_initial_delay": 5, "reconnect_max_delay": 1}, "must not exceed"),
        ("mqtt://h", {"reconnect_multiplier": 0.5}, "reconnect_multiplier"),
        ("mqtt://h", {"connect_timeout": 0}, "connect_timeout"),
        ("mqtt://h", {"connect_timeout": float("nan")}, "connect_timeout"),
        ("mqtt://h", {"reconnect_give_up_after": -1}, "reconnect_give_up_after"),
        ("mqtt://h", {"publish_timeout": -1}, "publish_timeout"),
        ("mqtt://h", {"max_message_bytes": 0}, "max_message_bytes"),
        ("mqtt://h", {"max_message_bytes": 1 << 30}, "max_message_bytes"),
        ("mqtt://h", {"protocol": "4"}, "protocol"),
        ("mqtt://h", {"overflow": "block"}, "overflow"),
        ("mqtts://h", {"ca": "/a", "ca_file": "/b"}, "twice"),
        ("mqtt://:pw@h", {}, "password needs a username"),
    ],
)
def test_bad_urls_and_options_raise_config_error(url: str, options: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_url(url, **options)
    assert fragment in str(info.value)


def test_non_string_url_and_wrong_config_type() -> None:
    with pytest.raises(ConfigError):
        parse_url(b"mqtt://h")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        MqttTransport("mqtt://h")  # type: ignore[arg-type]


def test_password_never_in_repr_or_safe_url() -> None:
    cfg = parse_url(f"mqtt://alice:{SECRET}@h:1883")
    transport = MqttTransport(cfg)
    for text in (repr(cfg), str(cfg), repr(transport), cfg.safe_url):
        assert SECRET not in text
    assert cfg.safe_url == "mqtt://alice:***@h:1883"
    assert cfg.password == SECRET


def test_command_topics_get_at_least_qos_1_by_default() -> None:
    cfg = parse_url("mqtt://h")
    assert cfg.qos_for("lummetry/node-1/config") == 1
    assert cfg.qos_for("naeural/0xai_abc/config") == 1
    assert cfg.qos_for("lummetry/ctrl") == 0
    assert cfg.qos_for("lummetry/a/b/config") == 0  # not the <root>/<node>/config shape
    assert parse_url("mqtt://h?qos=2").qos_for("lummetry/n/config") == 2
    assert parse_url("mqtt://h?qos_overrides=").qos_for("lummetry/n/config") == 0
    explicit = parse_url("mqtt://h", qos_overrides={"lummetry/ctrl": 2, "+/+/config": 0})
    assert (explicit.qos_for("lummetry/ctrl"), explicit.qos_for("x/n/config")) == (2, 0)


def test_backoff_is_exponential_capped_with_full_jitter() -> None:
    cfg = parse_url("mqtt://h", reconnect_initial_delay=0.5, reconnect_max_delay=4, reconnect_multiplier=2)
    assert [cfg.backoff_ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert cfg.backoff_ceiling(10_000) == 4.0  # no OverflowError
    assert cfg.reconnect_delay(3, 0.0) == 0.0
    assert cfg.reconnect_delay(3, 0.5) == 1.0
    assert 0.0 <= cfg.reconnect_delay(9, 0.999) < 4.0


def test_give_up_rules() -> None:
    forever = parse_url("mqtt://h")
    assert not forever.gives_up(10_000, 1e9) and forever.reconnects
    counted = parse_url("mqtt://h?reconnect_max_attempts=3")
    assert not counted.gives_up(3, 0.0) and counted.gives_up(4, 0.0)
    timed = parse_url("mqtt://h?reconnect_give_up_after=60")
    assert not timed.gives_up(1, 59.0) and timed.gives_up(1, 60.0)
    never = parse_url("mqtt://h?reconnect_max_attempts=0")
    assert never.gives_up(1, 0.0) and not never.reconnects
    assert not MqttTransport(never).capabilities.reconnects


# -- topics, queue, routing (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True), ("a/+/c", "a/c", False), ("a/#", "a", True), ("a/#", "a/b/c", True),
        ("#", "x/y", True), ("+", "x", True), ("+", "x/y", False), ("a/b", "a/b", True), ("+/+", "/x", True),
        ("#", "$SYS/load", False), ("+/load", "$SYS/load", False), ("$SYS/#", "$SYS/load", True),
    ],
)
def test_filter_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a+", "a/b#", "#/a", "x\x00y", "a" * 70000, 7])
def test_invalid_filters(bad: object) -> None:
    with pytest.raises(ConfigError):
        validate_filter(bad)


@pytest.mark.parametrize("bad", ["", "a/+", "#", "a\x00", "\ud800", None])
def test_invalid_topics(bad: object) -> None:
    with pytest.raises(ConfigError):
        validate_topic(bad)


def _item(n: int, qos: int = 0) -> Outgoing:
    return Outgoing("t", bytes([n]), qos)


def test_outbox_raise_policy_refuses_beyond_the_bound() -> None:
    box = Outbox(2, "raise", max_inflight=10)
    box.put(_item(1), connected=False)
    box.put(_item(2), connected=False)
    with pytest.raises(QueueFull, match="disconnected"):
        box.put(_item(3), connected=False)
    assert len(box) == 2 and box.dropped == 0


@pytest.mark.parametrize(("policy", "kept"), [("drop_oldest", [3, 4]), ("drop_newest", [1, 2])])
def test_outbox_drop_policies_keep_the_bound_and_count(policy: str, kept: list[int],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(2, policy, max_inflight=10)
    with caplog.at_level(logging.WARNING):
        for n in (1, 2, 3, 4):
            box.put(_item(n), connected=True)
    assert [box.take()[0].body[0] for _ in range(len(box))] == kept
    assert box.dropped == 2
    assert sum("dropped" in r.getMessage() for r in caplog.records) == 2  # never silent


def test_outbox_flow_control_and_new_link_order() -> None:
    box = Outbox(10, "raise", max_inflight=2)
    for n in range(5):
        box.put(_item(n, qos=1), connected=True)
    first, link = box.take()
    second, _ = box.take()
    assert not box.ready()  # two unconfirmed messages: the window is full
    box.confirmed()
    assert box.ready()
    third, _ = box.take()
    box.settle(third, link, NO_CONNECTION)  # QoS 1: paho keeps it; wait for a new link
    assert not box.ready()
    box.new_link([second, third])  # paho hands back what was never acknowledged
    assert box.ready() and box.in_paho == 0
    assert [box.take()[0].body[0] for _ in range(len(box))] == [1, 2, 3, 4]
    assert first.body == b"\x00"


def test_outbox_qos0_without_connection_goes_back_to_the_head() -> None:
    box = Outbox(10, "raise", max_inflight=5)
    box.put(_item(1), connected=True)
    box.put(_item(2), connected=True)
    item, link = box.take()
    box.settle(item, link, NO_CONNECTION)
    assert box.in_paho == 0 and not box.ready()
    box.new_link([])
    taken, link = box.take()
    box.settle(taken, link, SENT)
    assert taken.body == b"\x01" and box.in_paho == 1
    other, link = box.take()
    box.settle(other, link, FAILED)
    assert box.in_paho == 1 and box.clear() == 1


def test_routing_by_subscription_identifier_and_by_topic() -> None:
    table = SubscriptionTable()
    got: dict[str, list[Delivery]] = {"all": [], "plus": [], "exact": []}
    subs = {name: MqttSubscription(f, got[name].append, lambda s: None)
            for name, f in (("all", "r/#"), ("plus", "r/+"), ("exact", "r/a"))}
    ids = {name: table.add(sub, 0)[0].sub_id for name, sub in subs.items()}
    assert len(set(ids.values())) == 3
    assert table.route("r/a", None) == []  # not acknowledged by the broker yet: inactive
    for sub in subs.values():
        sub.activate()
    assert table.route("r/a", [ids["plus"]]) == [subs["plus"]]
    assert table.route("r/a", [ids["all"], ids["exact"], ids["all"]]) == [subs["all"], subs["exact"]]
    assert set(map(id, table.route("r/a", None))) == set(map(id, subs.values()))
    removed = table.remove(subs["plus"])
    assert removed is not None and table.route("r/a", [ids["plus"]]) == []  # late copy of a cancelled one
    assert table.add(MqttSubscription("r/+", print, lambda s: None), 0)[0].sub_id not in ids.values()


def test_handler_errors_are_logged_with_traceback_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    def boom(_: Delivery) -> None:
        raise RuntimeError("handler exploded")

    sub = MqttSubscription("a/b", boom, lambda s: None)
    with caplog.at_level(logging.ERROR):
        assert sub.deliver(Delivery("a/b", b"x")) is False
        assert sub.deliver(Delivery("a/b", b"y")) is False
    assert sub.handler_errors == 2
    assert all(r.exc_info and "handler exploded" in str(r.exc_info[1]) for r in caplog.records)


def test_importing_the_package_does_not_import_paho() -> None:
    code = ("import sys, pye2_transport_mqtt as m, pye2_transport_mqtt.plugin; "
            "assert 'paho' not in sys.modules, 'paho imported'; m.MqttConfig; "
            "assert 'paho' not in sys.modules; m.MqttTransport; assert 'paho' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_plugin_registers_both_schemes(plugin_host: object) -> None:
    for url in ("mqtt://127.0.0.1:1", "mqtts://127.0.0.1:1"):
        transport = plugin_host.make_transport(url, client_id="via-plugin")  # type: ignore[attr-defined]
        assert isinstance(transport, MqttTransport)
        assert transport.name == url.split(":")[0] and not transport.is_connected


# -- connect failures without a broker ------------------------------------------------------------


def test_unreachable_broker_raises_connect_error_with_cause() -> None:
    recorder = EventRecorder()
    transport = MqttTransport.from_url(f"mqtt://bob:{SECRET}@127.0.0.1:{free_port()}", connect_timeout=2)
    transport.add_connection_listener(recorder)
    with pytest.raises(TransportConnectError) as info:
        transport.connect()
    assert isinstance(info.value.__cause__, OSError)  # the driver's error is chained
    assert SECRET not in str(info.value)
    assert not transport.is_connected and "connected" not in recorder.states
    with pytest.raises(TransportConnectError):  # a second try fails the same way
        transport.connect()
    transport.close()
    assert recorder.states == ["closed"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def test_no_connack_within_the_timeout(silent_server: int) -> None:
    transport = MqttTransport.from_url(f"mqtt://127.0.0.1:{silent_server}", connect_timeout=0.5)
    with pytest.raises(TransportConnectError, match="no CONNACK"):
        transport.connect()
    assert not transport.is_connected
    transport.close()


def test_tls_against_a_plain_listener_fails_cleanly(silent_server: int, tmp_path: object) -> None:
    missing_ca = MqttTransport.from_url("mqtts://127.0.0.1:1", ca_file="/nonexistent/ca.pem", connect_timeout=1)
    with pytest.raises(TransportConnectError, match="TLS") as info:
        missing_ca.connect()
    assert isinstance(info.value.__cause__, OSError)
    missing_ca.close()
    handshake = MqttTransport.from_url(f"mqtts://127.0.0.1:{silent_server}", connect_timeout=0.5)
    with pytest.raises(TransportConnectError):
        handshake.connect()  # the TLS handshake times out: the server never answers
    handshake.close()


def test_queue_before_connect_and_after_close() -> None:
    transport = MqttTransport.from_url("mqtt://127.0.0.1:1", offline_queue_max=2)
    transport.publish("q/a", b"1")
    transport.publish("q/a", bytearray(b"2"))  # type: ignore[arg-type]  # accepted at run time
    with pytest.raises(QueueFull):
        transport.publish("q/a", b"3")
    with pytest.raises(ConfigError):
        transport.publish("q/a", "text")  # type: ignore[arg-type]
    transport.force_reconnect()  # not connected: nothing to drop, no error
    transport.close()
    with pytest.raises(TransportClosed):
        transport.publish("q/a", b"4")
    with pytest.raises(TransportClosed):
        transport.connect()
    with pytest.raises(TransportClosed):
        transport.force_reconnect()


# -- broker: MQTT specifics ---------------------------------------------------------------




@pytest.mark.mqtt
def test_command_topics_travel_with_qos_1(mqtt_url: str, open_mqtt: Callable[..., MqttTransport]) -> None:
    import paho.mqtt.client as paho  # an independent observer, not our code
    from paho.mqtt.enums import CallbackAPIVersion

    root = uuid.uuid4().hex  # <root>/<node>/config is the command shape (+/+/config)
    command, heartbeat = f"{root}/node1/config", f"{root}/ctrl"
    seen: dict[str, int] = {}
    done = threading.Condition()
    subscribed = threading.Event()
    observer = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"observer-{root[:8]}")

    def on_message(_c: object, _u: object, message: paho.MQTTMessage) -> None:
        with done:
            seen[message.topic] = message.qos
            done.notify_all()

    observer.on_message = on_message
    observer.on_subscribe = lambda *_: subscribed.set()
    broker = parse_url(mqtt_url)
    observer.connect(broker.host, broker.port)
    observer.loop_start()
    try:
        observer.subscribe(f"{root}/#", qos=2)  # the broker then forwards at the publisher's QoS
        assert subscribed.wait(5)
        publisher = open_mqtt()
        publisher.publish(command, b"{}")
        publisher.publish(heartbeat, b"{}")
        with done:
            assert done.wait_for(lambda: len(seen) == 2, 5)
        assert seen == {command: 1, heartbeat: 0}
    finally:
        observer.disconnect()
        observer.loop_stop()


@pytest.mark.mqtt
def test_reconnect_events_and_resubscribe(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    subscriber = open_mqtt(connect=False)
    recorder = EventRecorder()
    subscriber.add_connection_listener(recorder)
    got = Collector()
    subscriber.subscribe(f"{prefix}/+", got)
    subscriber.connect()
    publisher = open_mqtt()
    assert isinstance(subscriber, SupportsConnectionEvents)

    assert force_reconnect_and_wait(subscriber, recorder, 10)
    events = recorder.events
    assert [e.state for e in events] == ["connected", "disconnected", "reconnecting", "connected"]
    lost, retry = events[1], events[2]
    assert isinstance(lost.error, TransportError) and isinstance(retry.error, TransportError)
    assert retry.attempt == 1 and 0.0 <= retry.delay <= subscriber.config.backoff_ceiling(1)
    assert sync(publisher, [Watched(f"{prefix}/+", got)], [f"{prefix}/x"], 10, retry_every=0.5)
    publisher.publish(f"{prefix}/y", b"after")
    assert got.wait_for_body(b"after", 10)
    assert subscriber.stats.reconnects == 1
    subscriber.close()
    assert recorder.states[-1] == "closed"


@pytest.mark.mqtt
def test_offline_queue_flushes_in_order_on_connect(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    subscriber = open_mqtt()
    got = Collector()
    subscriber.subscribe(f"{prefix}/q", got)
    publisher = open_mqtt(connect=False, offline_queue_max=3)
    for n in range(3):
        publisher.publish(f"{prefix}/q", bytes([n]))
    with pytest.raises(QueueFull):
        publisher.publish(f"{prefix}/q", b"overflow")
    publisher.connect()
    assert got.wait_for(3, 10)
    publisher.publish(f"{prefix}/q", b"last")
    assert got.wait_for_body(b"last", 10)
    assert got.bodies == [b"\x00", b"\x01", b"\x02", b"last"]


@pytest.mark.mqtt
@pytest.mark.parametrize(("policy", "expected"), [("drop_oldest", [2, 3, 4]), ("drop_newest", [0, 1, 2])])
def test_offline_queue_drop_policies(open_mqtt: Callable[..., MqttTransport], prefix: str,
                                     policy: str, expected: list[int]) -> None:
    subscriber = open_mqtt()
    got = Collector()
    subscriber.subscribe(f"{prefix}/q", got)
    publisher = open_mqtt(connect=False, offline_queue_max=3, overflow=policy)
    for n in range(5):
        publisher.publish(f"{prefix}/q", bytes([n]))
    publisher.connect()
    assert got.wait_for(3, 10)
    # The queue is empty now, so the sentinels themselves are not subject to the policy.
    assert sync(publisher, [Watched(f"{prefix}/q", got)], [f"{prefix}/q"], 10)
    assert [d.body[0] for d in got.without_sentinels()] == expected
    assert publisher.stats.queue_dropped == 2


@pytest.mark.mqtt
def test_full_queue_while_connected_slows_the_caller_down(open_mqtt: Callable[..., MqttTransport],
                                                           prefix: str) -> None:
    subscriber = open_mqtt()
    got = Collector()
    subscriber.subscribe(f"{prefix}/burst", got)
    publisher = open_mqtt(offline_queue_max=2, max_inflight=1, qos=1)
    sent = [n.to_bytes(2, "big") for n in range(300)]
    for body in sent:  # far faster than one acknowledged message at a time: publish() waits, never refuses
        publisher.publish(f"{prefix}/burst", body)
    assert got.wait_for(len(sent), 20)
    assert got.bodies == sent
    assert publisher.stats.queue_dropped == 0


@pytest.mark.mqtt
def test_close_drains_acknowledged_publishes(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    subscriber = open_mqtt()
    got = Collector()
    address = f"{prefix}/n1/config"
    subscriber.subscribe(address, got)
    publisher = open_mqtt(qos=1, drain_timeout=10)
    sent = [n.to_bytes(2, "big") for n in range(200)]
    for body in sent:
        publisher.publish(address, body)
    publisher.close()  # returns once the broker acknowledged everything (or drain_timeout)
    assert publisher.stats.published == len(sent)
    assert got.wait_for(len(sent), 10)
    assert got.bodies == sent


@pytest.mark.mqtt
def test_handler_failure_is_counted_and_does_not_stop_the_loop(
    open_mqtt: Callable[..., MqttTransport], prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = open_mqtt()
    failing, healthy = Collector(raises=ValueError("boom on purpose")), Collector()
    transport.subscribe(f"{prefix}/h", failing)
    transport.subscribe(f"{prefix}/h", healthy)
    with caplog.at_level(logging.ERROR, logger="pye2_transport_mqtt"):
        for n in range(3):
            transport.publish(f"{prefix}/h", bytes([n]))
        assert healthy.wait_for(3, 10)
    assert transport.stats.handler_errors == 3
    assert any(r.exc_info and "boom on purpose" in str(r.exc_info[1]) for r in caplog.records)
    assert transport.is_connected


@pytest.mark.mqtt
def test_subscribe_from_a_handler_does_not_deadlock(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    transport = open_mqtt()
    late = Collector()
    subscribed = threading.Event()

    def subscribe_more(_: Delivery) -> None:
        if not subscribed.is_set():
            transport.subscribe(f"{prefix}/late", late)  # runs on paho's thread
            subscribed.set()

    transport.subscribe(f"{prefix}/first", subscribe_more)
    transport.publish(f"{prefix}/first", b"go")
    assert subscribed.wait(10)
    assert sync(transport, [Watched(f"{prefix}/late", late)], [f"{prefix}/late"], 10, retry_every=0.5)


@pytest.mark.mqtt
def test_no_driver_exception_escapes(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    transport = open_mqtt()
    calls: list[Callable[[], object]] = [
        lambda: transport.publish(f"{prefix}/+", b"x"),
        lambda: transport.publish(f"{prefix}/t", 42),  # type: ignore[arg-type]
        lambda: transport.publish(f"{prefix}/\x00", b"x"),
        lambda: transport.publish("a" * 70_000, b"x"),
        lambda: transport.subscribe(f"{prefix}/#/x", Collector()),
        lambda: transport.subscribe(f"{prefix}/ok", "not callable"),  # type: ignore[arg-type]
        lambda: transport.add_connection_listener(None),  # type: ignore[arg-type]
        transport.force_reconnect,
        transport.connect,
        transport.close,
        transport.force_reconnect,
        lambda: transport.subscribe(f"{prefix}/ok", Collector()),
        transport.close,
    ]
    escaped = []
    for call in calls:
        try:
            call()
        except Pye2Error:
            pass
        except BaseException as exc:  # noqa: BLE001 - what we are looking for
            escaped.append(exc)
    assert escaped == []


@pytest.mark.mqtt
def test_listener_exception_is_isolated(open_mqtt: Callable[..., MqttTransport],
                                        caplog: pytest.LogCaptureFixture) -> None:
    transport = open_mqtt(connect=False)
    recorder = EventRecorder()

    def broken(_: ConnectionEvent) -> None:
        raise RuntimeError("listener bug")

    transport.add_connection_listener(broken)
    transport.add_connection_listener(recorder)
    with caplog.at_level(logging.ERROR, logger="pye2_transport_mqtt"):
        transport.connect()
        assert recorder.wait_for_state("connected", 5)
    assert transport.is_connected
    assert any("listener" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
@pytest.mark.parametrize("same_filter", [True, False], ids=["same-filter", "overlapping-filter"])
def test_new_handle_gets_nothing_routed_before_it(open_mqtt: Callable[..., MqttTransport], prefix: str,
                                                  protocol: str, same_filter: bool) -> None:
    address = f"{prefix}/a"
    first_filter, second_filter = address, (address if same_filter else f"{prefix}/+")
    transport, publisher, observer = open_mqtt(protocol=protocol), open_mqtt(), open_mqtt()
    routed, first, second = Collector(), Collector(), Collector()
    observer.subscribe(address, routed)
    joined = threading.Event()

    def first_handler(delivery: Delivery) -> None:
        first(delivery)
        # m2 and m3 are routed to us (the observer got them too) before we subscribe again:
        # they are still on their way while the second handle is made, on this very thread.
        if delivery.body == b"m1" and routed.wait_for(3, 10):
            transport.subscribe(second_filter, second)
            joined.set()

    transport.subscribe(first_filter, first_handler)
    for body in (b"m1", b"m2", b"m3"):
        publisher.publish(address, body)
    assert joined.wait(15), "the second subscription was not made"
    # A subscribe() from this thread returns on its own acknowledgement, which the broker
    # sends after the second handle's: from now on the second handle is live.
    transport.subscribe(f"{prefix}/fence", Collector())
    publisher.publish(address, b"m4")
    assert second.wait_for_body(b"m4", 10)
    assert sync(publisher, [Watched(first_filter, first), Watched(second_filter, second)], [address], 10)
    assert [d.body for d in first.without_sentinels()] == [b"m1", b"m2", b"m3", b"m4"]
    assert [d.body for d in second.without_sentinels()] == [b"m4"]
