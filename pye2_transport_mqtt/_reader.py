"""The receiving side of the connection: paho's packet reader replaced by a buffered one.

paho reads every packet with several small ``recv()`` calls (the type byte, each
remaining-length byte, then the rest), builds an ``MQTTMessage`` with fully parsed
MQTT 5 properties, logs it and goes back to ``select()``: usually one packet per
turn of its loop. At thousands of messages per second that is most of the network
thread's CPU. :class:`BufferedReadClient` is a paho client that keeps paho for
everything (connecting, TLS, keepalive, acknowledgements, writing, reconnecting)
except reading bytes off the socket:

* each turn of paho's loop reads once: one ``recv_into`` of up to ``chunk`` bytes
  into a reused buffer, then every complete packet in the buffer is handled, so
  ``select()`` only waits when no complete packet is left; the bytes of an incomplete
  packet wait for the next read (the buffer grows for a packet bigger than it and
  shrinks back afterwards). Writes and keepalive run between reads, as before;
* a QoS 0 PUBLISH goes straight to ``on_qos0_publish(topic, subscription_ids, payload)``:
  the topic decoded, the MQTT 5 Subscription Identifier(s) as a tuple (None when the
  packet carries none, and always under MQTT 3.1.1), the payload as bytes. The
  other PUBLISH properties are checked and skipped; no ``MQTTMessage`` and no
  per-message log line are made;
* every other packet (CONNACK, SUBACK, UNSUBACK, QoS 1/2 PUBLISH, PUBACK, PUBREC,
  PUBREL, PUBCOMP, PINGRESP, DISCONNECT) and a QoS 0 PUBLISH whose topic is not UTF-8
  go to paho's own handler, in stream order: acknowledgements, ``on_message`` and
  the rest behave as in paho. So does everything while ``on_qos0_publish`` is None.
  The acknowledgement paho queues for a QoS 1/2 message is written before the next
  packet is handled, as paho's own loop would.

A malformed packet (a remaining length over four bytes, a topic or property running
past the packet, an unknown PUBLISH property, an empty topic under MQTT 3.1.1, or
any error raised by paho's decoder) ends the read with ``MQTT_ERR_PROTOCOL``: paho
closes the socket, reports the loss through ``on_disconnect`` and reconnects as for
any other loss; so does an unexpected error of the reader itself (logged with its
traceback), instead of ending paho's thread. An exception from ``on_qos0_publish``
is logged and the read goes on.

This relies on paho 2.x internals (``_packet_read``, ``_packet_handle``,
``_in_packet``, ``_last_bytes_received``); on a paho without them
``fast_reading`` is False and paho reads as it always did.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from pye2.domain.logtext import clip

from ._client import MQTTErrorCode, mqtt

__all__ = ["DEFAULT_CHUNK", "BufferedReadClient", "MalformedPacketError", "Qos0Handler", "publish_properties"]

log = logging.getLogger(__name__)

#: Bytes asked for by one read (about a hundred 2 KB messages).
DEFAULT_CHUNK = 256 * 1024

#: ``on_qos0_publish(topic, subscription_ids, payload)``
Qos0Handler = Callable[[str, tuple[int, ...] | None, bytes], None]

_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
_AGAIN = MQTTErrorCode.MQTT_ERR_AGAIN
_PROTOCOL = MQTTErrorCode.MQTT_ERR_PROTOCOL
_CONN_LOST = MQTTErrorCode.MQTT_ERR_CONN_LOST

# MQTT 5 PUBLISH properties (section 3.3.2.3) by how their value is encoded.
_SUBSCRIPTION_ID = 0x0B
_FIXED_SIZE = {0x01: 1, 0x02: 4, 0x23: 2}  # payload format, message expiry, topic alias
_ONE_STRING = frozenset((0x03, 0x08, 0x09))  # content type, response topic, correlation data
_STRING_PAIR = 0x26  # user property

_ACKNOWLEDGED = frozenset((0x30, 0x60))  # PUBLISH (QoS 1/2 here) and PUBREL: paho answers them

_PAHO_INTERNALS = ("_packet_handle", "_in_packet", "_last_bytes_received", "_msgtime_mutex", "_sock",
                   "_call_socket_register_write", "_protocol")


class MalformedPacketError(ValueError):
    """A packet from the broker that does not follow MQTT (the connection is dropped)."""


def _blank_in_packet() -> Any:
    """paho's "no packet being read" state of ``Client._in_packet``."""
    return {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1, "remaining_length": 0,
            "packet": bytearray(), "to_process": 0, "pos": 0}


