"""The MQTT transport's buffered reader (``pye2_transport_mqtt._reader``).

Pure tests drive a ``BufferedReadClient`` over a socket pair through paho's public
``loop_read()``: packets split at every byte, many packets in one read, a message
far bigger than the read buffer, MQTT 5 properties, QoS 1 among QoS 0 (order and
PUBACK), malformed packets (the read fails with a protocol error and closes the
socket, nothing raises). A scripted fake broker then checks the transport end to end:
a malformed packet makes it drop the link and reconnect, and bytes of a packet cut
by a lost connection never leak into the next one. The real-broker tests check the
fast path against Mosquitto (QoS 1 among QoS 0 on MQTT 5 and 3.1.1).
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

from pye2.testing import Collector, EventRecorder
from pye2_transport_mqtt import MqttTransport
from pye2_transport_mqtt._reader import BufferedReadClient, MalformedPacketError, publish_properties

FAST = {"connect_timeout": 5, "reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.3}
WAIT = 10.0


# -- packet building -------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def packet(header: int, variable: bytes) -> bytes:
    return bytes([header]) + varint(len(variable)) + variable


def sub_id_props(*ids: int) -> bytes:
    return b"".join(b"\x0b" + varint(i) for i in ids)


def publish(topic: str | bytes, body: bytes, *, qos: int = 0, mid: int = 1, props: bytes | None = b"",
            flags: int = 0) -> bytes:
    """A PUBLISH; ``props=None`` is MQTT 3.1.1 (no properties field)."""
    variable = utf8(topic) + (struct.pack("!H", mid) if qos else b"")
    if props is not None:
        variable += varint(len(props)) + props
    return packet(0x30 | qos << 1 | flags, variable + body)


# -- a reader on a socket pair -------------------------------------------------------------------


class Rig:
    """A BufferedReadClient reading one end of a socket pair; the test writes the other end."""

    def __init__(self, v5: bool = True, chunk: int = 4096) -> None:
        self.client = BufferedReadClient(CallbackAPIVersion.VERSION2, client_id=f"rig-{uuid.uuid4().hex[:8]}",
                                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, chunk=chunk)
        self.client.suppress_exceptions = True
        self.ours, self.peer = socket.socketpair()
        self.ours.setblocking(False)
        self.client._sock = self.ours  # what paho's connect() would have set
        self.events: list[tuple[Any, ...]] = []
        self.disconnects: list[Any] = []
        self.client.on_qos0_publish = lambda topic, ids, body: self.events.append(("qos0", topic, ids, body))
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *args: self.disconnects.append(args[3])

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        ids = getattr(message.properties, "SubscriptionIdentifier", None) if message.properties else None
        self.events.append(("paho", message.topic, message.qos, bytes(message.payload), ids))

    def feed(self, data: bytes) -> None:
        """Write ``data`` and let the client read until nothing is left to read."""
        self.peer.sendall(data)
        self.drain()

    def drain(self) -> None:
        while self.client.socket() is not None and select.select([self.ours], [], [], 0)[0]:
            self.client.loop_read()

    def close(self) -> None:
        self.peer.close()
        self.ours.close()


@pytest.fixture
def rig() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(v5: bool = True, chunk: int = 4096) -> Rig:
        made.append(Rig(v5, chunk))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_the_installed_paho_gets_the_fast_reader(rig: Callable[..., Rig]) -> None:
    # If this fails after a paho upgrade, paho reads as before: correct, but slow again.
    assert rig().client.fast_reading


def test_several_packets_in_one_read_arrive_in_order(rig: Callable[..., Rig]) -> None:
    r = rig()
    data = b"".join(publish("a/b", bytes([n]) * n, props=sub_id_props(7)) for n in range(40))
    r.feed(data)
    assert r.events == [("qos0", "a/b", (7,), bytes([n]) * n) for n in range(40)]
    assert all(type(e[3]) is bytes for e in r.events)


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_packet_split_at_every_byte(rig: Callable[..., Rig], v5: bool) -> None:
    r = rig(v5=v5)
    body = bytes(range(256)) * 2  # a two-byte remaining length: the split also falls inside it
    one = publish("split/t", body, props=sub_id_props(300) if v5 else None)
    for cut in range(1, len(one)):
        r.events.clear()
        r.feed(one[:cut])
        assert r.events == []
        r.feed(one[cut:])
        assert r.events == [("qos0", "split/t", (300,) if v5 else None, body)]


def test_packets_trickling_in_one_byte_at_a_time(rig: Callable[..., Rig]) -> None:
    r = rig()
    data = b"".join(publish(f"t/{n}", b"x" * n, props=sub_id_props(n + 1)) for n in range(5))
    for i in range(len(data)):
        r.feed(data[i:i + 1])
    assert [(e[1], e[2], e[3]) for e in r.events] == [(f"t/{n}", (n + 1,), b"x" * n) for n in range(5)]


def test_a_message_bigger_than_the_buffer_spans_many_reads(rig: Callable[..., Rig]) -> None:
    r = rig(chunk=4096)
    big = bytes((i * 7 + 3) % 256 for i in range(3 * 1024 * 1024))
    data = publish("big", big, props=sub_id_props(1)) + publish("small", b"after", props=sub_id_props(1))
    writer = threading.Thread(target=r.peer.sendall, args=(data,))  # more than the socket buffer holds
    writer.start()
    while len(r.events) < 2:
        assert select.select([r.ours], [], [], WAIT)[0], "the writer stalled"
        r.client.loop_read()
    writer.join()
    assert [e[1] for e in r.events] == ["big", "small"]
    assert r.events[0][3] == big and r.events[1][3] == b"after"
    r.feed(publish("again", b"!", props=sub_id_props(1)))  # the buffer shrank back and still works
    assert r.events[-1] == ("qos0", "again", (1,), b"!")


def test_mqtt5_properties_are_skipped_and_ids_kept(rig: Callable[..., Rig]) -> None:
    r = rig()
    props = (b"\x01\x01" + b"\x02\x00\x00\x00\x3c" + b"\x23\x00\x05" + b"\x03" + utf8("application/json")
             + b"\x08" + utf8("reply/here") + b"\x09" + utf8(b"\x00\x01corr") + b"\x26" + utf8("k") + utf8("v")
             + sub_id_props(3, 268_435_455))
    r.feed(publish("p/q", b"body", props=props) + publish("p/q", b"none", props=b""))
    assert r.events == [("qos0", "p/q", (3, 268_435_455), b"body"), ("qos0", "p/q", None, b"none")]


def test_retain_and_dup_flags_do_not_change_the_fast_path(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.feed(publish("f/r", b"kept", props=b"", flags=0x01) + publish("f/d", b"dup", props=b"", flags=0x08))
    assert [e[:2] for e in r.events] == [("qos0", "f/r"), ("qos0", "f/d")]


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_qos1_between_qos0_keeps_the_order_and_is_acknowledged(rig: Callable[..., Rig], v5: bool) -> None:
    r = rig(v5=v5)
    props = sub_id_props(2) if v5 else None
    r.feed(publish("o/t", b"1", props=props) + publish("o/t", b"2", qos=1, mid=0x1234, props=props)
           + publish("o/t", b"3", props=props))
    ids = (2,) if v5 else None
    assert r.events == [("qos0", "o/t", ids, b"1"), ("paho", "o/t", 1, b"2", [2] if v5 else None),
                        ("qos0", "o/t", ids, b"3")]
    ack = r.peer.recv(64)
    assert ack[0] == 0x40 and ack[2:4] == b"\x12\x34"  # paho's PUBACK for mid 0x1234


def test_the_acknowledgement_is_written_before_the_next_packet(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.client.on_socket_register_write = lambda *_: None  # paho leaves every write to its loop now
    acked_first: list[bool] = []
    r.client.on_qos0_publish = lambda *_: acked_first.append(bool(select.select([r.peer], [], [], 0)[0]))
    r.feed(publish("k/t", b"q1", qos=1, mid=9, props=b"") + publish("k/t", b"q0", props=b""))
    assert acked_first == [True]
    assert r.peer.recv(64)[:4] == b"\x40\x02\x00\x09"


def test_control_packets_go_to_paho(rig: Callable[..., Rig]) -> None:
    r = rig()
    acks: list[tuple[int, list[int]]] = []
    r.client.on_subscribe = lambda _c, _u, mid, codes, _p: acks.append((mid, [c.value for c in codes]))
    suback = packet(0x90, b"\x00\x05" + b"\x00" + b"\x01")  # mid 5, no properties, granted QoS 1
    r.feed(publish("c/t", b"x", props=b"") + suback + b"\xd0\x00" + publish("c/t", b"y", props=b""))
    assert acks == [(5, [1])]
    assert [e[3] for e in r.events] == [b"x", b"y"]
    assert r.client.socket() is not None


def test_without_a_fast_handler_paho_delivers_everything(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.client.on_qos0_publish = None
    r.feed(publish("s/t", b"slow", props=sub_id_props(9)))
    assert r.events == [("paho", "s/t", 0, b"slow", [9])]


def test_a_topic_that_is_not_utf8_goes_to_paho(rig: Callable[..., Rig]) -> None:
    r = rig()
    seen: list[bytes] = []

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with pytest.raises(UnicodeDecodeError):
            _ = message.topic
        seen.append(bytes(message.payload))

    r.client.on_message = on_message
    r.feed(publish(b"bad\xff", b"payload", props=b"") + publish("good", b"ok", props=b""))
    assert seen == [b"payload"]
    assert r.events == [("qos0", "good", None, b"ok")]


def test_a_failing_fast_handler_is_logged_and_reading_goes_on(rig: Callable[..., Rig],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    bodies: list[bytes] = []

    def handler(_topic: str, _ids: tuple[int, ...] | None, body: bytes) -> None:
        bodies.append(body)
        if body == b"1":
            raise RuntimeError("handler bug")

    r.client.on_qos0_publish = handler
    with caplog.at_level(logging.ERROR, logger="pye2_transport_mqtt"):
        r.feed(publish("h", b"1", props=b"") + publish("h", b"2", props=b""))
    assert bodies == [b"1", b"2"]
    assert any(rec.exc_info and "handler bug" in str(rec.exc_info[1]) for rec in caplog.records)
    assert r.client.socket() is not None


MALFORMED = {
    "remaining-length-5-bytes": b"\x30\xff\xff\xff\xff\x01",
    "publish-too-short": packet(0x30, b"\x00"),
    "topic-past-the-end": packet(0x30, b"\x00\x09abc"),
    "property-not-for-publish": publish("t", b"x", props=b"\x11\x00\x00\x00\x01"),
    "property-past-the-end": publish("t", b"x", props=b"\x08\x00\x20ab"),
    "properties-length-past-the-end": packet(0x30, utf8("t") + b"\x7f\x0b"),
    "sub-id-varint-too-long": publish("t", b"x", props=b"\x0b\xff\xff\xff\xff\x01"),
    "truncated-suback": b"\x90\x01\x00",  # paho's own decoder fails on it
    "reserved-packet-type": b"\x00\x00",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_packet_closes_the_link_without_raising(rig: Callable[..., Rig], data: bytes) -> None:
    r = rig()
    r.peer.sendall(publish("m", b"before", props=b"") + data + publish("m", b"never", props=b""))
    rc = r.client.loop_read()
    assert rc == mqtt.MQTT_ERR_PROTOCOL
    assert r.client.socket() is None  # paho closed it; its loop would reconnect now
    assert len(r.disconnects) == 1
    assert [e[3] for e in r.events] == [b"before"]


def test_empty_topic_is_malformed_under_mqtt311_only(rig: Callable[..., Rig]) -> None:
    v5 = rig()
    v5.feed(publish("", b"aliased", props=b""))  # MQTT 5 allows it (topic alias): routed nowhere later
    assert v5.events == [("qos0", "", None, b"aliased")]
    v311 = rig(v5=False)
    v311.peer.sendall(publish("", b"x", props=None))
    assert v311.client.loop_read() == mqtt.MQTT_ERR_PROTOCOL


def test_the_peer_closing_is_a_lost_connection(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.peer.sendall(publish("z", b"last", props=b""))
    r.peer.shutdown(socket.SHUT_WR)
    r.drain()
    assert r.events == [("qos0", "z", None, b"last")]
    assert r.client.socket() is None and len(r.disconnects) == 1


def test_publish_properties_parser() -> None:
    data = bytearray(varint(7) + sub_id_props(1) + b"\x01\x00" + sub_id_props(200) + b"rest")
    assert publish_properties(data, 0, len(data)) == ((1, 200), 8)
    with pytest.raises(MalformedPacketError):
        publish_properties(bytearray(b"\x05\x0b"), 0, 2)


# -- the transport against a scripted broker ----------------------------------------------------


class FakeBroker:
    """Just enough of an MQTT server (3.1.1 and 5) for a script: acks, and raw bytes on demand.

    Every accepted connection gets a thread that answers CONNECT, SUBSCRIBE,
    UNSUBSCRIBE and PINGREQ; the test writes whatever else it wants with ``send``.
    """

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._cond = threading.Condition()
        self._conns: list[socket.socket] = []
        self._locks: list[threading.Lock] = []
        self._sub_ids: list[dict[str, int | None]] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._cond:
                self._conns.append(conn)
                self._locks.append(threading.Lock())
                self._sub_ids.append({})
                index = len(self._conns) - 1
            threading.Thread(target=self._serve, args=(index,), daemon=True).start()

    def _read_exact(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _read_packet(self, conn: socket.socket) -> tuple[int, bytes]:
        header = self._read_exact(conn, 1)[0]
        length, shift = 0, 0
        while True:
            byte = self._read_exact(conn, 1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        return header, self._read_exact(conn, length)

    def _serve(self, index: int) -> None:
        conn = self._conns[index]
        v5 = False
        try:
            while True:
                header, body = self._read_packet(conn)
                kind = header >> 4
                if kind == 1:  # CONNECT: protocol name, then the level (5 or 4)
                    v5 = body[6] == 5
                    self.send(index, b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
                elif kind == 8:  # SUBSCRIBE
                    mid, pos, sub_id = body[:2], 2, None
                    if v5:
                        length, shift = 0, 0
                        while True:
                            byte = body[pos]
                            pos += 1
                            length |= (byte & 0x7F) << shift
                            shift += 7
                            if byte < 0x80:
                                break
                        props, pos = body[pos:pos + length], pos + length
                        if props[:1] == b"\x0b":
                            sub_id = props[1]  # ids stay below 128 here
                    size = struct.unpack("!H", body[pos:pos + 2])[0]
                    with self._cond:
                        self._sub_ids[index][body[pos + 2:pos + 2 + size].decode()] = sub_id
                        self._cond.notify_all()
                    self.send(index, packet(0x90, mid + (b"\x00\x00" if v5 else b"\x00")))
                elif kind == 10:  # UNSUBSCRIBE (the transport's barrier)
                    self.send(index, packet(0xB0, body[:2] + (b"\x00\x00" if v5 else b"")))
                elif kind == 12:  # PINGREQ
                    self.send(index, b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    break
        except (ConnectionError, OSError, IndexError):
            pass
        finally:
            conn.close()

    def send(self, index: int, data: bytes) -> None:
        """Write raw bytes on connection ``index`` (0 = the first accepted)."""
        with self._locks[index]:
            self._conns[index].sendall(data)

    def drop(self, index: int) -> None:
        """Cut connection ``index`` as a network failure would."""
        self._conns[index].shutdown(socket.SHUT_RDWR)

    def wait_subscribed(self, index: int, topic_filter: str) -> int | None:
        """The subscription identifier the client gave ``topic_filter`` on connection ``index``."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self._sub_ids) > index
                                       and topic_filter in self._sub_ids[index], WAIT)
            return self._sub_ids[index][topic_filter]

    def close(self) -> None:
        self._server.close()
        with self._cond:
            for conn in self._conns:
                conn.close()


