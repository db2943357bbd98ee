"""A tiny tcpbus broker: plain TCP, one thread per client, MQTT-style matching.

Run it as a program::

    python -m pye2_example_tcp.broker --port 7070

or in-process (tests do this)::

    with start_broker(port=0) as broker:   # port 0: the OS picks a free one
        print(broker.url)                   # tcpbus://127.0.0.1:<port>

It is an example, not a product: no authentication, no TLS, no persistence,
no back-pressure (a client that stops reading stalls whoever publishes to it).
Keep it on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import threading
from types import TracebackType

from pye2.errors import ConfigError, DecodeError
from pye2_example_tcp.protocol import (
    ACK,
    ERR,
    HELLO,
    MAX_TOPIC_BYTES,
    MSG,
    PROTOCOL,
    PUB,
    SUB,
    UNSUB,
    Frame,
    encode,
    matches,
    read_frame,
    validate_address,
    validate_filter,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Broker", "main", "start_broker"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1 << 20


class _Client:
    """One connected client: its socket, a lock so frames never interleave, its subscriptions."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.send_lock = threading.Lock()
        self.subscriptions: dict[int, str] = {}  # subscription id -> filter; guarded by Broker._lock

    def send(self, frame: Frame) -> bool:
        """Send one frame; False (and the connection is shut) when the client is gone."""
        data = encode(frame)
        with self.send_lock:
            try:
                self.sock.sendall(data)
                return True
            except OSError as exc:
                log.info("tcpbus broker: dropping %s: %s", self.peer, exc)
                self.shut()
                return False

    def shut(self) -> None:
        """Wake this client's reader thread (it then forgets the client)."""
        with contextlib.suppress(OSError):  # already disconnected
            self.sock.shutdown(socket.SHUT_RDWR)


class Broker:
    """A tcpbus broker listening on ``host:port`` (``port=0``: any free port).

    The constructor binds and listens, so :attr:`port` and :attr:`url` are
    known at once; :meth:`start` begins accepting clients.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_frame_bytes = max_body_bytes + MAX_TOPIC_BYTES + 7  # + kind, ident, topic length
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._clients: dict[_Client, threading.Thread] = {}
        self._started = False
        self._closing = False
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"tcpbus-broker-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The URL clients connect to: ``tcpbus://host:port``."""
        return f"tcpbus://{self.host}:{self.port}"

    def start(self) -> Broker:
        """Start accepting clients (in a background thread); idempotent; returns self."""
        with self._lock:
            if not self._started:
                self._started = True
                self._acceptor.start()
        return self

    def close(self) -> None:
        """Disconnect every client, stop listening and join all threads. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        if self._acceptor.is_alive():
            # accept() is not woken by closing the socket on every OS: connect to ourselves instead.
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), timeout=1.0).close()
            self._acceptor.join()
        self._listener.close()
        with self._lock:
            clients = dict(self._clients)
        for client, thread in clients.items():
            client.shut()
            thread.join()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- threads ---------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, addr = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closing:
                    sock.close()
                    return
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small frames, sent at once
                client = _Client(sock, f"{addr[0]}:{addr[1]}")
                thread = threading.Thread(target=self._serve, args=(client,), daemon=True,
                                          name=f"tcpbus-broker-{self.port}-{client.peer}")
                self._clients[client] = thread
            thread.start()

    def _serve(self, client: _Client) -> None:
        """Read the client's frames one by one until it disconnects."""
        log.debug("tcpbus broker: %s connected", client.peer)
        try:
            while True:
                frame = read_frame(client.sock, self.max_frame_bytes)
                if frame is None or not self._handle(client, frame):
                    break
        except (OSError, DecodeError) as exc:
            log.info("tcpbus broker: %s failed: %s", client.peer, exc)
        finally:
            with self._lock:
                self._clients.pop(client, None)
            with client.send_lock:  # no publisher is mid-sendall on this socket while it closes
                client.sock.close()
            log.debug("tcpbus broker: %s disconnected", client.peer)

    def _handle(self, client: _Client, frame: Frame) -> bool:
        """Act on one frame; False ends the connection."""
        if frame.kind == HELLO:
            if frame.topic != PROTOCOL:
                client.send(Frame(ERR, frame.ident, body=f"this broker speaks {PROTOCOL}".encode()))
                return False
            return client.send(Frame(ACK, frame.ident))
        if frame.kind == SUB:
            try:
                filter_ = validate_filter(frame.topic)
            except ConfigError as exc:
                return client.send(Frame(ERR, frame.ident, body=str(exc).encode()))
            with self._lock:
                client.subscriptions[frame.ident] = filter_
            # Acknowledge only once routed: a message published after the client saw the ACK matches.
            return client.send(Frame(ACK, frame.ident))
        if frame.kind == UNSUB:
            with self._lock:
                client.subscriptions.pop(frame.ident, None)
            return True
        if frame.kind == PUB:
            try:
                validate_address(frame.topic)
            except ConfigError as exc:
                return client.send(Frame(ERR, 0, body=str(exc).encode()))
            self._route(frame.topic, frame.body)
            return True
        client.send(Frame(ERR, frame.ident, body=b"unexpected frame kind"))
        return False

    def _route(self, topic: str, body: bytes) -> None:
        """Send one ``MSG`` per matching subscription.

        This runs on the publisher's thread, so messages of one publisher reach
        each subscriber in the order they were published.
        """
        with self._lock:
            targets = [(client, sub_id) for client in self._clients
                       for sub_id, filter_ in client.subscriptions.items() if matches(filter_, topic)]
        for client, sub_id in targets:
            client.send(Frame(MSG, sub_id, topic, body))


def start_broker(host: str = "127.0.0.1", port: int = 0, *,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Broker:
    """Create and start a broker in this process; ``close()`` it (or use ``with``) when done."""
    return Broker(host, port, max_body_bytes=max_body_bytes).start()


def main(argv: list[str] | None = None) -> int:
    """``python -m pye2_example_tcp.broker [--host H] [--port N]``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m pye2_example_tcp.broker",
                                     description="Run a tcpbus broker (an example; keep it on loopback).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7070, help="port (0: any free port; default 7070)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        broker = start_broker(args.host, args.port)
    except OSError as exc:
        parser.error(f"cannot listen on {args.host}:{args.port}: {exc}")
    print(f"tcpbus broker listening on {broker.url} (Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
