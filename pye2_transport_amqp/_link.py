"""The I/O side of the AMQP transport: one thread, one pika ``SelectConnection`` at a time.

:class:`Link` holds the state both sides share (guarded by ``lock``; ``cond`` signals
state changes and room in the outbox) and the connection's pika callbacks; publishing is
delegated to :class:`~._publisher.Publisher`, subscriptions to :class:`~._consumers.Consumers`.
Methods whose name starts with ``io_`` or ``_`` run on the I/O thread only (so do
``channel`` and ``generation``); the facade reaches them through
:meth:`Link.submit_locked` (``IOLoop.add_callback_threadsafe``, the one pika call that is
safe from another thread). Each (re)connection gets a new *generation*; callbacks of an
older generation are ignored, so a late frame of a dead connection cannot touch the new one.

Connection sequence: connection -> channel -> confirm mode (if ``confirms``) -> replay
every subscription (exchange, queue, binding, consumer) -> a ``basic.qos`` round trip
as a barrier -> state ``connected`` -> flush the outbox. Channel methods that wait for a
reply are serialised by pika in call order, so the barrier's reply proves all earlier
declarations succeeded.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import pika
from pika import exceptions as pex
from pika.adapters.select_connection import IOLoop

from pye2.domain.logtext import clip
from pye2.errors import TransportClosed, TransportError
from pye2.ports.transport import ConnectionEvent, ConnectionListener

from ._backoff import Backoff
from ._consumers import AmqpSubscription, Consumers
from ._outbox import Outbox, Waiter
from ._publisher import Publisher
from ._translate import translate

if TYPE_CHECKING:
    from .config import AmqpConfig

__all__ = ["CLOSED", "CONNECTED", "CONNECTING", "GAVE_UP", "NEW", "RECONNECTING", "Link"]

_log = logging.getLogger("pye2_transport_amqp.transport")

NEW, CONNECTING, CONNECTED, RECONNECTING, GAVE_UP, CLOSED = (
    "new", "connecting", "connected", "reconnecting", "gave_up", "closed")
_LOOP_RESTARTS = 3
_NAMED_EXCHANGE = re.compile(r"exchange '([^']*)'")  # how RabbitMQ names the exchange it refused


class Link:
    """Shared state plus the I/O thread's pika logic (see module docstring)."""

    def __init__(self, config: AmqpConfig, token: str, backoff: Backoff) -> None:
        self.config = config
        self.token = token
        self.backoff = backoff
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.state = NEW
        self.last_error: TransportError | None = None
        self.outbox = Outbox(config.offline_queue_max, config.overflow)
        self.subs: dict[int, AmqpSubscription] = {}
        self.counters: Counter[str] = Counter()
        self.listeners: list[ConnectionListener] = []
        self.loop: IOLoop | None = None
        self.thread: threading.Thread | None = None
        self.params: pika.ConnectionParameters | None = None
        self.drain_scheduled = False
        # I/O thread only
        self.channel: Any = None
        self.generation = 0  # of the current connection; older callbacks are ignored
        self._ioloop: IOLoop | None = None
        self._conn: Any = None
        self._publisher = Publisher(self, may_send=lambda: self.state == CONNECTED, on_drained=self._close_connection)
        self._consumers = Consumers(self, self._publisher)
        self._attempt = 0
        self._timer: Any = None
        self._finished = False

    # -- caller side (hold ``lock``) -------------------------------------------------

    def on_io_thread(self) -> bool:
        """True when called from the I/O thread (which must never block on itself)."""
        return self.thread is not None and threading.current_thread() is self.thread

    def start_locked(self) -> None:
        """Start the I/O thread and its loop if they are not running."""
        if self.loop is not None:
            return
        loop = IOLoop()
        self.loop = loop
        self._finished = False
        self.thread = threading.Thread(target=self._run, args=(loop,), name=f"pye2-amqp-{self.token}", daemon=True)
        self.thread.start()

    def submit_locked(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the I/O thread (no-op when the loop is gone)."""
        if self.loop is not None:
            self.loop.add_callback_threadsafe(self.guard(partial(fn, *args)))

    def request_drain_locked(self) -> None:
        """Have the I/O thread publish what waits in the outbox (one wake-up per burst)."""
        if not self.drain_scheduled and self.loop is not None:
            self.drain_scheduled = True
            self.submit_locked(self._publisher.drain)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        with self.lock:
            self.counters[name] += n

    def emit(self, state: str, error: BaseException | None = None, attempt: int = 0, delay: float = 0.0) -> None:
        """Tell every connection listener (never under ``lock``; listener errors are logged)."""
        event = ConnectionEvent(state, error, attempt, delay)
        with self.lock:
            listeners = list(self.listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the I/O thread
                _log.exception("AMQP connection listener %r raised on %s", listener, clip(event))

    def cancel(self, sub: AmqpSubscription) -> None:
        """Mark ``sub`` cancelled and have the I/O thread remove its consumer and queue.

        A member of a share group waits (at most ``connect_timeout``) for the broker's
        ``cancel-ok``: from then on the group's messages go to the other members.
        """
        waiter: Waiter | None = None
        with self.lock:
            if sub.cancelled:
                return
            sub.cancelled = True
            self.subs.pop(sub.sub_id, None)
            if sub.shared_queue is not None and self.state == CONNECTED and not self.on_io_thread():
                waiter = Waiter()
            self.submit_locked(self._consumers.teardown, sub, waiter)
        if waiter is not None:
            waiter.wait(self.config.connect_timeout)

    def setup_subscription(self, sub: AmqpSubscription) -> None:
        """On the I/O thread: set ``sub`` up on the current channel (no-op if already done)."""
        self._consumers.setup(sub)

    def call_soon_io(self, fn: Callable[[], None]) -> None:
        """From the I/O thread: run ``fn`` on a later loop turn (lets reads and heartbeats in)."""
        assert self._ioloop is not None
        self._ioloop.call_later(0, self.guard(fn))

    def guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap an I/O-thread callback so an exception is logged instead of killing the loop."""
        def guarded(*args: Any) -> None:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - keep the loop alive whatever a callback did
                _log.exception("AMQP transport: internal callback failed")
        return guarded

    # -- thread and loop -------------------------------------------------------------

    def _run(self, loop: IOLoop) -> None:
        self._ioloop = loop
        try:
            for _ in range(_LOOP_RESTARTS):
                try:
                    loop.start()
                    return
                except Exception:  # noqa: BLE001 - pika calls us from its loop: an escape would kill it
                    _log.exception("AMQP I/O loop failed; restarting it")
        finally:
            with self.lock:
                if self.loop is loop:
                    self.loop = None
                    self.thread = None
            loop.close()

    def _detach_loop_locked(self) -> None:
        # From here on submit_locked() no longer reaches this loop; a later connect() starts a new one.
        loop = self.loop
        self.loop = None
        self.thread = None
        self.drain_scheduled = False
        if loop is not None:
            loop.stop()

    # -- connecting ------------------------------------------------------------------

    def io_open(self) -> None:
        """Start one connection attempt (initial or reconnect)."""
        self._timer = None
        with self.lock:
            if self.state not in (CONNECTING, RECONNECTING):
                return
        self.generation += 1
        self._conn = None
        try:
            self._conn = pika.SelectConnection(
                self.params,
                on_open_callback=self.guard(self._on_conn_open),
                on_open_error_callback=self.guard(self._on_conn_gone),
                on_close_callback=self.guard(self._on_conn_gone),
                custom_ioloop=self._ioloop,
            )
        except Exception as exc:  # noqa: BLE001 - any failure to even start an attempt is a failed attempt
            self._lost(exc)

    def _on_conn_open(self, conn: Any) -> None:
        if conn is not self._conn:
            return
        with self.lock:
            alive = self.state in (CONNECTING, RECONNECTING)
        if not alive:
            self._close_connection()
            return
        conn.add_on_connection_blocked_callback(
            self.guard(lambda *_: _log.warning("AMQP broker blocked the connection (resource alarm)")))
        conn.add_on_connection_unblocked_callback(
            self.guard(lambda *_: _log.info("AMQP broker unblocked the connection")))
        gen = self.generation
        conn.channel(on_open_callback=self.guard(lambda ch: self._on_channel_open(ch, gen)))

    def _on_channel_open(self, channel: Any, gen: int) -> None:
        if gen != self.generation or self._conn is None:
            return
        self.channel = channel
        channel.add_on_close_callback(self.guard(lambda ch, reason: self._on_channel_closed(ch, reason, gen)))
        self._publisher.attach(channel, gen)
        if self.config.confirms:
            channel.confirm_delivery(self.guard(self._publisher.on_confirm),
                                     callback=self.guard(lambda _f: self._replay(gen)))
        else:
            self._replay(gen)

    def _replay(self, gen: int) -> None:
        if gen != self.generation or self.channel is None:
            return
        with self.lock:
            subs = list(self.subs.values())
        for sub in subs:
            self._consumers.setup(sub)
        self.channel.basic_qos(prefetch_count=0, callback=self.guard(lambda _f: self._on_ready(gen)))

    def _on_ready(self, gen: int) -> None:
        if gen != self.generation:
            return
        with self.lock:
            if self.state not in (CONNECTING, RECONNECTING):
                return
            reconnected = self.state == RECONNECTING
            self.state = CONNECTED
            self.last_error = None
            self.cond.notify_all()
        self._attempt = 0
        if reconnected:
            self.count("reconnects")
        _log.info("AMQP connected to %s%s", self.config.safe_url, " (reconnected)" if reconnected else "")
        self.emit("connected")
        self._publisher.drain()

    # -- losing the connection -------------------------------------------------------

    def _on_conn_gone(self, conn: Any, reason: BaseException | None) -> None:
        if conn is self._conn:
            self._lost(reason)

    def _lost(self, reason: BaseException | None) -> None:
        self._conn = None
        self.channel = None
        unconfirmed = self._publisher.detach()
        with self.lock:
            state = self.state
            if unconfirmed:
                # Never confirmed: send again after reconnecting (at-least-once, may duplicate).
                self.outbox.push_front(unconfirmed)
                self.counters["requeued"] += len(unconfirmed)
        if state == CLOSED:
            self._finish_close()
            return
        if state not in (CONNECTING, CONNECTED, RECONNECTING):
            return  # an abandoned attempt (NEW) or a transport that gave up
        error = translate(reason, f"connection to {self.config.safe_url}", connecting=state == CONNECTING)
        with self.lock:
            self.last_error = error
            if state == CONNECTING:  # the first connect() failed: it raises, nothing retries
                self.state = NEW
                self.cond.notify_all()
                self._detach_loop_locked()
                return
            if state == CONNECTED:
                self.state = RECONNECTING
                self.counters["disconnects"] += 1
                self.cond.notify_all()
        if state == CONNECTED:
            _log.warning("AMQP connection lost: %s", clip(error))
            self.emit("disconnected", error)
        self._schedule_reconnect(error)

    def _schedule_reconnect(self, error: TransportError) -> None:
        self._attempt += 1
        if not self.config.reconnects or self.backoff.exhausted(self._attempt):
            self._give_up(error)
            return
        delay = self.backoff.delay(self._attempt)
        assert self._ioloop is not None
        self._timer = self._ioloop.call_later(delay, self.guard(self.io_open))
        self.emit("reconnecting", error, self._attempt, delay)

    def _give_up(self, error: TransportError) -> None:
        with self.lock:
            self.state = GAVE_UP
            dropped = self.outbox.clear()
            waiting = [s.waiter for s in self.subs.values() if s.waiter is not None]
            self.counters["dropped"] += len(dropped)
            self.cond.notify_all()
        for item in dropped:
            item.settle(TransportError(f"AMQP gave up reconnecting; message to {item.address!r} not sent"))
        for waiter in waiting:
            waiter.resolve(TransportError("AMQP gave up reconnecting"))
        _log.error("AMQP gave up reconnecting to %s after %d attempts (%d unsent messages dropped): %s",
                   self.config.safe_url, self._attempt - 1, len(dropped), clip(error))
        self.emit("gave_up", error, self._attempt - 1)

    def io_force_drop(self) -> None:
        """Close the connection as if it were lost (the reconnect path runs)."""
        if self._conn is not None and self._conn.is_open:
            self._conn.close(320, "pye2 force_reconnect")

    def io_abandon(self) -> None:
        """The caller's connect() timed out: drop the attempt and stop the loop."""
        self._close_connection()
        with self.lock:
            if self.state == NEW:
                self._detach_loop_locked()

    def _close_connection(self) -> None:
        conn = self._conn
        if conn is None or conn.is_closing or conn.is_closed:
            if self.state == CLOSED and conn is None:
                self._finish_close()
            return
        try:
            conn.close()
        except pex.AMQPError as exc:
            _log.debug("AMQP close: %s", clip(repr(exc)))
            self._on_conn_gone(conn, exc)

    def _on_channel_closed(self, channel: Any, reason: BaseException, gen: int) -> None:
        if gen != self.generation or channel is not self.channel:
            return
        self.channel = None
        if not isinstance(reason, pex.ChannelClosedByBroker):
            return  # the connection is going away; its own callback handles that
        text = f"AMQP broker closed the channel: ({reason.reply_code}) {reason.reply_text}"
        _log.error("%s; reconnecting", clip(text))
        self._fail_pending(text, gen)
        self._close_connection()

    def _fail_pending(self, text: str, gen: int) -> None:
        # What was waiting on the broker when it refused: fresh subscribes (their caller
        # raises) and messages for the exchange whose declaration was refused (else they
        # would block the outbox forever; RabbitMQ names it in the reply, otherwise every
        # declaration then in flight is suspect). Replayed subscriptions are retried.
        with self.lock:
            failed_subs = [s for s in self.subs.values() if s.generation == gen and s.waiter is not None
                           and not s.waiter.done]
            for sub in failed_subs:
                sub.cancelled = True
                del self.subs[sub.sub_id]
            waiting = self.outbox.clear()
            named = _NAMED_EXCHANGE.search(text)
            refused = {named.group(1)} & self._publisher.declaring if named else set(self._publisher.declaring)
            stuck = [i for i in waiting if i.route.exchange in refused]
            self.outbox.push_front(i for i in waiting if i.route.exchange not in refused)
        for sub in failed_subs:
            assert sub.waiter is not None
            sub.waiter.resolve(TransportError(f"{text} (subscribing to {sub.address!r})"))
        for item in stuck:
            item.settle(TransportError(f"{text} (message to {item.address!r} dropped)"))
        if stuck:
            self.count("dropped", len(stuck))
            _log.error("AMQP dropped %d messages for exchanges the broker refused: %s", len(stuck), clip(text))

    # -- closing ---------------------------------------------------------------------

    def io_close(self, previous_state: str) -> None:
        """Runs after ``close()``: flush what was handed over (bounded), then close and stop."""
        if self._timer is not None and self._ioloop is not None:
            self._ioloop.remove_timeout(self._timer)
            self._timer = None
        channel = self.channel
        if previous_state == CONNECTED and channel is not None and channel.is_open:
            self._publisher.close_draining = True
            assert self._ioloop is not None
            self._timer = self._ioloop.call_later(self.config.publish_timeout, self.guard(self._close_connection))
            self._publisher.drain()
        elif self._conn is not None:
            self._close_connection()
        else:
            self._finish_close()

    def _finish_close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._publisher.close_draining = False
        if self._timer is not None and self._ioloop is not None:
            self._ioloop.remove_timeout(self._timer)
            self._timer = None
        leftovers = self._publisher.detach()
        with self.lock:
            leftovers += self.outbox.clear()
            waiting = [s.waiter for s in self.subs.values() if s.waiter is not None]
            self.counters["dropped"] += len(leftovers)
            self._detach_loop_locked()
        for item in leftovers:
            item.settle(TransportClosed(f"transport closed before the message to {item.address!r} was confirmed"))
        for waiter in waiting:
            waiter.resolve(TransportClosed("transport closed"))
        if leftovers:
            _log.warning("AMQP closed with %d messages not sent or not confirmed; they are dropped", len(leftovers))
        self.emit("closed")
