"""Just enough MQTT 3.1.1 (QoS 0) on a raw socket for the load generator and probes.

The generator and the raw subscribers must cost far less CPU than the SDK
under test on a 2-core machine, so they skip every client library: packets
are built once with :func:`publish_packet` and written in batches; incoming
packets are split with :class:`PacketReader`. Standard library only.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

__all__ = [
    "DISCONNECT",
    "PUBLISH",
    "PacketReader",
    "connect",
    "publish_packet",
    "publish_topic_and_body",
    "subscribe",
    "subscribe_packet",
]

DISCONNECT = b"\xe0\x00"
#: packet type nibble of PUBLISH
PUBLISH = 3
_CONNACK = 0x20
_SUBACK = 0x90


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8_field(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def publish_packet(topic: str, body: bytes | str) -> bytes:
    """A complete QoS 0 PUBLISH packet."""
    raw = body.encode() if isinstance(body, str) else body
    variable = _utf8_field(topic) + raw
    return b"\x30" + _remaining_length(len(variable)) + variable


def subscribe_packet(topic_filter: str, packet_id: int = 1) -> bytes:
    """A SUBSCRIBE packet for one filter at QoS 0."""
    variable = struct.pack("!H", packet_id) + _utf8_field(topic_filter) + b"\x00"
    return b"\x82" + _remaining_length(len(variable)) + variable


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def connect(host: str, port: int, client_id: str, *, keepalive: int = 600,
            sndbuf: int | None = None, rcvbuf: int | None = None) -> socket.socket:
    """A connected socket after a successful CONNECT/CONNACK (clean session)."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    variable = _utf8_field("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _utf8_field(client_id)
    sock.sendall(b"\x10" + _remaining_length(len(variable)) + variable)
    ack = _read_exact(sock, 4)
    if ack[0] != _CONNACK or ack[3] != 0:
        sock.close()
        raise ConnectionError(f"CONNACK refused: {ack!r}")
    sock.settimeout(None)
    return sock


def subscribe(sock: socket.socket, topic_filter: str) -> None:
    """Subscribe and wait for the SUBACK (nothing else can arrive before it)."""
    sock.sendall(subscribe_packet(topic_filter))
    ack = _read_exact(sock, 5)
    if ack[0] != _SUBACK or ack[4] == 0x80:
        raise ConnectionError(f"SUBACK refused: {ack!r}")


class PacketReader:
    """Splits a byte stream into MQTT packets: ``feed(chunk)`` yields ``(type, body)``."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        """Append ``chunk`` and yield every complete packet in it (type nibble, variable part)."""
        buf = self._buf
        buf += chunk
        pos, size = 0, len(buf)
        while pos + 2 <= size:
            length, shift, i = 0, 0, pos + 1
            while i < size:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
            else:
                break  # remaining-length field itself is incomplete
            if i + length > size:
                break
            yield buf[pos] >> 4, bytes(buf[i:i + length])
            pos = i + length
        del buf[:pos]


def publish_topic_and_body(packet_body: bytes) -> tuple[str, bytes]:
    """Topic and payload of a QoS 0 PUBLISH's variable part."""
    (n,) = struct.unpack_from("!H", packet_body)
    return packet_body[2:2 + n].decode(), packet_body[2 + n:]