def _varint(buf: bytearray, pos: int, end: int) -> tuple[int, int]:
    """Decode an MQTT variable byte integer at ``pos``; return (value, next position).

    Raises:
        MalformedPacketError: longer than four bytes or running past ``end``.
    """
    value = shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift == 28:
            raise MalformedPacketError("variable byte integer longer than four bytes")
    raise MalformedPacketError("variable byte integer runs past the end of the packet")


def publish_properties(buf: bytearray, pos: int, end: int) -> tuple[tuple[int, ...] | None, int]:
    """Read the MQTT 5 properties of a PUBLISH at ``pos``; return (subscription ids, payload start).

    Raises:
        MalformedPacketError: a length past ``end`` or a property a PUBLISH cannot carry.
    """
    length, pos = _varint(buf, pos, end)
    stop = pos + length
    if stop > end:
        raise MalformedPacketError("PUBLISH properties run past the end of the packet")
    ids: tuple[int, ...] | None = None
    while pos < stop:
        ident = buf[pos]
        pos += 1
        if ident == _SUBSCRIPTION_ID:
            value, pos = _varint(buf, pos, stop)
            ids = (value,) if ids is None else (*ids, value)
        elif ident in _FIXED_SIZE:
            pos += _FIXED_SIZE[ident]
        elif ident in _ONE_STRING or ident == _STRING_PAIR:
            for _ in range(2 if ident == _STRING_PAIR else 1):
                if pos + 2 > stop:
                    raise MalformedPacketError("PUBLISH property runs past the properties")
                pos += 2 + (buf[pos] << 8 | buf[pos + 1])
        else:
            raise MalformedPacketError(f"property 0x{ident:02x} is not allowed in PUBLISH")
    if pos != stop:
        raise MalformedPacketError("PUBLISH property runs past the properties")
    return ids, stop


