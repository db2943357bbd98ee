"""MQTT transport for pye2 on paho-mqtt 2.x (``mqtt://`` and ``mqtts://``).

Features:

* URL ``mqtt://[USER[:PASSWORD]@]HOST[:PORT][?option=value&...]``; ``mqtts://`` adds TLS
  (``ca_file=``, ``cert_file=``/``key_file=``); every option is a field of
  :class:`~pye2_transport_mqtt.config.MqttConfig`. Addresses are MQTT topics as they are.
* One paho client, one TCP connection per transport; MQTT 5 by default (``protocol=3.1.1``
  for old brokers); paho's network thread (``loop_start``) runs the socket. It reads through
  :class:`~pye2_transport_mqtt._reader.BufferedReadClient`: large reads, and QoS 0 messages
  handed from the read buffer to the handlers without paho's per-message work (QoS 1/2 and
  control packets still go through paho). A malformed packet from the broker drops the link
  (then reconnect as after any loss).
* ``connect()`` blocks until CONNACK, at most ``connect_timeout``; failures raise
  :class:`~pye2.errors.TransportConnectError` with paho's error chained.
* Subscriptions are owned by the transport: one broker subscription per distinct filter
  (``+``/``#`` allowed), shared by its handlers, removed with its last handler, replayed
  after every reconnect. While connected, ``subscribe()`` waits for the broker's
  acknowledgement (SUBACK; for a filter already subscribed, the UNSUBACK of a barrier
  packet): a message published afterwards by anyone arrives, and the new handler gets
  nothing the broker routed before (those are still on their way ahead of the ack).
* Overlapping filters (decision): each filter carries an MQTT 5 subscription identifier
  and each broker delivery goes to the filters whose identifiers it carries, so every
  subscription gets a message exactly once per broker delivery to it (Mosquitto sends one
  copy per matching subscription, each naming its own). Under MQTT 3.1.1 a delivery is
  matched locally against every filter; a broker that sends one copy per overlapping
  subscription then makes each of them see it once per copy (Mosquitto 2 sends one copy).
* Shared subscriptions (``subscribe_shared``): ``$share/<group>/<filter>``, so several
  clients split one stream (MQTT 5; Mosquitto also takes them from 3.1.1 clients).
  Cancelling one waits for the UNSUBACK, so the group's later messages go to the others.
  Under MQTT 3.1.1 (no subscription identifiers) a transport should not hold a shared and a
  plain subscription on overlapping filters: local matching cannot tell their copies apart.
* QoS per topic (``qos``, ``qos_overrides``; command topics ``+/+/config`` at least 1).
* Reconnects through paho's loop after an unexpected loss: exponential backoff with full
  jitter, the delay of each attempt set with ``reconnect_delay_set``; every loss, attempt,
  give-up, connect and close is reported as a :class:`~pye2.ports.transport.ConnectionEvent`.
* Publishing goes through one bounded FIFO drained by a sender thread into paho, at most
  ``max_inflight`` messages unconfirmed at a time (QoS 0: until written; QoS > 0: until
  acknowledged). While disconnected the FIFO keeps filling; when full, ``overflow`` applies
  (default: :class:`~pye2.errors.QueueFull` raised to the caller). After a reconnect the
  messages paho had not had acknowledged go first, then the queue, in order.
* Direct path: while connected, with the FIFO empty, room in the ``max_inflight`` window and
  the sender thread idle, ``publish()`` hands the message to paho itself and writes it to the
  socket from the caller's thread (:class:`~pye2_transport_mqtt._writer.DirectWriteClient`),
  skipping the wake-ups of the sender and network threads. Anything else (disconnected,
  messages queued, window full, sender busy, called on the network thread) takes the FIFO,
  so a message never overtakes an earlier one; unconfirmed direct messages count in the
  window and come back after a reconnect like any other. Over TLS the network thread
  writes (woken as paho would), the hand-off to paho is still direct.
* Delivery guarantees: QoS 0 messages written on a connection that then dies are lost
  (MQTT's "at most once"); QoS 1 and 2 survive reconnects as "at least once" (a message
  whose acknowledgement was lost is sent again, as a new publish).
* Order: one publisher's messages to one topic keep their order (one FIFO, one connection,
  one QoS per topic), except that a re-sent message may repeat an earlier one.
* ``close()`` waits up to ``drain_timeout`` for queued and unconfirmed messages while
  connected, then drops the rest (logged with their number), disconnects and stops both
  threads. It may take up to about one second more if paho is between reconnect attempts.
* No paho exception leaves a public method: they become :class:`~pye2.errors.TransportError`
  subclasses. Handler exceptions are logged with their traceback and counted.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pye2.domain.logtext import clip
from pye2.domain.sharing import validate_share_group
from pye2.errors import ConfigError, MessageTooLarge, TransportClosed, TransportConnectError, TransportError
from pye2.ports.transport import (
    BaseTransport,
    ConnectionEvent,
    ConnectionListener,
    Delivery,
    Handler,
    TransportCapabilities,
)

from . import _client as paho
from ._client import MQTTErrorCode, Properties, ReasonCode, mqtt
from ._outbox import FAILED, NO_CONNECTION, SENT, Outbox, Outgoing, Sender
from ._subscriptions import FilterEntry, MqttSubscription, SubscriptionTable
from ._topics import validate_filter, validate_topic
from ._writer import DirectWriteClient
from .config import MqttConfig, parse_url

__all__ = ["MqttStats", "MqttTransport"]

log = logging.getLogger(__name__)

_NEW, _CONNECTING, _UP, _DOWN, _GAVE_UP, _FAILED, _CLOSED = (
    "new", "connecting", "up", "down", "gave_up", "failed", "closed")
_TOPIC_CACHE_MAX = 4096  # validated topics remembered with their QoS (emptied when full)


class _LinkMarker:
    """Stands in for a subscription when ``connect()`` waits for a barrier's acknowledgement."""

    address = "<restored subscriptions>"

    def activate(self) -> None:
        """Nothing to activate: the barrier only marks a point in the stream."""


