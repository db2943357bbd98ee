"""The I/O thread's publishing half: exchanges, outbox -> channel, publisher confirms.

Runs on the I/O thread only (see :mod:`pye2_transport_amqp._link`). Per channel it
remembers which root exchanges are declared, which declarations are in flight and which
published messages the broker has not confirmed yet (by delivery tag, in tag order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pika import exceptions as pex
from pika import spec

from pye2.domain.logtext import clip
from pye2.errors import TransportError

from ._outbox import Outgoing

if TYPE_CHECKING:
    from ._link import Link

__all__ = ["Publisher"]

_log = logging.getLogger("pye2_transport_amqp.transport")
_DRAIN_BATCH = 256  # publishes per loop turn, so reads and heartbeats are not starved


class Publisher:
    """Moves messages from the link's outbox onto the current channel and settles confirms."""

    def __init__(self, link: Link, *, may_send: Callable[[], bool], on_drained: Callable[[], None]) -> None:
        self._link = link
        self._may_send = may_send  # read under the link's lock: is the link connected?
        self._on_drained = on_drained  # called once the close-time flush is complete
        self.channel: Any = None
        self.generation = -1
        self.declared: set[str] = set()
        self.declaring: set[str] = set()
        self.inflight: dict[int, Outgoing] = {}
        self._next_tag = 1
        self.close_draining = False

    def attach(self, channel: Any, generation: int) -> None:
        """Start over on a new channel: nothing declared, delivery tags from 1."""
        self.channel = channel
        self.generation = generation
        self.declared.clear()
        self.declaring.clear()
        self.inflight.clear()
        self._next_tag = 1

    def detach(self) -> list[Outgoing]:
        """The channel is gone: return the messages it never confirmed, in order."""
        self.channel = None
        unconfirmed = list(self.inflight.values())
        self.inflight.clear()
        return unconfirmed

    def declare_exchange(self, name: str) -> None:
        """Declare the root's topic exchange once per channel; the reply resumes the drain."""
        if name in self.declared or name in self.declaring or self.channel is None:
            return
        self.declaring.add(name)
        gen = self.generation

        def declared(_frame: Any) -> None:
            if gen != self.generation:
                return
            self.declaring.discard(name)
            self.declared.add(name)
            self.drain()

        self.channel.exchange_declare(name, exchange_type="topic", durable=self._link.config.exchange_durable,
                                      callback=self._link.guard(declared))

    def drain(self) -> None:
        """Publish waiting messages, in order, up to one batch per loop turn."""
        link = self._link
        with link.lock:
            link.drain_scheduled = False
            allowed = self._may_send() or self.close_draining
        channel = self.channel
        if not allowed or channel is None or not channel.is_open:
            return
        for _ in range(_DRAIN_BATCH):
            with link.lock:
                item = link.outbox.peek()
                if item is None:
                    break
                ready = item.route.exchange in self.declared
                if ready:
                    link.outbox.popleft()
                    link.cond.notify_all()  # room for a publisher waiting on a full hand-off queue
            if not ready:
                # Hold the queue (order!) until the root's exchange exists: publishing to a
                # missing exchange would make the broker close the channel.
                self.declare_exchange(item.route.exchange)
                return
            try:
                channel.basic_publish(item.route.exchange, item.route.routing_key, item.body)
            except pex.AMQPError as exc:
                with link.lock:
                    link.outbox.push_front([item])
                _log.debug("AMQP publish deferred, channel going away: %r", exc)
                return
            link.count("published")
            if link.config.confirms:
                self.inflight[self._next_tag] = item
                self._next_tag += 1
            else:
                item.settle(None)
        else:
            link.call_soon_io(self.drain)
            return
        self.maybe_finish_drain()

    def on_confirm(self, frame: Any) -> None:
        """Basic.Ack / Basic.Nack from the broker, possibly for every tag up to this one."""
        method = frame.method
        acked = isinstance(method, spec.Basic.Ack)
        tag = method.delivery_tag
        settled: list[Outgoing] = []
        if method.multiple:
            while self.inflight:
                first = next(iter(self.inflight))  # dict order is tag order
                if first > tag:
                    break
                settled.append(self.inflight.pop(first))
        elif tag in self.inflight:
            settled.append(self.inflight.pop(tag))
        self._link.count("confirmed" if acked else "nacked", len(settled))  # before waking readers of stats
        for item in settled:
            if acked:
                item.settle(None)
            else:
                item.settle(TransportError(f"AMQP broker refused (nack) the message to {item.address!r}"))
                if item.waiter is None:
                    _log.error("AMQP broker refused (nack) a message to %s", clip(item.address))
        self.maybe_finish_drain()

    def maybe_finish_drain(self) -> None:
        """During close: once everything handed over is published and confirmed, go on closing."""
        if not self.close_draining or self.inflight or self.declaring:
            return
        with self._link.lock:
            empty = len(self._link.outbox) == 0
        if empty:
            self.close_draining = False
            self._on_drained()