class BufferedReadClient(mqtt.Client):
    """A paho ``Client`` with a buffered packet reader and a QoS 0 fast path (see the module doc).

    ``on_qos0_publish`` is set by the owner; the reader calls it on paho's network thread.
    """

    def __init__(self, *args: Any, chunk: int = DEFAULT_CHUNK, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_qos0_publish: Qos0Handler | None = None
        self.fast_reading = all(hasattr(self, name) for name in _PAHO_INTERNALS)
        self._rx_chunk = max(int(chunk), 16)
        self._rx_buf = bytearray(self._rx_chunk)
        self._rx_view = memoryview(self._rx_buf)
        self._rx_len = 0  # bytes of the buffer holding data not handled yet
        self._rx_need = 0  # size of the incomplete packet at the head of the buffer, 0 if not known yet
        self._rx_sock: socket.socket | None = None  # the socket the buffered bytes came from
        self._rx_v5 = getattr(self, "_protocol", None) == mqtt.MQTTv5

    # -- reading ---------------------------------------------------------------------------

    def _packet_read(self) -> MQTTErrorCode:
        """Read once from the socket and handle every complete packet (replaces paho's).

        Returns ``MQTT_ERR_AGAIN`` after a good read too, so that paho's ``loop_read`` goes back
        to its loop; an error code when the link is to be dropped (paho then closes it).
        """
        if not self.fast_reading:
            return super()._packet_read()
        sock = self._sock
        if not isinstance(sock, socket.socket):  # None, or a wrapper this reader does not know
            return super()._packet_read()
        if sock is not self._rx_sock:  # a new connection: nothing of the old one is valid
            self._rx_sock = sock
            self._rx_reset()
        if self._rx_need > len(self._rx_buf) or self._rx_len == len(self._rx_buf):
            self._rx_resize(max(self._rx_need, 2 * len(self._rx_buf)))  # a packet bigger than the buffer
        try:
            count = sock.recv_into(self._rx_view[self._rx_len:])
        except (BlockingIOError, ssl.SSLWantReadError):
            return _AGAIN
        except ssl.SSLWantWriteError:
            self._call_socket_register_write()
            return _AGAIN
        except OSError as err:  # includes TimeoutError and the other ssl errors
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return _CONN_LOST
        if not count:
            return _CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        self._rx_len += count
        try:
            rc = self._rx_handle(sock)
            # One read per turn of paho's loop (which otherwise calls again for every message
            # it has in flight): writes and keepalive run between reads of a busy stream.
            return _AGAIN if rc == _SUCCESS and self._sock is sock else rc
        except MalformedPacketError as exc:
            log.warning("malformed packet from the MQTT broker (%s); dropping the connection", clip(exc))
        except Exception:  # our bug must not end paho's thread: treat it as a broken link
            log.exception("internal error reading from the MQTT socket; dropping the connection")
        self._rx_reset()
        return _PROTOCOL

    def _rx_handle(self, sock: socket.socket) -> MQTTErrorCode:
        """Handle the complete packets at the head of the buffer; keep the incomplete rest.

        Raises:
            MalformedPacketError: see the module doc (the buffer is then dropped by the caller).
        """
        buf, view, end = self._rx_buf, self._rx_view, self._rx_len
        deliver, v5 = self.on_qos0_publish, self._rx_v5
        pos = 0
        self._rx_need = 0
        ids: tuple[int, ...] | None
        while end - pos >= 2:
            header = buf[pos]
            # remaining length (1..4 bytes), then the packet's variable part at [start, stop)
            start, length, shift, known = pos + 1, 0, 0, False
            while start < end:
                byte = buf[start]
                start += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    known = True
                    break
                shift += 7
                if shift == 28:
                    raise MalformedPacketError("remaining length longer than four bytes")
            if not known:
                break  # the remaining length itself is still incomplete
            stop = start + length
            if stop > end:
                self._rx_need = stop - pos
                break
            if header & 0xF6 == 0x30 and deliver is not None:  # PUBLISH, QoS 0 (any DUP/RETAIN)
                if length < 2:
                    raise MalformedPacketError("PUBLISH shorter than its topic length")
                topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
                if topic_end > stop:
                    raise MalformedPacketError("PUBLISH topic runs past the end of the packet")
                if v5:
                    if (topic_end + 3 <= stop and buf[topic_end] == 2 and buf[topic_end + 1] == _SUBSCRIPTION_ID
                            and buf[topic_end + 2] < 0x80):
                        ids, body = (buf[topic_end + 2],), topic_end + 3  # the usual: one small id
                    else:
                        ids, body = publish_properties(buf, topic_end, stop)
                elif topic_end == start + 2:
                    raise MalformedPacketError("empty PUBLISH topic (MQTT 3.1.1)")
                else:
                    ids, body = None, topic_end
                try:
                    topic = buf[start + 2:topic_end].decode()
                except UnicodeDecodeError:
                    pass  # paho's handler delivers it with a topic that raises on access
                else:
                    try:
                        deliver(topic, ids, view[body:stop].tobytes())
                    except Exception:
                        log.exception("internal error delivering an MQTT message on %s", clip(topic))
                    pos = stop
                    continue
            rc = self._rx_paho(header, length, bytearray(view[start:stop]))
            pos = stop
            if rc != _SUCCESS or self._sock is not sock:  # an error, or paho closed this socket
                self._rx_reset()
                return rc
            if header & 0xF0 in _ACKNOWLEDGED and self.want_write():
                # Write paho's PUBACK/PUBREC/PUBCOMP now, as its loop would have before the next
                # packet: the broker's in-flight window must not fill up during a long batch.
                # A failed write is handled by paho itself (link closed, on_disconnect called).
                self.loop_write()
                if self._sock is not sock:
                    self._rx_reset()
                    return _SUCCESS
        left = end - pos
        if left and pos:
            buf[:left] = buf[pos:end]  # same size: allowed while the view exists
        self._rx_len = left
        if not left and len(buf) > self._rx_chunk:
            self._rx_resize(self._rx_chunk)  # a big packet is done: give the memory back
        return _SUCCESS

    def _rx_paho(self, header: int, length: int, packet: bytearray) -> MQTTErrorCode:
        """Hand one complete packet to paho's own handler, as its reader would have."""
        self._in_packet = {"command": header, "have_remaining": 1, "remaining_count": [], "remaining_mult": 1,
                           "remaining_length": length, "packet": packet, "to_process": 0, "pos": 0}
        try:
            return self._packet_handle()
        except Exception as exc:  # paho's MalformedPacket, or a struct/index error of its decoder
            raise MalformedPacketError(f"paho could not decode packet type {header >> 4}: {exc!r}") from exc
        finally:
            self._in_packet = _blank_in_packet()

    # -- buffer ------------------------------------------------------------------------------

    def _rx_reset(self) -> None:
        self._rx_len = 0
        self._rx_need = 0
        if len(self._rx_buf) != self._rx_chunk:
            self._rx_resize(self._rx_chunk)

    def _rx_resize(self, size: int) -> None:
        """A buffer of ``size`` bytes (at least the default) keeping the unhandled bytes."""
        size = max(size, self._rx_chunk)
        fresh = bytearray(size)
        fresh[:self._rx_len] = self._rx_buf[:self._rx_len]
        self._rx_view.release()
        self._rx_buf = fresh
        self._rx_view = memoryview(fresh)
