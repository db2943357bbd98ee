"""What a sender controls reaches a log line escaped and cut: one line, no terminal controls, no megabytes.

Each test feeds a hostile value (newlines that forge log entries, ANSI escapes,
bidi overrides, a megabyte) through a code path that logs it, and checks the
formatted message of every record: printable, one line, bounded. Tracebacks
(``exc_info``) are Python's own rendering of our code and are not checked here;
where the exception's text comes from the wire, the traceback goes to DEBUG.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pye2.adapters.system_clock import SystemClock
from pye2.domain.logtext import MARKER_MAX, clip
from pye2.domain.messages import NotificationEvent
from pye2.domain.notifications import ExpectedResponse
from pye2.errors import TransportError
from pye2.ports.transport import Delivery
from pye2.service.confirmations import ConfirmationTracker, Expectation
from pye2.service.decode_pool import DecodePool
from pye2.service.ratelimit import LogLimiter
from pye2.service.sequencer import CommandSequencer
from pye2.service.stats import SessionStats
from pye2_transport_mqtt import MqttTransport
from pye2_transport_mqtt._client import mqtt
from pye2_transport_mqtt._outbox import Outbox, Outgoing
from pye2_transport_mqtt._subscriptions import MqttSubscription
from pye2_transport_mqtt._writer import DirectWriteClient

#: a value a hostile sender picks: a forged second log entry, terminal escapes, bidi tricks, and bulk
EVIL = "node-1\n2026-01-01 00:00:00 CRITICAL pye2: forged entry\r\x1b[2J\x1b]0;owned\x07\u202egnp.exe\u2028" + "A" * 1_000_000
#: a formatted log message may hold a few clipped values plus our own text
MAX_LINE = 1200


def _assert_safe_records(records: list[logging.LogRecord], *, expect: int = 1) -> None:
    assert len(records) >= expect, "the hostile value was not logged at all"
    for record in records:
        text = record.getMessage()
        assert text.isprintable(), repr(text[:300])
        assert not any(ch in text for ch in "\n\r\x1b\x85\u2028\u2029\u202e\u200b")
        assert len(text) <= MAX_LINE, len(text)


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(name)]


def test_clip_neutralises_the_hostile_value() -> None:
    out = clip(EVIL)
    assert out.isprintable() and len(out) <= 200 + MARKER_MAX
    assert out.startswith("node-1\\x0a2026-01-01") and out.endswith("chars)")


def test_mqtt_subscription_handler_error_on_a_hostile_topic(caplog: pytest.LogCaptureFixture) -> None:
    def handler(_delivery: Delivery) -> None:
        raise ValueError("handler bug")

    sub = MqttSubscription("root/#", handler, lambda _s: None)
    with caplog.at_level(logging.ERROR):
        assert sub.deliver(Delivery(EVIL, b"{}")) is False
    _assert_safe_records(_records(caplog, "pye2_transport_mqtt"))


def test_mqtt_outbox_drop_names_a_hostile_topic(caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(1, "drop_oldest", max_inflight=10)
    with caplog.at_level(logging.WARNING):
        box.put(Outgoing(EVIL, b"1", 0), connected=False)
        box.put(Outgoing(EVIL, b"2", 0), connected=False)
    newest = Outbox(1, "drop_newest", max_inflight=10)
    with caplog.at_level(logging.WARNING):
        newest.put(Outgoing("ok", b"1", 0), connected=False)
        newest.put(Outgoing(EVIL, b"2", 0), connected=False)
    _assert_safe_records(_records(caplog, "pye2_transport_mqtt"), expect=2)


def test_paho_log_lines_quote_wire_topics_clipped(caplog: pytest.LogCaptureFixture) -> None:
    client = DirectWriteClient(CallbackAPIVersion.VERSION2, client_id=f"logsafe-{uuid.uuid4().hex[:8]}")
    logger = logging.getLogger("pye2test.paho.logsafety")
    client.enable_logger(logger)
    seen: list[str] = []
    client.on_log = lambda _c, _u, _level, text: seen.append(text)
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        client._easy_log(mqtt.MQTT_LOG_DEBUG, "Received PUBLISH (d%d, q%d, r%d, m%d), '%s', ...  (%d bytes)",
                         0, 1, 0, 7, EVIL, 12)
        client._easy_log(mqtt.MQTT_LOG_DEBUG, "Received PUBLISH on %s", EVIL.encode())
    _assert_safe_records([r for r in caplog.records if r.name == logger.name], expect=2)
    assert seen and all(text.isprintable() and len(text) <= MAX_LINE for text in seen)


def test_decode_failure_quoting_the_message_is_one_clipped_line(caplog: pytest.LogCaptureFixture) -> None:
    def decode(item: bytes) -> Any:
        raise KeyError(item.decode())  # a bug whose error text quotes the wire

    pool: DecodePool[bytes, Any] = DecodePool(decode, 1, name="logsafety")
    try:
        with caplog.at_level(logging.ERROR):
            results = pool.map([EVIL.encode()])
    finally:
        pool.close()
    assert isinstance(results[0], KeyError)
    records = _records(caplog, "pye2.service.decode_pool")
    _assert_safe_records(records)
    assert all(r.exc_info is None for r in records if r.levelno >= logging.ERROR)  # the traceback is DEBUG


def test_a_command_that_cannot_be_sent_is_logged_clipped(caplog: pytest.LogCaptureFixture) -> None:
    """Descriptions and lanes name nodes and pipelines, which come from heartbeats."""
    clock = SystemClock()
    try:
        tracker = ConfirmationTracker(clock)

        def publish(_topic: str, body: bytes) -> None:
            if body == b"2":
                raise TransportError(f"refused: {EVIL}")

        sequencer = CommandSequencer(tracker, publish, SessionStats())
        expect = [Expectation("node", ExpectedResponse.pipeline_ok("p"))]
        first = tracker.register(f"update pipeline on {EVIL}", expect)
        second = tracker.register(f"archive pipeline on {EVIL}", expect)
        with caplog.at_level(logging.DEBUG, logger="pye2.service.sequencer"):
            sequencer.submit((EVIL, "p"), "t", b"1", first, 30.0)
            sequencer.submit((EVIL, "p"), "t", b"2", second, 30.0)  # waits behind the first (DEBUG line)
            tracker.offer(NotificationEvent("node", None, "p", None, None, 1, "NORMAL", "ok",
                                            {"EE_PAYLOAD_PATH": ["node", "p", None, None], "NOTIFICATION_CODE": 1}))
        assert first.ok and second.done and not second.ok
    finally:
        clock.close()
    _assert_safe_records(_records(caplog, "pye2.service.sequencer"), expect=2)


def test_the_log_limiter_holds_megabyte_senders_in_small_keys() -> None:
    limiter = LogLimiter(max_keys=16)
    for i in range(100):
        assert limiter.allow((f"{i}{EVIL}", "signature"), 0.0)
        assert not limiter.allow((f"{i}{EVIL}", "signature"), 1.0)
    assert len(limiter) == 16 and limiter.suppressed == 100
    assert all(len(key) <= 64 for key in limiter.stored_keys())


@pytest.mark.mqtt
def test_hostile_topic_over_a_real_broker(mqtt_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A long topic with a line separator and a bidi override, through Mosquitto, to a handler that fails.

    (Mosquitto itself refuses C0 and C1 control characters in topics: it drops the publisher's link.)
    """
    prefix = f"pye2test/{uuid.uuid4().hex}"
    topic = f"{prefix}/node-1\u20282026-01-01 CRITICAL forged entry\u202egnp.exe\u200b" + "A" * 20_000
    got = threading.Event()

    def handler(_delivery: Delivery) -> None:
        got.set()
        raise ValueError("handler bug")

    sub_t = MqttTransport.from_url(mqtt_url, connect_timeout=5)
    pub_t = MqttTransport.from_url(mqtt_url, connect_timeout=5)
    try:
        sub_t.connect()
        pub_t.connect()
        with caplog.at_level(logging.ERROR):
            sub_t.subscribe(f"{prefix}/#", handler)
            pub_t.publish(topic, b"{}")
            assert got.wait(10)
            time.sleep(0.1)
    finally:
        pub_t.close()
        sub_t.close()
    _assert_safe_records(_records(caplog, "pye2_transport_mqtt"))
