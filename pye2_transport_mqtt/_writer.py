"""The sending side of the connection: packets written by the thread that publishes them.

With ``loop_start()``, paho only queues an outgoing packet and wakes its network
thread (one byte on an internal socket pair); that thread leaves ``select()``,
takes the GIL and writes the packet. On a busy machine those two hand-offs cost
more than the publish itself. :class:`DirectWriteClient` (a
:class:`~pye2_transport_mqtt._reader.BufferedReadClient`) adds a second way,
used by the transport for a message it hands to paho from the caller's thread:

* :meth:`DirectWriteClient.publish_quietly` is ``publish()`` without the wake-up:
  the packet joins paho's outgoing FIFO (``_out_packet``) and nothing else happens;
* :meth:`DirectWriteClient.write_now` then writes that FIFO from the calling
  thread: everything queued, oldest first, so the order on the wire is the
  order of the FIFO whoever writes it. It hands over to the network thread (the
  wake-up paho would have sent) whenever it cannot finish: the socket would block
  or failed (the network thread then sees the error and reconnects as usual), the
  socket is TLS (an ``SSLSocket`` is not written while another thread reads it),
  or another thread is writing at that moment.

Every write of the FIFO, paho's own included, holds one lock (``_tx_lock``), so
two threads never interleave the bytes of packets. :meth:`write_now` only ever
tries that lock: it cannot wait behind a writer whose callbacks wait for the
caller. QoS 0 completion (``on_publish``) runs on the writing thread, as paho
does when it writes outside its loop. The client also skips paho's log call for
each packet sent or received when neither ``on_log`` nor its logger (at that
level) would take it.

This relies on paho 2.x internals (``_out_packet``, ``_packet_queue``,
``_packet_write``, ``_sockpairW``, ``_sock``); on a paho without them
``direct_writing`` is False and :meth:`publish_quietly` is plain ``publish()``.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from pye2.domain.logtext import clip

from ._client import MQTTErrorCode, mqtt
from ._reader import BufferedReadClient

__all__ = ["DirectWriteClient"]

log = logging.getLogger(__name__)

_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
_WAKE_BYTE = b"0"  # what paho writes to its socket pair (any byte does)

_PAHO_INTERNALS = ("_out_packet", "_packet_queue", "_packet_write", "_sockpairW", "_sock",
                   "_call_socket_register_write")
_LOG_LEVELS: dict[Any, int] = getattr(mqtt, "LOGGING_LEVEL", {})  # paho level -> logging level


class DirectWriteClient(BufferedReadClient):
    """A :class:`BufferedReadClient` whose publisher can write its own packets (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct_writing = all(hasattr(self, name) for name in _PAHO_INTERNALS)
        self._tx_lock = threading.Lock()  # held by whoever writes ``_out_packet`` to the socket
        self._tx_quiet: int | None = None  # thread whose queued packets do not wake the network thread

    def publish_quietly(self, topic: str, payload: bytes, qos: int) -> mqtt.MQTTMessageInfo:
        """``publish()``, leaving the packet in paho's FIFO for :meth:`write_now` to write.

        Only one thread at a time may call this (the transport's send mutex). Raises what
        ``publish()`` raises.
        """
        if not self.direct_writing:
            return self.publish(topic, payload, qos=qos)
        self._tx_quiet = threading.get_ident()
        try:
            return self.publish(topic, payload, qos=qos)
        finally:
            self._tx_quiet = None

    def write_now(self) -> bool:
        """Write paho's queued packets from this thread; wake the network thread for what is left.

        Returns True when everything was written here. Never raises: a failed write
        is left to the network thread, which handles the lost connection.
        """
        if not self.direct_writing:
            return False
        written = False
        sock = self._sock
        if type(sock) is socket.socket and self._tx_lock.acquire(blocking=False):
            try:
                written = super()._packet_write() == _SUCCESS and not self._out_packet
            except Exception:  # our bug or paho's: the network thread takes over
                log.exception("internal error writing to the MQTT socket; the network thread retries")
            finally:
                self._tx_lock.release()
        if not written:
            self._wake_network_thread()
        return written

    # -- paho overrides --------------------------------------------------------------------

    def _easy_log(self, level: Any, fmt: str, *args: Any) -> None:
        # paho logs every packet sent and received; skip the logging calls when nobody listens.
        if self.on_log is None:
            logger = self._logger
            if logger is None or not logger.isEnabledFor(_LOG_LEVELS.get(level, logging.DEBUG)):
                return
        # paho's lines quote topics and payload details straight from the wire: one safe token each
        super()._easy_log(level, fmt, *(clip(a) if isinstance(a, (str, bytes, bytearray)) else a for a in args))

    def _packet_queue(self, command: int, packet: bytes | bytearray, mid: int, qos: int,
                      info: mqtt.MQTTMessageInfo | None = None) -> MQTTErrorCode:
        if self._tx_quiet is None or self._tx_quiet != threading.get_ident():
            return super()._packet_queue(command, packet, mid, qos, info)
        # paho's own entry, without waking the network thread: write_now() follows.
        self._out_packet.append({"command": command, "mid": mid, "qos": qos, "pos": 0, "to_process": len(packet),
                                 "packet": packet, "info": info})
        return _SUCCESS

    def _packet_write(self) -> MQTTErrorCode:
        with self._tx_lock:
            return super()._packet_write()

    # -- helpers ---------------------------------------------------------------------------

    def _wake_network_thread(self) -> None:
        """What paho does after queueing a packet in threaded mode: leave ``select()`` and write."""
        pair = self._sockpairW
        if pair is not None:
            try:
                pair.send(_WAKE_BYTE)
            except OSError:  # full (the thread is already due to wake) or closed by loop_stop()
                pass
        self._call_socket_register_write()