@pytest.fixture
def fake_broker() -> Iterator[FakeBroker]:
    broker = FakeBroker()
    yield broker
    broker.close()


@pytest.fixture
def transports() -> Iterator[list[MqttTransport]]:
    made: list[MqttTransport] = []
    yield made
    for transport in made:
        transport.close()


def _connected(broker: FakeBroker, transports: list[MqttTransport], protocol: str,
               topic_filter: str) -> tuple[MqttTransport, Collector, EventRecorder]:
    transport = MqttTransport.from_url(f"mqtt://127.0.0.1:{broker.port}", protocol=protocol, **FAST)
    transports.append(transport)
    got, recorder = Collector(), EventRecorder()
    transport.add_connection_listener(recorder)
    transport.subscribe(topic_filter, got)
    transport.connect()  # returns after the barrier's UNSUBACK: the subscription is live
    return transport, got, recorder


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
@pytest.mark.parametrize("bad", [MALFORMED["remaining-length-5-bytes"], MALFORMED["truncated-suback"]],
                         ids=["remaining-length", "paho-decoder"])
def test_transport_reconnects_after_a_malformed_packet(fake_broker: FakeBroker, transports: list[MqttTransport],
                                                       protocol: str, bad: bytes) -> None:
    transport, got, recorder = _connected(fake_broker, transports, protocol, "r/+")
    props = (lambda sub: sub_id_props(sub) if sub else b"") if protocol == "5" else (lambda sub: None)
    first = fake_broker.wait_subscribed(0, "r/+")
    mark = recorder.mark()
    fake_broker.send(0, publish("r/a", b"one", props=props(first)) + bad
                     + publish("r/a", b"lost", props=props(first)))
    assert recorder.wait_for_state("connected", WAIT, after=mark)
    assert recorder.states[mark:] == ["disconnected", "reconnecting", "connected"]
    second = fake_broker.wait_subscribed(1, "r/+")  # restored on the new link
    fake_broker.send(1, publish("r/b", b"two", props=props(second)))
    assert got.wait_for_body(b"two", WAIT)
    assert got.bodies == [b"one", b"two"]
    assert transport.is_connected and transport.stats.reconnects == 1