@dataclass
class _Pending:
    """A handle waiting for the acknowledgement that activates it."""

    sub: MqttSubscription | _LinkMarker
    waited: bool  # a subscribe() call waits for ``failures``
    failures: list[str] | None = None


@dataclass(frozen=True, slots=True)
class MqttStats:
    """Counters of one transport (a snapshot)."""

    delivered: int
    handler_errors: int
    unrouted: int
    published: int
    queue_dropped: int
    send_errors: int
    refused_by_broker: int
    reconnects: int
    direct_publishes: int  # handed to paho on the caller's thread (the direct path), not queued


class MqttTransport(BaseTransport):
    """A pye2 :class:`~pye2.ports.transport.Transport` over one MQTT connection (see module doc)."""

    def __init__(self, config: MqttConfig) -> None:
        if not isinstance(config, MqttConfig):
            raise ConfigError(f"MqttTransport needs an MqttConfig, got {type(config).__name__}")
        self.config = config
        self.name = config.scheme
        self.capabilities = TransportCapabilities(
            wildcards=True, max_message_bytes=config.max_message_bytes, ordered_per_address=True,
            fanout=True, reconnects=config.reconnects)
        self._cond = threading.Condition()  # guards every field below
        self._send_mutex = threading.Lock()  # one hand-off to paho at a time (see _on_connect)
        self._connect_lock = threading.Lock()  # serialises connect() and close()
        self._phase = _NEW
        self._closing = False
        self._client: DirectWriteClient | None = None
        self._loop_thread_name = paho.loop_thread_name(config)
        self._topic_qos: dict[str, int] = {}  # topics published on: valid, with their QoS
        self._outbox = Outbox(config.offline_queue_max, config.overflow, config.max_inflight)
        self._table = SubscriptionTable()
        self._listeners: list[ConnectionListener] = []
        self._pending: dict[int, _Pending] = {}  # SUBSCRIBE/barrier message id -> who waits for the ack
        self._links = 0  # +1 per CONNACK
        self._announced = 0  # links whose "connected" event listeners have had
        self._use_sub_ids = config.protocol == "5"
        self._attempt = 0
        self._down_since = 0.0
        self._last_error: TransportError | None = None
        self._refusal: TransportConnectError | None = None  # CONNACK failure of the current attempt
        self._sender: Sender | None = None
        self._rng = random.Random()
        self._counts = dict.fromkeys((f.name for f in fields(MqttStats)), 0)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MqttTransport:
        """Build an unconnected transport from an ``mqtt://``/``mqtts://`` URL (no network).

        Raises:
            ConfigError: invalid URL or option.
        """
        return cls(parse_url(url, **options))

    def __repr__(self) -> str:
        return f"<MqttTransport {self.config.safe_url} client_id={self.config.client_id!r} {self._phase}>"

    # -- public API -------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while a CONNACK-confirmed connection is up."""
        return self._phase == _UP

    @property
    def stats(self) -> MqttStats:
        """Counters: deliveries, handler errors, drops, reconnects."""
        with self._cond:
            return MqttStats(**{**self._counts, "queue_dropped": self._outbox.dropped})

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(ConnectionEvent)`` on every connection change (on a transport thread)."""
        if not callable(listener):
            raise ConfigError("a connection listener must be callable")
        with self._cond:
            self._listeners.append(listener)

    def connect(self) -> None:
        """Connect and wait for the CONNACK (idempotent).

        Raises:
            TransportConnectError: unreachable, refused, TLS failure or no CONNACK in time.
            TransportClosed: after ``close()``.
            TransportError: called from the transport's own network thread (a handler or listener).
        """
        if self._on_loop_thread() and self._phase != _UP:
            raise TransportError("connect() cannot run on the MQTT network thread (from a handler or listener)")
        with self._connect_lock:
            with self._cond:
                self._check_open()
                if self._phase == _DOWN:  # paho is reconnecting: let it finish
                    self._cond.wait_for(lambda: self._phase != _DOWN, self.config.connect_timeout)
                    self._check_open()
                    if self._phase == _DOWN:
                        raise TransportConnectError(
                            f"MQTT broker {self.config.safe_url} still unreachable after "
                            f"{self.config.connect_timeout}s") from self._last_error
                if self._phase == _UP:
                    return
            self._connect_now()
            self._settle_restored_subscriptions()

    def _settle_restored_subscriptions(self) -> None:
        """Return from ``connect()`` only once the broker routes to the subscriptions made before it.

        Their SUBSCRIBEs went out with the CONNACK handling; a barrier sent now is
        acknowledged after the broker has processed them (it handles packets in order).
        """
        with self._cond:
            if self._phase != _UP or self._client is None or not self._table.entries():
                return
            mid = paho.barrier(self._client)
            if mid is None:
                return
            marker = _Pending(_LinkMarker(), True)
            self._pending[mid] = marker
            links = self._links
            self._cond.wait_for(lambda: marker.failures is not None or self._links != links or self._phase != _UP,
                                self.config.connect_timeout)
            self._pending.pop(mid, None)

    def subscribe(self, address: str, handler: Handler) -> MqttSubscription:
        """Deliver every message on topics matching ``address`` to ``handler``.

        While connected this waits (up to ``connect_timeout``) for the broker's acknowledgement:
        messages published afterwards by anyone reach the handler, and nothing the broker
        routed before does. From a handler (the network thread) it returns at once and the
        handler starts with the acknowledgement.

        Raises:
            ConfigError: invalid filter or handler. TransportClosed: after ``close()``.
            TransportError: the broker refused the subscription.
        """
        topic_filter = validate_filter(address)
        if not callable(handler):
            raise ConfigError("a subscription handler must be callable")
        return self._subscribe(MqttSubscription(topic_filter, handler, self._cancel))

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> MqttSubscription:
        """Join the MQTT 5 shared subscription ``$share/<group>/<address>``.

        Every client subscribed to the same filter in the same group gets a share of
        its messages (Mosquitto: round robin), each message going to one of them; the
        handler sees them under their own topics. Otherwise as :meth:`subscribe`.

        Raises:
            ConfigError: invalid filter, group or handler. TransportClosed: after ``close()``.
            TransportError: the broker refused the subscription (e.g. no shared subscriptions).
        """
        topic_filter = validate_filter(address)
        if topic_filter.startswith("$"):
            raise ConfigError(f"cannot share {clip(topic_filter)!r}: a shared filter cannot start with '$'")
        group = validate_share_group(group)
        if not callable(handler):
            raise ConfigError("a subscription handler must be callable")
        return self._subscribe(MqttSubscription(topic_filter, handler, self._cancel, share_group=group))

    def _subscribe(self, sub: MqttSubscription) -> MqttSubscription:
        wait = not self._on_loop_thread()  # the loop thread would wait for itself
        with self._cond:
            self._check_open()
            entry, is_new = self._table.add(sub, self.config.qos_for(sub.address))
            mid = None
            if self._phase == _UP and self._client is not None:
                try:
                    mid = self._broker_subscribe(entry) if is_new else paho.barrier(self._client)
                except TransportError:
                    self._table.remove(sub)
                    raise
            if mid is None:
                sub.activate()  # not connected: the next CONNACK starts a clean link for it
            else:
                self._pending[mid] = _Pending(sub, wait)
            links = self._links
        if mid is not None and wait:
            self._await_ack(mid, sub, links)
        return sub

    def publish(self, address: str, body: bytes) -> None:
        """Queue ``body`` for ``address``; it is sent in order as soon as the link allows.

        While connected, a full queue makes the call wait up to ``publish_timeout`` for room
        (not on the network thread); while disconnected the overflow policy applies at once.

        Raises:
            ConfigError: invalid topic or body type. MessageTooLarge: above ``max_message_bytes``.
            TransportClosed: after ``close()``. QueueFull: queue full and overflow is ``raise``.
        """
        if self._closing:
            raise TransportClosed(f"MQTT transport {self.config.safe_url} is closed")
        qos = self._topic_qos.get(address) if type(address) is str else None
        if qos is None:
            topic = validate_topic(address)
            qos = self.config.qos_for(topic)
            if len(self._topic_qos) >= _TOPIC_CACHE_MAX:
                self._topic_qos.clear()
            self._topic_qos[topic] = qos
        else:
            topic = address
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ConfigError(f"message body must be bytes, got {type(body).__name__}")
        data = bytes(body)
        if len(data) > self.config.max_message_bytes:
            raise MessageTooLarge(f"{len(data)} bytes for {topic!r}; this transport's limit is "
                                  f"{self.config.max_message_bytes} (max_message_bytes)")
        item = Outgoing(topic, data, qos)
        on_loop = self._on_loop_thread()
        if not on_loop and self._publish_direct(item):
            return
        wait = self.config.publish_timeout if not on_loop else 0.0
        with self._cond:
            self._check_open()
            if self._outbox.full and self._phase == _UP and wait > 0:
                # Connected but the network is slower than the caller: slow the caller down
                # (while disconnected the policy applies at once; an outage is not a burst).
                self._cond.wait_for(lambda: not self._outbox.full or self._phase != _UP or self._closing, wait)
                self._check_open()
            self._outbox.put(item, connected=self._phase == _UP)
            self._cond.notify_all()

    def force_reconnect(self) -> None:
        """Drop the connection as an outage would; the reconnect path then runs (for tests)."""
        with self._cond:
            self._check_open()
            client = self._client if self._phase == _UP else None
        sock = client.socket() if client is not None else None
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # already gone: the loop notices anyway
                log.debug("force_reconnect: shutdown failed: %s", exc)

    def close(self) -> None:
        """Drain (up to ``drain_timeout``), disconnect and stop the threads. Idempotent."""
        with self._connect_lock:
            with self._cond:
                if self._phase == _CLOSED:
                    return
                self._closing = True
                self._cond.notify_all()
                if self._phase == _UP and not self._on_loop_thread() and self.config.drain_timeout > 0:
                    self._cond.wait_for(lambda: self._phase != _UP or self._outbox.idle, self.config.drain_timeout)
                left = self._outbox.clear()
                self._phase = _CLOSED
                subs = self._table.all_subscriptions()
                self._table.clear()
                self._cond.notify_all()
            for sub in subs:
                sub.mark_cancelled()
            if left:
                log.warning("closing %s: %d message(s) not sent or not acknowledged were dropped",
                            self.config.safe_url, left)
            if self._client is not None:
                self._abort_link()
            if self._sender is not None:
                self._sender.join()
            self._emit([ConnectionEvent("closed")])

    # -- connecting ---------------------------------------------------------------------------

    def _on_loop_thread(self) -> bool:
        return threading.current_thread().name == self._loop_thread_name

    def _check_open(self) -> None:
        if self._closing:
            raise TransportClosed(f"MQTT transport {self.config.safe_url} is closed")

    def _connect_now(self) -> None:
        cfg = self.config
        client = self._ensure_client()
        self._stop_loop()  # the loop thread of an earlier, failed or abandoned link
        with self._cond:
            self._phase = _CONNECTING
            self._last_error = None
        deadline = time.monotonic() + cfg.connect_timeout
        try:
            client.connect(cfg.host, cfg.port, cfg.keepalive, **paho.connect_args(cfg))
        except Exception as exc:  # OSError, ssl.SSLError, socket.gaierror, paho's ValueError
            with self._cond:
                self._phase = _FAILED
            raise TransportConnectError(f"cannot connect to MQTT broker {cfg.safe_url}: {exc}") from exc
        failure: Exception | None = None
        try:
            started = client.loop_start() == MQTTErrorCode.MQTT_ERR_SUCCESS
        except Exception as exc:  # noqa: BLE001 - e.g. no file descriptor left for paho's socketpair
            started, failure = False, exc
        if not started:
            self._abort_link()
            with self._cond:
                self._phase = _FAILED
            raise TransportConnectError(f"cannot start the MQTT network thread: {failure or 'already running'}"
                                        ) from failure
        self._start_sender()
        with self._cond:
            # Listeners hear "connected" before connect() returns, so events keep their order.
            self._cond.wait_for(lambda: self._phase != _CONNECTING and (self._phase != _UP or self._announced
                                                                      == self._links),
                                max(deadline - time.monotonic(), 0.0))
            if self._phase == _UP:
                return
            error = self._last_error
            self._phase = _FAILED
        self._abort_link()
        reason = str(error) if error else f"no CONNACK within {cfg.connect_timeout}s"
        raise TransportConnectError(f"cannot connect to MQTT broker {cfg.safe_url}: {reason}") from error

    def _ensure_client(self) -> DirectWriteClient:
        if self._client is None:
            names = ("on_connect", "on_connect_fail", "on_disconnect", "on_message", "on_publish", "on_subscribe",
                     "on_unsubscribe")
            client = paho.build_client(
                self.config, {name: self._guard(getattr(self, "_" + name)) for name in names}, DirectWriteClient)
            client.on_qos0_publish = self._dispatch  # the reader guards it itself
            self._client = client
        return self._client

    def _abort_link(self) -> None:
        client = self._client
        if client is not None:
            paho.disconnect_quietly(client)
            paho.stop_loop(client)
            if client.socket() is not None:  # a link the loop opened while stopping
                paho.disconnect_quietly(client)  # no loop now: paho writes and closes at once

    def _stop_loop(self) -> None:
        if self._client is not None:
            paho.stop_loop(self._client)

    # -- paho callbacks (network thread) -----------------------------------------------------

    def _guard(self, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:  # never let our bug kill paho's thread
                log.exception("internal error in MQTT callback %s", callback.__name__)

        return guarded

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            with self._cond:
                self._refusal = TransportConnectError(f"the broker refused the connection: {reason}")
                if self._phase == _CONNECTING:
                    self._last_error = self._refusal
                    self._phase = _FAILED
                self._cond.notify_all()
            return  # paho closes the socket and calls on_disconnect next (see _on_loss)
        with self._send_mutex:  # the sender is not inside client.publish()
            # paho would re-send its unacknowledged messages right after this callback; we take
            # them back so they go first, in order, through the outbox, as new publishes.
            leftovers = client.drop_out_messages()
            with self._cond:
                self._outbox.new_link([Outgoing(m.topic, bytes(m.payload), m.qos) for m in leftovers])
                self._links += 1
                self._pending.clear()  # acknowledgements of the old link never come
                for sub in self._table.all_subscriptions():
                    sub.activate()  # a clean link: nothing routed before can arrive
                if self._phase not in (_CONNECTING, _DOWN) or self._closing:
                    return  # a late CONNACK after a timeout, a give-up or close()
                reconnected = self._phase == _DOWN
                if self.config.protocol == "5":
                    self._use_sub_ids = getattr(properties, "SubscriptionIdentifierAvailable", 1) != 0
                # SUBSCRIBE packets are queued before any PUBLISH of this link; the broker
                # handles them in order, so our own queued messages reach our subscriptions.
                for entry in self._table.entries():
                    try:
                        self._broker_subscribe(entry)
                    except TransportError as exc:
                        log.error("could not restore the subscription to %s: %s", clip(entry.topic_filter), clip(exc))
                self._phase = _UP
                links = self._links
                self._attempt = 0
                self._counts["reconnects"] += int(reconnected)
                self._cond.notify_all()
        log.info("connected to MQTT broker %s as %r", self.config.safe_url, self.config.client_id)
        self._emit([ConnectionEvent("connected")])
        with self._cond:
            self._announced = links
            self._cond.notify_all()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._on_loss("could not open a connection (TCP/TLS)")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, _properties: Properties | None) -> None:
        if flags.is_disconnect_packet_from_server:
            self._on_loss(f"the broker closed the connection ({reason})")
        else:
            self._on_loss("connection lost" if reason.value in (0, 0x80) else f"connection lost ({reason})")

    def _on_loss(self, why: str) -> None:
        cfg = self.config
        events: list[ConnectionEvent] = []
        stop = False
        delay = 0.0
        with self._cond:
            refusal, self._refusal = self._refusal, None
            error: TransportError = refusal or TransportError(f"MQTT {cfg.safe_url}: {why}")
            if self._phase == _CONNECTING:  # the initial connect failed; connect() raises
                self._phase = _FAILED
                self._last_error = error
                stop = True
            elif self._phase not in (_UP, _DOWN):
                stop = True
            elif self._closing:  # lost while close() drains: no reconnect
                self._phase = _DOWN
                stop = True
            else:
                if self._phase == _UP:
                    log.warning("%s; reconnecting", clip(error))
                    self._phase = _DOWN
                    self._down_since = time.monotonic()
                    events.append(ConnectionEvent("disconnected", error=error))
                self._last_error = error
                self._attempt += 1
                if cfg.gives_up(self._attempt, time.monotonic() - self._down_since):
                    log.error("giving up reconnecting to %s after %d attempt(s)", cfg.safe_url, self._attempt - 1)
                    self._phase = _GAVE_UP
                    events.append(ConnectionEvent("gave_up", error=error, attempt=self._attempt - 1))
                    stop = True
                else:
                    delay = cfg.reconnect_delay(self._attempt, self._rng.random())
                    events.append(ConnectionEvent("reconnecting", error=error, attempt=self._attempt, delay=delay))
            self._cond.notify_all()
        client = self._client
        if client is not None:
            if stop:
                if self._on_loop_thread():  # elsewhere the thread stopping us joins the loop
                    client.loop_stop()  # from the loop thread: the loop ends instead of retrying
            else:
                # paho waits this long before its next attempt (typed int, takes any number).
                client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]
        self._emit(events)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            log.warning("dropped an MQTT message whose topic is not UTF-8")
            self._counts["unrouted"] += 1
            return
        sub_ids = getattr(message.properties, "SubscriptionIdentifier", None) if message.properties else None
        self._dispatch(topic, sub_ids, bytes(message.payload))

    def _dispatch(self, topic: str, sub_ids: Sequence[int] | None, body: bytes) -> None:
        """Hand one broker delivery to the active handles it is routed to.

        The reader calls this directly for QoS 0 messages. No lock: the table's routing
        read side is lock-free and handles are activated on this thread, in stream order.
        """
        delivery: Delivery | None = None
        for sub in self._table.candidates(topic, sub_ids if self._use_sub_ids else None):
            if sub.active:
                if delivery is None:
                    delivery = Delivery(topic, body)
                if not sub.deliver(delivery):
                    self._counts["handler_errors"] += 1
        self._counts["unrouted" if delivery is None else "delivered"] += 1

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode,
                    _properties: Properties) -> None:
        with self._cond:
            self._outbox.confirmed()
            self._counts["published"] += 1
            if reason.is_failure:
                self._counts["refused_by_broker"] += 1
            if self._closing or len(self._outbox):
                # A freed slot matters to the sender (messages queued) and to close() (draining);
                # waking the idle sender for every acknowledgement would only cost a thread switch.
                self._cond.notify_all()
        if reason.is_failure:
            log.warning("the MQTT broker refused message %d: %s", mid, clip(reason))

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: list[ReasonCode],
                      _properties: Properties | None) -> None:
        self._acknowledged(mid, [str(r) for r in reasons if r.is_failure])

    def _on_unsubscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, _reasons: list[ReasonCode],
                        _properties: Properties | None) -> None:
        self._acknowledged(mid, [])  # a barrier (or a cancel): its reason code does not matter

    def _acknowledged(self, mid: int, failures: list[str]) -> None:
        with self._cond:
            pending = self._pending.get(mid)
            if pending is not None:
                if not failures:
                    pending.sub.activate()  # in stream order: later deliveries are its own
                if pending.waited:
                    pending.failures = failures
                    self._cond.notify_all()
                    return
                del self._pending[mid]
                if failures and isinstance(pending.sub, MqttSubscription):
                    self._table.remove(pending.sub)
                    pending.sub.mark_cancelled()
        if failures:
            log.error("the MQTT broker refused a subscription (mid %d): %s", mid, clip(", ".join(failures)))

    # -- subscriptions ------------------------------------------------------------------------

    def _broker_subscribe(self, entry: FilterEntry) -> int | None:
        """Send SUBSCRIBE for ``entry`` (caller holds the lock); None if paho has no socket."""
        if self._client is None:
            return None
        sub_id = entry.sub_id if self._use_sub_ids else None
        return paho.subscribe(self._client, self.config, entry.topic_filter, entry.qos, sub_id)

    def _await_ack(self, mid: int, sub: MqttSubscription, links: int) -> None:
        def settled() -> bool:
            pending = self._pending.get(mid)
            return pending is None or pending.failures is not None or self._links != links or self._phase != _UP

        with self._cond:
            self._cond.wait_for(settled, self.config.connect_timeout)
            pending = self._pending.pop(mid, None)
            if pending is None or pending.failures is None:
                if not sub.active:
                    log.warning("no SUBACK for %s (connection lost, or none within %ss); it is restored on the "
                                "next reconnect", clip(sub.broker_filter), self.config.connect_timeout)
                return
            if pending.failures:
                self._table.remove(sub)
                sub.mark_cancelled()
                raise TransportError(f"the MQTT broker refused the subscription to {sub.broker_filter!r}: "
                                     f"{', '.join(pending.failures)}")

    def _cancel(self, sub: MqttSubscription) -> None:
        with self._cond:
            entry = self._table.remove(sub)
            client = self._client
            if entry is None or client is None or self._phase != _UP or self._closing:
                return
            try:
                _rc, mid = client.unsubscribe(entry.topic_filter)
            except Exception as exc:  # noqa: BLE001 - gone locally; a broker leftover is harmless
                log.warning("could not unsubscribe from %s: %s", clip(entry.topic_filter), clip(exc))
                return
            if sub.share_group is None or _rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None \
                    or self._on_loop_thread():
                return
            # Leaving a share group: once the broker has acknowledged, it hands the group's later
            # messages to the other members (until then it may still pick this one, and they are lost).
            marker = _Pending(_LinkMarker(), True)
            self._pending[mid] = marker
            links = self._links
            self._cond.wait_for(lambda: marker.failures is not None or self._links != links or self._phase != _UP,
                                self.config.connect_timeout)
            self._pending.pop(mid, None)

    # -- sending ------------------------------------------------------------------------------

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = Sender(f"pye2-mqtt-send-{self.config.client_id}", self._cond, self._send_mutex,
                                  self._outbox, link_up=lambda: self._phase == _UP,
                                  stopped=lambda: self._phase == _CLOSED, publish=self._paho_publish)
            self._sender.start()

    def _publish_direct(self, item: Outgoing) -> bool:
        """Hand ``item`` to paho and write it from this thread when it overtakes nothing.

        That is: connected, the FIFO empty, room in the window and no hand-off under way (the
        send mutex free: the sender is not between take and settle, no CONNACK is swapping
        links). False when the message must take the FIFO instead.

        Raises:
            TransportClosed: after ``close()``.
        """
        client = self._client
        if client is None or self._phase != _UP or not self._send_mutex.acquire(blocking=False):
            return False
        try:
            with self._cond:
                self._check_open()
                link = self._outbox.take_now() if self._phase == _UP else None
                if link is None:
                    return False
                self._counts["direct_publishes"] += 1
            outcome = self._paho_publish(item, quiet=True)
            if outcome != SENT:
                with self._cond:
                    self._outbox.settle(item, link, outcome)
                    self._cond.notify_all()
        finally:
            self._send_mutex.release()
        if outcome == SENT:
            # After the mutex: a writer's QoS 0 on_publish may wait for paho's callback lock,
            # which the network thread holds in on_connect while it waits for the mutex.
            client.write_now()
        return True

    def _paho_publish(self, item: Outgoing, quiet: bool = False) -> str:
        """Hand one message to paho (no lock of ours held but the send mutex).

        ``quiet``: leave the packet for :meth:`DirectWriteClient.write_now` instead of waking
        the network thread.
        """
        client = self._client
        if client is None:
            return NO_CONNECTION
        try:
            if quiet:
                rc = client.publish_quietly(item.topic, item.body, item.qos).rc
            else:
                rc = client.publish(item.topic, item.body, qos=item.qos).rc
        except Exception:
            log.exception("paho refused a message for %s; dropped", clip(item.topic))
            rc = MQTTErrorCode.MQTT_ERR_UNKNOWN
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return SENT
        if rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            return NO_CONNECTION
        with self._cond:
            self._counts["send_errors"] += 1
        log.error("message for %s dropped: %s", clip(item.topic), mqtt.error_string(rc))
        return FAILED

    def _emit(self, events: list[ConnectionEvent]) -> None:
        if not events:
            return
        with self._cond:
            listeners = list(self._listeners)
        for event in events:
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("connection listener %r raised on %s", listener, event.state)
