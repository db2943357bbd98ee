"""The MQTT transport's direct publish path (``pye2_transport_mqtt._writer`` and ``MqttTransport.publish``).

Pure tests drive a ``DirectWriteClient`` over a socket pair: a quiet publish leaves
its packet queued without waking the network thread, ``write_now`` writes the whole
FIFO in order, and every case it cannot finish (another writer, a full socket, a
broken one, a TLS-like socket) is handed to the network thread intact; paho's log
lines still reach a logger or ``on_log`` that listens. The outbox's
``take_now`` rule is checked on its own. Against Mosquitto: idle publishes take the
direct path, messages queued behind a busy sender and direct ones keep one order,
publishing from a handler still queues, and the order holds across a broker outage
(the private broker of ``test_mqtt_outage``) and forced reconnects.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from test_mqtt_outage import Broker, broker_factory, mosquitto_bin  # noqa: F401 - fixtures used by name

from pye2.ports.transport import Delivery
from pye2.testing import Collector, EventRecorder
from pye2_transport_mqtt import MqttTransport
from pye2_transport_mqtt._outbox import NO_CONNECTION, Outbox, Outgoing
from pye2_transport_mqtt._writer import DirectWriteClient

WAIT = 15.0


# -- a writer on a socket pair ----------------------------------------------------------------


def read_packets(data: bytes) -> list[tuple[int, bytes]]:
    """Split raw MQTT bytes into (first byte, variable part) pairs; the data must end on a packet."""
    out, pos = [], 0
    while pos < len(data):
        header, pos = data[pos], pos + 1
        length = shift = 0
        while True:
            byte, pos = data[pos], pos + 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        out.append((header, data[pos:pos + length]))
        pos += length
    assert pos == len(data), "bytes after the last complete packet"
    return out


def publish_fields(header: int, variable: bytes) -> tuple[int, str, bytes]:
    """(QoS, topic, payload) of a PUBLISH written by an MQTT 5 client with no properties."""
    qos = header >> 1 & 3
    size = struct.unpack("!H", variable[:2])[0]
    pos = 2 + size + (2 if qos else 0)
    assert variable[pos] == 0  # empty property block
    return qos, variable[2:2 + size].decode(), variable[pos + 1:]


class Rig:
    """A DirectWriteClient writing one end of a socket pair, plus the pair paho wakes its thread with."""

    def __init__(self) -> None:
        self.client = DirectWriteClient(CallbackAPIVersion.VERSION2, client_id=f"wrig-{uuid.uuid4().hex[:8]}",
                                        protocol=mqtt.MQTTv5)
        self.client.suppress_exceptions = True
        self.ours, self.peer = socket.socketpair()
        self.ours.setblocking(False)
        self.client._sock = self.ours  # what paho's connect() would have set
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.client._sockpairR, self.client._sockpairW = self.wake_r, self.wake_w  # what loop_start() sets

    def woken(self) -> bool:
        """Whether something woke the network thread since the last call (consumes the wake-up)."""
        if not select.select([self.wake_r], [], [], 0)[0]:
            return False
        self.wake_r.recv(100)
        return True

    def received(self) -> bytes:
        """Everything the peer has been sent so far (non-blocking)."""
        data = b""
        while select.select([self.peer], [], [], 0)[0]:
            chunk = self.peer.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        for sock in (self.ours, self.peer, self.wake_r, self.wake_w):
            sock.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = Rig()
    yield made
    made.close()


def test_the_installed_paho_supports_direct_writing(rig: Rig) -> None:
    assert rig.client.direct_writing


def test_a_quiet_publish_waits_for_write_now(rig: Rig) -> None:
    info = rig.client.publish_quietly("w/t", b"body", 1)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS
    assert rig.client.want_write() and not rig.woken() and rig.received() == b""
    assert rig.client.write_now() is True
    assert not rig.client.want_write() and not rig.woken()
    packets = read_packets(rig.received())
    assert [publish_fields(*p) for p in packets] == [(1, "w/t", b"body")]
    assert info.mid in rig.client._out_messages  # paho still waits for its PUBACK (and resends it otherwise)


def test_write_now_writes_the_whole_fifo_in_order(rig: Rig) -> None:
    for n in range(3):
        rig.client.publish_quietly("w/o", bytes([n]), n % 2)
    assert rig.client.write_now() is True
    assert [publish_fields(*p) for p in read_packets(rig.received())] == [
        (0, "w/o", b"\x00"), (1, "w/o", b"\x01"), (0, "w/o", b"\x02")]


def test_a_publish_from_another_thread_still_wakes_the_network_thread(rig: Rig) -> None:
    rig.client._thread = threading.current_thread()  # threaded mode: paho only queues and wakes
    try:
        rig.client.publish("w/n", b"normal", qos=0)
    finally:
        rig.client._thread = None
    assert rig.woken() and rig.client.want_write() and rig.received() == b""


def test_a_busy_writer_hands_over_to_the_network_thread(rig: Rig) -> None:
    rig.client.publish_quietly("w/b", b"queued", 1)
    with rig.client._tx_lock:  # another thread is writing
        assert rig.client.write_now() is False
        assert rig.received() == b""
    assert rig.woken() and rig.client.want_write()
    assert rig.client.loop_write() == mqtt.MQTT_ERR_SUCCESS  # what the woken network thread does
    assert [publish_fields(*p) for p in read_packets(rig.received())] == [(1, "w/b", b"queued")]


def test_a_full_socket_leaves_the_rest_to_the_network_thread_intact(rig: Rig) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: far more than a socket pair buffers
    rig.client.publish_quietly("w/big", big, 1)
    rig.client.publish_quietly("w/next", b"after", 1)
    assert rig.client.write_now() is False  # it would block: written in part
    assert rig.woken() and rig.client.want_write()
    chunks: list[bytes] = []
    done = threading.Event()

    def drain() -> None:
        while not done.is_set() or select.select([rig.peer], [], [], 0)[0]:
            if select.select([rig.peer], [], [], 0.05)[0]:
                chunks.append(rig.peer.recv(1 << 20))

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        while rig.client.want_write():  # the network thread's loop_write, each time select says writable
            select.select([], [rig.ours], [], 1.0)
            assert rig.client.loop_write() == mqtt.MQTT_ERR_SUCCESS
    finally:
        done.set()
        reader.join()
    assert [publish_fields(*p) for p in read_packets(b"".join(chunks))] == [(1, "w/big", big), (1, "w/next", b"after")]


def test_a_broken_socket_raises_nothing_and_keeps_the_packet(rig: Rig) -> None:
    rig.peer.close()
    rig.client.publish_quietly("w/x", b"lost link", 1)
    assert rig.client.write_now() is False
    assert rig.woken() and rig.client.want_write()  # the network thread finds the loss and reconnects


def test_a_socket_of_another_kind_is_written_by_the_network_thread(rig: Rig) -> None:
    class Wrapped(socket.socket):
        """Stands in for an SSLSocket (a socket.socket subclass not to be written here)."""

    wrapped = Wrapped(fileno=rig.ours.detach())
    rig.ours = wrapped
    rig.client._sock = wrapped
    rig.client.publish_quietly("w/tls", b"secret", 1)
    assert rig.client.write_now() is False
    assert rig.woken() and rig.received() == b""
    assert rig.client.loop_write() == mqtt.MQTT_ERR_SUCCESS
    assert [publish_fields(*p) for p in read_packets(rig.received())] == [(1, "w/tls", b"secret")]


def test_without_the_paho_internals_it_publishes_as_paho_does(rig: Rig) -> None:
    rig.client.direct_writing = False  # what a paho without the expected internals gets
    rig.client._thread = threading.current_thread()  # threaded mode
    try:
        rig.client.publish_quietly("w/p", b"plain", 1)
    finally:
        rig.client._thread = None
    assert rig.woken()  # paho's own wake-up
    assert rig.client.write_now() is False and rig.received() == b""
    assert rig.client.loop_write() == mqtt.MQTT_ERR_SUCCESS
    assert [publish_fields(*p) for p in read_packets(rig.received())] == [(1, "w/p", b"plain")]


def test_qos0_completion_runs_on_the_writing_thread(rig: Rig) -> None:
    completed: list[tuple[int, str]] = []
    rig.client.on_publish = lambda _c, _u, mid, _rc, _p: completed.append((mid, threading.current_thread().name))
    info = rig.client.publish_quietly("w/q0", b"x", 0)
    assert completed == []
    assert rig.client.write_now() is True
    assert completed == [(info.mid, threading.current_thread().name)] and info.is_published()


def test_paho_log_lines_still_reach_whoever_listens(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("pye2test.paho")
    rig.client.enable_logger(logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        rig.client.publish_quietly("w/l", b"quiet", 1)
    assert not [r for r in caplog.records if r.name == logger.name]  # DEBUG is off: skipped early
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        rig.client.publish_quietly("w/l", b"loud", 1)
    assert any("Sending PUBLISH" in r.getMessage() for r in caplog.records if r.name == logger.name)
    lines: list[str] = []
    rig.client.on_log = lambda _c, _u, _level, text: lines.append(text)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        rig.client.publish_quietly("w/l", b"callback", 1)
    assert any("Sending PUBLISH" in line for line in lines)  # the on_log callback always hears it


def test_the_reader_still_reads(rig: Rig) -> None:
    events: list[tuple[str, Any, bytes]] = []
    rig.client.on_qos0_publish = lambda topic, ids, body: events.append((topic, ids, body))
    variable = struct.pack("!H", 3) + b"r/a" + b"\x02\x0b\x07" + b"hello"
    rig.peer.sendall(bytes([0x30, len(variable)]) + variable)
    while select.select([rig.ours], [], [], 0)[0]:
        rig.client.loop_read()
    assert events == [("r/a", (7,), b"hello")]


# -- the outbox rule --------------------------------------------------------------------------


def test_take_now_only_when_it_overtakes_nothing() -> None:
    box = Outbox(10, "raise", max_inflight=3)
    link = box.take_now()
    assert link is not None and box.in_paho == 1
    box.put(Outgoing("t", b"q", 1), connected=True)
    assert box.take_now() is None and box.in_paho == 1  # something is queued: it goes first
    assert box.take()[0].body == b"q" and box.in_paho == 2
    assert box.take_now() == link and box.in_paho == 3
    assert box.take_now() is None  # the window is full
    box.confirmed()
    box.settle(Outgoing("t", b"d", 1), link, NO_CONNECTION)  # paho had no socket (QoS 1 stays in paho)
    assert box.in_paho == 2 and not len(box)
    assert box.take_now() is None  # room and nothing queued, but the link is blocked until the next CONNACK
    box.new_link([Outgoing("t", b"back", 1)])  # what paho never had acknowledged
    assert box.take_now() is None  # it goes first
    assert box.take()[0].body == b"back"
    assert box.take_now() == link + 1 and box.in_paho == 2


# -- against Mosquitto ----------------------------------------------------------------------




def first_seen(collector: Collector) -> list[bytes]:
    """Bodies in arrival order, repeats (QoS 1 resends) dropped."""
    bodies = collector.bodies
    return sorted(set(bodies), key=bodies.index)


@pytest.mark.mqtt
@pytest.mark.parametrize("qos", [0, 1])
def test_idle_publishes_take_the_direct_path(open_mqtt: Callable[..., MqttTransport], prefix: str,
                                             qos: int) -> None:
    subscriber = open_mqtt(qos=1)
    got = Collector()
    subscriber.subscribe(f"{prefix}/d", got)
    publisher = open_mqtt(qos=qos)
    for n in range(10):
        publisher.publish(f"{prefix}/d", bytes([n]))
        assert got.wait_for(n + 1, WAIT)
    assert got.bodies == [bytes([n]) for n in range(10)]
    assert publisher.stats.direct_publishes == 10


@pytest.mark.mqtt
def test_queued_and_direct_messages_keep_one_order(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    subscriber = open_mqtt(qos=1)
    got = Collector()
    subscriber.subscribe(f"{prefix}/o", got)
    publisher = open_mqtt(qos=1, max_inflight=2)
    sent = [n.to_bytes(2, "big") for n in range(90)]
    for body in sent[:30]:
        publisher.publish(f"{prefix}/o", body)
    direct_before = publisher.stats.direct_publishes
    assert direct_before > 0
    with publisher._send_mutex:  # a hand-off under way: everything published now must queue
        for body in sent[30:60]:
            publisher.publish(f"{prefix}/o", body)
        assert publisher.stats.direct_publishes == direct_before
    for body in sent[60:]:  # behind the queue until it drains, then direct again
        publisher.publish(f"{prefix}/o", body)
    assert got.wait_for(len(sent), WAIT)
    assert got.bodies == sent
    publisher.close()  # drains: every acknowledgement is in
    assert publisher.stats.published == len(sent) and publisher.stats.queue_dropped == 0


@pytest.mark.mqtt
def test_publishing_from_a_handler_goes_through_the_queue(open_mqtt: Callable[..., MqttTransport],
                                                          prefix: str) -> None:
    transport = open_mqtt()
    echoes = Collector()

    def echo(delivery: Delivery) -> None:  # runs on the network thread
        transport.publish(f"{prefix}/echo", delivery.body)

    transport.subscribe(f"{prefix}/in", echo)
    transport.subscribe(f"{prefix}/echo", echoes)
    transport.publish(f"{prefix}/in", b"ping")
    assert echoes.wait_for_body(b"ping", WAIT)
    assert transport.stats.direct_publishes == 1  # the caller's message only


@pytest.mark.mqtt
def test_order_holds_across_forced_reconnects(open_mqtt: Callable[..., MqttTransport], prefix: str) -> None:
    subscriber = open_mqtt(qos=1)  # stays connected: the broker delivers all it accepted
    got = Collector()
    subscriber.subscribe(f"{prefix}/r", got)
    publisher = open_mqtt(connect=False, qos=1, max_inflight=4)
    recorder = EventRecorder()
    publisher.add_connection_listener(recorder)
    publisher.connect()
    sent = [n.to_bytes(2, "big") for n in range(600)]
    mark = 0
    for index, body in enumerate(sent):
        publisher.publish(f"{prefix}/r", body)
        if index in (150, 400):  # links dropped mid-stream, with messages in flight and queued
            assert recorder.wait_for_state("connected", WAIT, after=mark)
            mark = recorder.mark()
            publisher.force_reconnect()
            assert recorder.wait_for_state("disconnected", WAIT, after=mark)
    assert got.wait_until(lambda items: {d.body for d in items} >= set(sent), WAIT)
    assert first_seen(got) == sent  # at least once, in order
    assert publisher.stats.reconnects == 2 and publisher.stats.direct_publishes > 0


def test_order_of_direct_and_queued_messages_across_a_broker_outage(
    broker_factory: Callable[..., Broker], open_mqtt: Callable[..., MqttTransport]  # noqa: F811 - fixture
) -> None:
    broker = broker_factory()
    prefix = f"outage/{uuid.uuid4().hex}"
    client = open_mqtt(url=broker.url, qos=1)
    events = EventRecorder()
    client.add_connection_listener(events)
    got = Collector()
    client.subscribe(f"{prefix}/m", got)  # its own messages: restored before its queue is sent
    before = [f"before-{n}".encode() for n in range(5)]
    for body in before:
        client.publish(f"{prefix}/m", body)
        assert got.wait_for_body(body, WAIT)
    assert client.stats.direct_publishes == len(before)

    mark = events.mark()
    broker.kill()
    assert events.wait_for_state("disconnected", WAIT, after=mark)
    during = [f"during-{n}".encode() for n in range(5)]
    for body in during:
        client.publish(f"{prefix}/m", body)
    assert client.stats.direct_publishes == len(before)  # disconnected: all of them queued

    broker.start()  # same port
    assert events.wait_for_state("connected", WAIT, after=mark)
    after = [f"after-{n}".encode() for n in range(20)]
    for body in after[:10]:  # may queue behind what is left of the backlog
        client.publish(f"{prefix}/m", body)
    assert got.wait_until(lambda items: {d.body for d in items} >= set(before + during + after[:10]), WAIT)
    with client._send_mutex:  # the sender is idle with nothing left: the next message goes direct
        assert not len(client._outbox)
    for body in after[10:]:
        client.publish(f"{prefix}/m", body)
    assert got.wait_until(lambda items: {d.body for d in items} >= set(before + during + after), WAIT)
    assert first_seen(got) == before + during + after
    assert client.stats.reconnects == 1 and client.stats.direct_publishes > len(before)