def test_a_packet_cut_by_a_lost_link_does_not_leak_into_the_next(fake_broker: FakeBroker,
                                                                transports: list[MqttTransport]) -> None:
    transport, got, recorder = _connected(fake_broker, transports, "5", "cut/t")
    first = fake_broker.wait_subscribed(0, "cut/t")
    whole = publish("cut/t", b"A" * 5000, props=sub_id_props(first or 0))
    fake_broker.send(0, publish("cut/t", b"before", props=sub_id_props(first or 0)) + whole[:3000])
    assert got.wait_for_body(b"before", WAIT)
    mark = recorder.mark()
    fake_broker.drop(0)
    assert recorder.wait_for_state("connected", WAIT, after=mark)
    second = fake_broker.wait_subscribed(1, "cut/t")
    fake_broker.send(1, publish("cut/t", b"after", props=sub_id_props(second or 0)))
    assert got.wait_for_body(b"after", WAIT)
    assert got.bodies == [b"before", b"after"]
    assert transport.stats.unrouted == 0


def test_transport_drops_a_topic_that_is_not_utf8(fake_broker: FakeBroker, transports: list[MqttTransport]) -> None:
    transport, got, _ = _connected(fake_broker, transports, "5", "#")
    sub = fake_broker.wait_subscribed(0, "#")
    fake_broker.send(0, publish(b"u/\xfe", b"bad", props=sub_id_props(sub or 0))
                     + publish("u/ok", b"good", props=sub_id_props(sub or 0)))
    assert got.wait_for_body(b"good", WAIT)
    assert got.bodies == [b"good"]
    assert transport.stats.unrouted == 1 and transport.is_connected


