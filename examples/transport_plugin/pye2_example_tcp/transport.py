"""``TcpBusTransport``: the client side of tcpbus, implementing pye2's Transport port.

What a transport author must do; each step is marked ``Step N`` below:

1. Build from a URL without touching the network (:meth:`TcpBusTransport.from_url`);
   a bad URL or option is a :class:`~pye2.errors.ConfigError`.
2. Declare :class:`~pye2.ports.transport.TransportCapabilities` truthfully: the
   conformance kit skips checks on them and pye2 relies on them.
3. ``connect()``: idempotent, bounded by a timeout, failure is a
   :class:`~pye2.errors.TransportConnectError`; subscriptions made before it are
   sent by it.
4. ``subscribe()``: validate the filter, remember the handler, and return only
   once the broker routes to it. ``cancel()`` stops the handler at once.
5. Deliver on a thread of your own; a handler that raises is logged and never
   stops later deliveries.
6. ``publish()``: ``ConfigError`` for a bad address or body, ``MessageTooLarge``
   above the maximum, ``TransportClosed`` after ``close()``. No driver exception
   (here: ``OSError``) ever escapes; translate it into a ``TransportError``.
7. ``close()``: idempotent, flushes, joins the thread, and is final.
8. Optional: ``add_connection_listener`` (connection events for ``Session``).

This transport does not reconnect by itself (``capabilities.reconnects=False``):
after a lost connection, ``is_connected`` turns False, a ``"disconnected"`` event
is emitted, ``publish()`` raises ``TransportError`` and calling ``connect()``
again opens a new connection and re-sends every subscription.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from pye2.errors import (
    ConfigError,
    DecodeError,
    MessageTooLarge,
    TransportClosed,
    TransportConnectError,
    TransportError,
)
from pye2.ports.transport import (
    BaseTransport,
    ConnectionEvent,
    ConnectionListener,
    Delivery,
    Handler,
    Subscription,
    TransportCapabilities,
)
from pye2_example_tcp.protocol import (
    ACK,
    ERR,
    HELLO,
    MSG,
    PROTOCOL,
    PUB,
    SUB,
    UNSUB,
    Frame,
    encode,
    read_frame,
    validate_address,
    validate_filter,
)

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "SCHEME", "TcpBusTransport"]

log = logging.getLogger(__name__)

SCHEME = "tcpbus"
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # the broker's default limit too
_MAX_INBOUND_FRAME = 64 << 20  # only guards our memory against a broken broker
_OPTIONS = frozenset({"connect_timeout", "ack_timeout", "max_message_bytes"})


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class _Subscription:
    """What ``subscribe()`` returns; satisfies :class:`pye2.ports.transport.Subscription`."""

    __slots__ = ("_transport", "address", "handler", "ident")
    address: str
    handler: Handler
    ident: int

    def __init__(self, transport: TcpBusTransport, ident: int, address: str, handler: Handler) -> None:
        self._transport = transport
        self.ident = ident
        self.address = address
        self.handler = handler

    def cancel(self) -> None:
        """Stop delivering to the handler (at once); idempotent, also after ``close()``."""
        self._transport._cancel(self)


class TcpBusTransport(BaseTransport):
    """A connection to a tcpbus broker (see :mod:`pye2_example_tcp.broker`).

    Args:
        host, port: where the broker listens.
        connect_timeout: seconds ``connect()`` may take, handshake included.
        ack_timeout: seconds ``subscribe()`` waits for the broker's acknowledgement.
        max_message_bytes: largest body ``publish()`` accepts (keep it at or
            below the broker's ``max_body_bytes``).
    """

    name = SCHEME

    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0, ack_timeout: float = 10.0,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigError(f"host must be a non-empty string, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"port must be 1..65535, got {port!r}")
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int) or max_message_bytes < 1:
            raise ConfigError(f"max_message_bytes must be a positive int, got {max_message_bytes!r}")
        self.host, self.port = host, port
        self._connect_timeout = _positive("connect_timeout", connect_timeout)
        self._ack_timeout = _positive("ack_timeout", ack_timeout)
        # Step 2: what we promise. The broker matches wildcards and keeps per-publisher order.
        self.capabilities = TransportCapabilities(
            wildcards=True, max_message_bytes=max_message_bytes, ordered_per_address=True, fanout=True,
            reconnects=False,
        )
        self._cond = threading.Condition()  # guards the fields below; wakes whoever waits for an answer
        self._subs: dict[int, _Subscription] = {}
        self._next_id = 1  # 0 is the hello's
        self._waiting: set[int] = set()
        self._answers: dict[int, str | None] = {}  # None: acknowledged; str: the broker's refusal
        self._online = False  # handshake done: subscribe() sends its own SUB from now on
        self._lost: TransportError | None = None
        self._closed = False
        self._reader: threading.Thread | None = None
        self._listeners: list[ConnectionListener] = []
        self._connect_lock = threading.Lock()  # one connect() or close() at a time
        self._send_lock = threading.Lock()  # guards _sock; whole frames never interleave
        self._sock: socket.socket | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> TcpBusTransport:
        """Step 1: ``tcpbus://host:port`` to an unconnected transport; no network activity here."""
        if not isinstance(url, str):
            raise ConfigError(f"URL must be a string, got {url!r}")
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigError(f"unknown tcpbus option(s): {', '.join(sorted(unknown))}")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:  # urllib's error for a port that is not a number in range
            raise ConfigError(f"bad port in {url!r}") from exc
        if parts.scheme != SCHEME or not parts.hostname or port is None or parts.path not in ("", "/") \
                or parts.query or parts.username:
            raise ConfigError(f"expected {SCHEME}://host:port, got {url!r}")
        return cls(parts.hostname, port, **options)

    @property
    def is_connected(self) -> bool:
        """True between a successful ``connect()`` and ``close()`` or a lost connection."""
        return self._online

    # -- Step 3: connect --------------------------------------------------------

    def connect(self) -> None:
        """Open the socket, say hello, (re)send subscriptions; idempotent, bounded by ``connect_timeout``."""
        with self._connect_lock:
            with self._cond:
                if self._closed:
                    raise TransportClosed("this tcpbus transport is closed")
                if self._online:
                    return
            self._drop_socket(graceful=False)  # what is left of a lost connection, if anything
            deadline = time.monotonic() + self._connect_timeout
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
            except OSError as exc:
                raise TransportConnectError(f"cannot connect to tcpbus broker {self._where}: {exc}") from exc
            sock.settimeout(None)  # the reader blocks in recv(); our waits are bounded by the Condition
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small frames leave at once
            reader = threading.Thread(target=self._read_loop, args=(sock,), daemon=True,
                                      name=f"tcpbus-reader-{self._where}")
            with self._send_lock:
                self._sock = sock
            with self._cond:
                self._lost = None
                self._reader = reader
            reader.start()
            try:
                self._request(Frame(HELLO, 0, PROTOCOL), deadline)
                with self._cond:
                    self._online = True  # atomically with the snapshot: each SUB is sent once
                    pending = list(self._subs.values())
                for sub in pending:
                    self._request(Frame(SUB, sub.ident, sub.address), deadline)
            except TransportError as exc:
                self._drop_socket(graceful=False)
                raise TransportConnectError(f"tcpbus broker {self._where}: handshake failed: {exc}") from exc
        log.info("tcpbus: connected to %s", self._where)
        self._emit(ConnectionEvent("connected"))

    # -- Step 4: subscribe / cancel ---------------------------------------------

    def subscribe(self, address: str, handler: Handler) -> Subscription:
        """Deliver every message matching ``address`` (``+``/``#`` allowed) to ``handler``.

        While connected it returns once the broker acknowledged the subscription;
        before ``connect()`` (or after a lost connection) the subscription is
        kept and sent by the next ``connect()``.
        """
        filter_ = validate_filter(address)
        if not callable(handler):
            raise ConfigError(f"handler must be callable, got {handler!r}")
        with self._cond:
            if self._closed:
                raise TransportClosed("this tcpbus transport is closed")
            sub = _Subscription(self, self._next_id, filter_, handler)
            self._next_id += 1
            self._subs[sub.ident] = sub
            online = self._online
        if online:
            try:
                self._request(Frame(SUB, sub.ident, filter_), time.monotonic() + self._ack_timeout)
            except TransportError:
                with self._cond:
                    self._subs.pop(sub.ident, None)
                raise
        return sub

    def _cancel(self, sub: _Subscription) -> None:
        with self._cond:
            if self._subs.pop(sub.ident, None) is None:
                return  # already cancelled
            online = self._online
        # The handler is already unreachable (the reader looks ids up); UNSUB only spares the broker.
        if online:
            with contextlib.suppress(TransportError):  # connection gone: the broker forgot it too
                self._send(Frame(UNSUB, sub.ident))

    # -- Step 6: publish --------------------------------------------------------

    def publish(self, address: str, body: bytes) -> None:
        """Send ``body`` to every subscription matching ``address``."""
        with self._cond:
            closed, online, lost = self._closed, self._online, self._lost
        if closed:
            raise TransportClosed("this tcpbus transport is closed")
        validate_address(address)
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ConfigError(f"message body must be bytes, got {type(body).__name__}")
        data = bytes(body)
        limit = self.capabilities.max_message_bytes
        if limit is not None and len(data) > limit:
            raise MessageTooLarge(f"message of {len(data)} bytes is above this transport's {limit}")
        if not online:
            raise TransportError(f"connection lost: {lost}" if lost else "not connected: call connect() first")
        self._send(Frame(PUB, 0, address, data))

    # -- Step 7: close ----------------------------------------------------------

    def close(self) -> None:
        """Flush what was published, disconnect, join the reader thread. Idempotent and final."""
        with self._connect_lock:
            with self._cond:
                if self._closed:
                    return
                self._closed = True
            self._drop_socket(graceful=True)
        self._emit(ConnectionEvent("closed"))

    # -- Step 8 (optional): connection events ---------------------------------

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(ConnectionEvent)`` on ``connected``, ``disconnected`` and ``closed``."""
        with self._cond:
            self._listeners.append(listener)

    def _emit(self, event: ConnectionEvent) -> None:
        with self._cond:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("tcpbus: connection listener %r raised", listener)

    # -- plumbing ---------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _send(self, frame: Frame) -> None:
        """Write one whole frame; ``OSError`` becomes ``TransportError`` (Step 6)."""
        data = encode(frame)
        with self._send_lock:
            if self._sock is None:
                raise TransportError("not connected")
            try:
                self._sock.sendall(data)
            except OSError as exc:
                raise TransportError(f"sending to {self._where} failed: {exc}") from exc

    def _request(self, frame: Frame, deadline: float) -> None:
        """Send ``frame`` and wait until the broker acknowledges ``frame.ident`` (or ``deadline``)."""
        if threading.current_thread() is self._reader:
            # Called from a handler: only this very thread could read the ACK, so waiting would deadlock.
            self._send(frame)
            return
        ident = frame.ident
        with self._cond:
            self._waiting.add(ident)
        try:
            self._send(frame)
            with self._cond:
                self._cond.wait_for(lambda: ident in self._answers or self._lost is not None or self._sock is None,
                                    max(deadline - time.monotonic(), 0.0))
                answered, refusal, lost = ident in self._answers, self._answers.get(ident), self._lost
        finally:
            with self._cond:
                self._waiting.discard(ident)
                self._answers.pop(ident, None)
        if answered and refusal is None:
            return
        if refusal is not None:
            raise TransportError(f"the broker refused: {refusal}")
        if lost is not None or self._sock is None:
            raise TransportError(f"connection lost while waiting for the broker: {lost or 'closed'}")
        raise TransportError(f"no acknowledgement from {self._where} in time")

    def _read_loop(self, sock: socket.socket) -> None:
        """Step 5: the reader thread. Reads frames until the connection ends."""
        try:
            while True:
                frame = read_frame(sock, _MAX_INBOUND_FRAME)
                if frame is None:
                    error = TransportError(f"{self._where} closed the connection")
                    break
                self._on_frame(frame)
        except (OSError, DecodeError) as exc:
            error = TransportError(f"connection to {self._where} failed: {exc}")
        with self._cond:
            # A socket we dropped ourselves (close, reconnect) ends quietly; any other end is a loss.
            unexpected = self._sock is sock and not self._closed
            if unexpected:
                self._online = False
                self._lost = error
            self._cond.notify_all()
        if unexpected:
            log.warning("tcpbus: %s", error)
            self._emit(ConnectionEvent("disconnected", error=error))

    def _on_frame(self, frame: Frame) -> None:
        if frame.kind == MSG:
            with self._cond:
                sub = None if self._closed else self._subs.get(frame.ident)
            if sub is None:
                return  # cancelled meanwhile: dropping it is what cancel() promises
            try:
                sub.handler(Delivery(frame.topic, frame.body))
            except Exception:
                log.exception("tcpbus: handler of %r raised; later deliveries go on", sub.address)
        elif frame.kind in (ACK, ERR):
            refusal = None if frame.kind == ACK else frame.body.decode(errors="replace")
            with self._cond:
                if frame.ident in self._waiting:
                    self._answers[frame.ident] = refusal
                    self._cond.notify_all()
            if refusal is not None:
                log.warning("tcpbus: broker refused request %d: %s", frame.ident, refusal)

    def _drop_socket(self, *, graceful: bool) -> None:
        """End the connection and join the reader.

        Graceful: half-close (our FIN follows every byte already sent), then wait
        for the broker to close its side, so nothing published is lost.
        """
        with self._send_lock:
            sock, self._sock = self._sock, None
            if sock is not None:
                with contextlib.suppress(OSError):  # the peer is already gone
                    sock.shutdown(socket.SHUT_WR if graceful else socket.SHUT_RDWR)
        with self._cond:
            reader, self._reader = self._reader, None
            self._online = False
            self._cond.notify_all()
        if reader is not None and reader is not threading.current_thread():
            reader.join(self._ack_timeout)
            if reader.is_alive() and sock is not None:
                with contextlib.suppress(OSError):  # the broker did not answer our FIN: cut
                    sock.shutdown(socket.SHUT_RDWR)
                reader.join(self._ack_timeout)
        if sock is not None:
            sock.close()
