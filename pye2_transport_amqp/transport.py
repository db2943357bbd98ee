"""AMQP 0-9-1 transport for pye2 on pika (RabbitMQ).

Features:

* **One I/O thread** owns the pika ``SelectConnection`` (pika is not thread-safe);
  ``publish``, ``subscribe`` and ``cancel`` from any thread are handed over with
  ``IOLoop.add_callback_threadsafe``. Handlers and connection listeners run on that
  thread: keep them cheap (the Session passes its inbox's ``put``).
* **Topology** (DECISIONS item 7, details in :mod:`pye2_transport_amqp.topology`): one
  durable ``topic`` exchange per root, named after the root (``lummetry``); routing key =
  the address with ``/`` -> ``.`` (``lummetry.ctrl``); filters map ``+`` -> ``*`` and
  ``#`` -> ``#``; ``.``, ``*``, ``#`` and ``%`` inside a level are percent-escaped; a
  filter starting with a wildcard is refused (``ConfigError``): subscribe once per root.
* **Exactly once per subscription**: every ``subscribe`` gets its own exclusive,
  auto-delete queue with one binding, so overlapping subscriptions (same filter or
  wildcards) each receive each message once; ``Delivery.address`` is rebuilt from the
  routing key. Consumers use automatic acknowledgement: the queues die with the
  connection anyway, so manual acks would add a round trip and no safety.
  ``subscribe`` returns once the broker has the consumer (``connect_timeout`` bound);
  before ``connect()`` or while reconnecting it returns at once and is set up on connect.
  After ``cancel()`` returns the handler is never called again.
* **Share groups** (``subscribe_shared``): competing consumers of one queue per group and
  filter, so several clients split one stream; each message goes to one of them.
* **Publisher confirms** (``confirms=True``, default): the channel is in confirm mode;
  ``publish`` to an address matching ``confirm_filters`` (default ``+/+/config``, the
  command topics) blocks until the broker confirms it, raising ``TransportError`` on a
  nack or after ``publish_timeout``. Other publishes return at once; messages the broker
  had not confirmed when a connection died are sent again after the reconnect
  (at-least-once: a duplicate is possible, a silent loss is not). With ``confirms=False``
  messages in flight at a connection loss may be lost.
* **Reconnect** after a lost connection: exponential backoff with full jitter, optional
  give-up; exchanges and subscriptions are declared again (new queues), then the
  outbox is flushed. Reported as ``ConnectionEvent``s (``connected``, ``disconnected``,
  ``reconnecting``, ``gave_up``, ``closed``) to ``add_connection_listener`` callbacks.
  ``connect()`` itself makes one attempt and raises ``TransportConnectError``.
* **Bounded outbox**: publishes made while not connected wait in a queue of
  ``offline_queue_max`` messages; when full, ``overflow="raise"`` (default) raises
  ``QueueFull`` and ``"drop_oldest"`` evicts the oldest (logged, counted, its confirm
  waiter gets ``QueueFull``). While connected a full hand-off queue makes ``publish``
  wait for room, at most ``publish_timeout``, then ``QueueFull``.
* **Close** is idempotent and terminal (``connect()`` afterwards raises
  ``TransportClosed``): what was handed over is published and confirmed first (at most
  ``publish_timeout``), anything left is dropped, logged and counted; the I/O thread is
  joined. ``publish``/``subscribe`` after ``close`` raise ``TransportClosed``; bodies
  above ``max_message_bytes`` (default 16 MiB) raise ``MessageTooLarge``. No pika
  exception escapes a public method.

URL form (options: :mod:`pye2_transport_amqp.config`)::

    amqp://USER:PASSWORD@HOST:5672/VHOST?heartbeat=30&connect_timeout=10
    amqps://USER:PASSWORD@HOST:5671/VHOST?ca_file=/etc/ssl/ca.pem
"""

from __future__ import annotations

import logging
import random
import secrets
import ssl
import threading
import time
from typing import Any

import pika

from pye2.domain.logtext import clip
from pye2.domain.sharing import validate_share_group
from pye2.errors import ConfigError, MessageTooLarge, QueueFull, TransportClosed, TransportConnectError, TransportError
from pye2.ports.transport import BaseTransport, ConnectionListener, Handler, TransportCapabilities

from ._backoff import Backoff
from ._consumers import AmqpSubscription
from ._link import CLOSED, CONNECTED, CONNECTING, GAVE_UP, NEW, RECONNECTING, Link
from ._outbox import Outgoing, Waiter
from .config import AmqpConfig, parse_url
from .topology import binding_for, route_for, shared_queue_name, topic_matches