# -- against Mosquitto ------------------------------------------------------------------------------


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_qos1_among_qos0_each_topic_keeps_its_order(mqtt_url: str, transports: list[MqttTransport],
                                                    protocol: str) -> None:
    # MQTT orders each topic's messages; across topics of different QoS the broker may
    # reorder (its QoS 1 window), so only the per-topic order is asserted.
    prefix = f"pye2test/{uuid.uuid4().hex}"
    subscriber = MqttTransport.from_url(mqtt_url, protocol=protocol, qos_overrides={f"{prefix}/#": 1}, **FAST)
    publisher = MqttTransport.from_url(mqtt_url, qos_overrides={f"{prefix}/q1": 1}, **FAST)
    transports.extend([subscriber, publisher])
    got = Collector()
    subscriber.subscribe(f"{prefix}/#", got)
    subscriber.connect()
    publisher.connect()
    sent = [(f"{prefix}/q1" if n % 7 == 3 else f"{prefix}/q0", n.to_bytes(2, "big")) for n in range(500)]
    for address, body in sent:
        publisher.publish(address, body)
    assert got.wait_for(len(sent), 20)
    received = [(d.address, d.body) for d in got.deliveries]
    for address in (f"{prefix}/q0", f"{prefix}/q1"):
        assert [m for m in received if m[0] == address] == [m for m in sent if m[0] == address]
    assert len(received) == len(sent)
    assert subscriber.stats.delivered == len(sent) and subscriber.stats.unrouted == 0