__all__ = ["AmqpSubscription", "AmqpTransport"]

_log = logging.getLogger(__name__)
_HANDOFF_MIN = 1024  # while connected the outbox is only a hand-off buffer; keep bursts flowing
_JOIN_GRACE = 2.0


class AmqpTransport(BaseTransport):
    """pye2 Transport on an AMQP 0-9-1 broker (see the module docstring)."""

    def __init__(self, config: AmqpConfig, *, rng: random.Random | None = None) -> None:
        """Store the configuration; nothing connects before :meth:`connect`.

        Args:
            config: the settings (build one with :meth:`from_url`).
            rng: source of reconnect jitter (tests pass a seeded one).
        """
        if not isinstance(config, AmqpConfig):
            raise ConfigError(f"AmqpTransport needs an AmqpConfig, got {type(config).__name__}")
        self.config = config
        self.name = config.scheme
        self.capabilities = TransportCapabilities(
            wildcards=True,
            max_message_bytes=config.max_message_bytes,
            ordered_per_address=True,
            fanout=True,
            reconnects=config.reconnects,
        )
        backoff = Backoff(config.reconnect_initial_delay, config.reconnect_max_delay,
                          config.reconnect_max_attempts, rng or random.Random())
        self._link = Link(config, secrets.token_hex(4), backoff)
        self._next_sub_id = 1

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AmqpTransport:
        """Build an unconnected transport from ``amqp://`` / ``amqps://`` and options.

        Raises:
            ConfigError: bad URL or option (see :func:`pye2_transport_amqp.config.parse_url`).
        """
        return cls(parse_url(url, **options))

    def __repr__(self) -> str:
        return f"<AmqpTransport {self.config.safe_url} {self._link.state}>"

    # -- state -------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while connected, with every subscription in place."""
        return self._link.state == CONNECTED

    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``connected``, ``reconnecting``, ``gave_up`` or ``closed``."""
        return self._link.state

    def stats(self) -> dict[str, int]:
        """Counters: published, confirmed, nacked, delivered, handler_errors, dropped, requeued,
        disconnects, reconnects, plus ``outbox`` (messages waiting now)."""
        link = self._link
        with link.lock:
            counters = dict(link.counters)
            counters["outbox"] = len(link.outbox)
        return counters

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(ConnectionEvent)`` on every state change (on the I/O thread)."""
        if not callable(listener):
            raise ConfigError("connection listener must be callable")
        with self._link.lock:
            self._link.listeners.append(listener)

    def remove_connection_listener(self, listener: ConnectionListener) -> None:
        """Stop calling ``listener`` (no-op if it was not added)."""
        with self._link.lock:
            if listener in self._link.listeners:
                self._link.listeners.remove(listener)

    # -- connect / close -----------------------------------------------------------------

    def connect(self) -> None:
        """Connect, open the channel and set up pending subscriptions (idempotent).

        Raises:
            TransportConnectError: not connected within ``connect_timeout`` (cause chained).
            TransportClosed: after :meth:`close`.
            ConfigError: the TLS CA file cannot be loaded.
        """
        link = self._link
        timeout = self.config.connect_timeout
        with link.lock:
            if link.state == CLOSED:
                raise TransportClosed("connect() after close(); build a new transport")
            if link.state == CONNECTED:
                return
            if link.on_io_thread():
                raise TransportError("connect() cannot wait on the transport's own I/O thread")
            if link.state in (NEW, GAVE_UP):
                if link.params is None:
                    link.params = self._parameters()
                link.state = CONNECTING
                link.last_error = None
                link.start_locked()
                link.submit_locked(link.io_open)
            thread = link.thread
            # pika's own stack timeout fires at connect_timeout; the grace only covers a stuck loop.
            link.cond.wait_for(lambda: link.state not in (CONNECTING, RECONNECTING), timeout + _JOIN_GRACE)
            state, error = link.state, link.last_error
            if state == CONNECTING:
                link.state = NEW
                error = link.last_error = TransportConnectError(f"AMQP: no connection within {timeout}s")
                link.submit_locked(link.io_abandon)
                state = NEW
        if state == CONNECTED:
            return
        if state == CLOSED:
            raise TransportClosed("transport closed while connecting")
        if thread is not None and state == NEW:
            thread.join(_JOIN_GRACE)  # the I/O thread of a failed first connect stops on its own
        reason = str(error) if error is not None else "unknown reason"
        detail = "still reconnecting" if state == RECONNECTING else "cannot connect"
        raise TransportConnectError(
            f"AMQP {detail} to {self.config.safe_url} within {timeout}s: {reason}"
        ) from (error.__cause__ if error is not None and error.__cause__ is not None else error)

    def close(self) -> None:
        """Flush what was handed over (at most ``publish_timeout``), disconnect, join the I/O thread.

        Idempotent. Messages not sent or not confirmed by then are dropped, logged and counted.
        """
        link = self._link
        leftovers: list[Outgoing] = []
        with link.lock:
            if link.state == CLOSED:
                return
            previous = link.state
            link.state = CLOSED
            link.cond.notify_all()
            thread = link.thread
            running = link.loop is not None
            if running:
                link.submit_locked(link.io_close, previous)
            else:
                leftovers = link.outbox.clear()
                link.counters["dropped"] += len(leftovers)
        if not running:
            for item in leftovers:
                item.settle(TransportClosed("transport closed before connecting"))
            if leftovers:
                _log.warning("AMQP closed before connecting: %d queued messages dropped", len(leftovers))
            link.emit("closed")
            return
        if thread is None or thread is threading.current_thread():
            return  # closing from a handler: the loop finishes on its own
        thread.join(self.config.publish_timeout + self.config.connect_timeout + _JOIN_GRACE)
        if thread.is_alive():
            _log.error("AMQP I/O thread %s did not stop after close()", thread.name)

    def force_reconnect(self) -> None:
        """Drop the connection the way an outage would; it reconnects by itself (for tests).

        Returns at once; watch the ``connected`` event. No-op while already reconnecting.

        Raises:
            TransportClosed: after :meth:`close`.
            TransportError: never connected, or gave up.
        """
        link = self._link
        with link.lock:
            if link.state == CLOSED:
                raise TransportClosed("force_reconnect() after close()")
            if link.state in (NEW, GAVE_UP):
                raise TransportError(f"force_reconnect() needs a connected transport (state {link.state})")
            link.submit_locked(link.io_force_drop)

    # -- subscribe / publish -------------------------------------------------------------

    def subscribe(self, address: str, handler: Handler) -> AmqpSubscription:
        """Deliver every message whose address matches the filter ``address`` to ``handler``.

        Raises:
            ConfigError: malformed filter, or its first level is a wildcard.
            TransportClosed: after :meth:`close`.
            TransportError: the broker refused it, or did not confirm it within ``connect_timeout``.
        """
        return self._subscribe(address, handler, None)

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> AmqpSubscription:
        """Compete for ``address``'s messages with every client subscribed in ``group``.

        All members consume from one queue (``<queue_prefix>.share.<group>.<binding key>``,
        auto-delete, not exclusive), so RabbitMQ hands each message to one of them,
        round robin. Otherwise as :meth:`subscribe`.

        Raises:
            ConfigError: malformed filter, first level a wildcard, bad group name.
            TransportClosed: after :meth:`close`.
            TransportError: the broker refused it, or did not confirm it within ``connect_timeout``.
        """
        group = validate_share_group(group)
        return self._subscribe(address, handler, shared_queue_name(self.config.queue_prefix, group, address))

    def _subscribe(self, address: str, handler: Handler, shared_queue: str | None) -> AmqpSubscription:
        link = self._link
        if link.state == CLOSED:
            raise TransportClosed(f"subscribe({address!r}) after close()")
        binding = binding_for(address)
        if not callable(handler):
            raise ConfigError("subscription handler must be callable")
        waiter: Waiter | None = None
        with link.lock:
            if link.state == CLOSED:
                raise TransportClosed(f"subscribe({address!r}) after close()")
            if link.state == GAVE_UP:
                raise TransportError("AMQP transport gave up reconnecting; call connect() again") from link.last_error
            sub = AmqpSubscription(link, self._next_sub_id, address, binding, handler, shared_queue)
            self._next_sub_id += 1
            link.subs[sub.sub_id] = sub
            if link.state == CONNECTED:
                if not link.on_io_thread():
                    waiter = sub.waiter = Waiter()
                link.submit_locked(link.setup_subscription, sub)
        if waiter is not None:
            confirmed = waiter.wait(self.config.connect_timeout)
            sub.waiter = None
            if not confirmed or waiter.error is not None:
                sub.cancel()
                if waiter.error is not None:
                    raise waiter.error
                raise TransportError(f"AMQP broker did not confirm the subscription to {address!r} "
                                     f"within {self.config.connect_timeout}s")
        return sub

    def publish(self, address: str, body: bytes) -> None:
        """Send ``body`` to ``address``; command topics wait for the broker's confirm.

        Raises:
            TransportClosed: after :meth:`close`.
            ConfigError: invalid address, or ``body`` not bytes-like.
            MessageTooLarge: ``body`` above ``max_message_bytes``.
            QueueFull: the outbox is full (see ``overflow``).
            TransportError: not confirmed (nack, timeout), or the transport gave up reconnecting.
        """
        link = self._link
        if link.state == CLOSED:
            raise TransportClosed(f"publish({address!r}) after close()")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ConfigError(f"body must be bytes, got {type(body).__name__}")
        data = bytes(body)
        if len(data) > self.config.max_message_bytes:
            raise MessageTooLarge(
                f"{len(data)}-byte message to {address!r} is above the {self.config.max_message_bytes}-byte maximum")
        route = route_for(address)
        on_io = link.on_io_thread()
        confirm = self.config.confirms and any(topic_matches(f, address) for f in self.config.confirm_filters)
        item = Outgoing(address, route, data, Waiter() if confirm and not on_io else None)
        deadline = time.monotonic() + self.config.publish_timeout
        evicted = self._enqueue(item, deadline, on_io)
        if evicted is not None:
            evicted.settle(QueueFull(f"message to {evicted.address!r} evicted from the full outbox"))
            _log.warning("AMQP outbox full: dropped the oldest message (to %s) for one to %s",
                         clip(evicted.address), clip(address))
        if item.waiter is not None:
            self._await_confirm(item, item.waiter, deadline)

    def _enqueue(self, item: Outgoing, deadline: float, on_io: bool) -> Outgoing | None:
        link = self._link
        handoff = max(self.config.offline_queue_max, _HANDOFF_MIN)
        with link.lock:
            while True:
                state = link.state
                if state == CLOSED:
                    raise TransportClosed(f"publish({item.address!r}) after close()")
                if state == GAVE_UP:
                    raise TransportError("AMQP transport gave up reconnecting; message not sent") from link.last_error
                if state != CONNECTED:
                    evicted = link.outbox.offer(item)
                    if evicted is not None:
                        link.counters["dropped"] += 1
                    return evicted
                if len(link.outbox) < handoff:
                    link.outbox.offer(item, handoff)
                    link.request_drain_locked()
                    return None
                remaining = deadline - time.monotonic()
                if on_io or remaining <= 0:
                    raise QueueFull(f"AMQP outgoing queue stayed full ({handoff} messages) for "
                                    f"{self.config.publish_timeout}s; message to {item.address!r} refused")
                link.cond.wait(remaining)

    def _await_confirm(self, item: Outgoing, waiter: Waiter, deadline: float) -> None:
        if not waiter.wait(max(deadline - time.monotonic(), 0.0)):
            with self._link.lock:
                withdrawn = self._link.outbox.remove(item)
            if withdrawn:
                raise TransportError(f"AMQP message to {item.address!r} not sent within "
                                     f"{self.config.publish_timeout}s (not connected); it was withdrawn")
            if not waiter.done:
                raise TransportError(f"AMQP broker did not confirm the message to {item.address!r} within "
                                     f"{self.config.publish_timeout}s (it may still be delivered)")
        if waiter.error is not None:
            raise waiter.error

    # -- helpers -------------------------------------------------------------------------

    def _parameters(self) -> pika.ConnectionParameters:
        cfg = self.config
        ssl_options = None
        if cfg.tls:
            try:
                context = ssl.create_default_context(cafile=cfg.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load the TLS CA file {cfg.ca_file!r}: {exc}") from None
            ssl_options = pika.SSLOptions(context, server_hostname=cfg.host)
        try:
            return pika.ConnectionParameters(
                host=cfg.host, port=cfg.port, virtual_host=cfg.vhost,
                credentials=pika.PlainCredentials(cfg.username, cfg.password),
                heartbeat=cfg.heartbeat, ssl_options=ssl_options,
                connection_attempts=1, socket_timeout=cfg.connect_timeout, stack_timeout=cfg.connect_timeout,
                blocked_connection_timeout=cfg.blocked_timeout,
                client_properties={"connection_name": f"pye2-{self._link.token}"},
            )
        except (TypeError, ValueError) as exc:  # pika validates again; keep its error out of the API
            raise ConfigError(f"invalid AMQP connection setting: {exc}") from None
