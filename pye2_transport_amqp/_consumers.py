"""Subscriptions of the AMQP transport: the user's handle and the I/O thread's consumers.

Each subscription gets its own exclusive, auto-delete queue with one binding, so each
subscription receives each matching message exactly once, even when filters overlap.
A shared subscription consumes from its share group's queue instead (see
:func:`~pye2_transport_amqp.topology.shared_queue_name`), with a consumer tag of its own.
Consumers use automatic acknowledgement (the queues die with the connection, so manual
acks would add a round trip and no safety); the handler is called on the I/O thread and
its exceptions are logged with traceback and counted, never propagated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from pye2.domain.logtext import clip
from pye2.ports.transport import Delivery

from ._outbox import Waiter
from .topology import BindingDeclaration, address_from, plan_subscription, queue_name

if TYPE_CHECKING:
    from ._link import Link
    from ._publisher import Publisher

__all__ = ["AmqpSubscription", "Consumers"]

_log = logging.getLogger("pye2_transport_amqp.transport")


def _noop(*_args: Any) -> None:
    """Reply callback for declarations: success needs no action (a failure closes the channel)."""


class AmqpSubscription:
    """Handle returned by :meth:`AmqpTransport.subscribe`; ``cancel()`` is idempotent."""

    def __init__(self, link: Link, sub_id: int, address: str, binding: BindingDeclaration,
                 handler: Callable[[Delivery], None], shared_queue: str | None = None) -> None:
        self._link = link
        self.sub_id = sub_id
        self._address = address
        self.binding = binding
        #: a share group's queue (competing consumers), or None for a queue of its own
        self.shared_queue = shared_queue
        self.consumer_tag = ""
        self.handler = handler
        self.cancelled = False
        self.waiter: Waiter | None = None  # set while a subscribe() call waits for consume-ok
        self.generation = -1  # I/O thread only: connection generation it is set up on
        self.queue = ""

    @property
    def address(self) -> str:
        """The subscribed filter."""
        return self._address

    def cancel(self) -> None:
        """Stop delivering to the handler (at once, locally) and delete the queue on the broker."""
        self._link.cancel(self)

    def __repr__(self) -> str:
        return f"<AmqpSubscription {self._address!r}{' cancelled' if self.cancelled else ''}>"


class Consumers:
    """I/O-thread side of subscriptions: declare, consume, deliver, tear down."""

    def __init__(self, link: Link, publisher: Publisher) -> None:
        self._link = link
        self._publisher = publisher

    def setup(self, sub: AmqpSubscription) -> None:
        """Declare exchange, queue and binding of ``sub`` and start its consumer (once per generation)."""
        link = self._link
        channel, gen = link.channel, link.generation
        if channel is None or not channel.is_open or sub.cancelled or sub.generation == gen:
            return
        sub.generation = gen
        own = queue_name(link.config.queue_prefix, link.token, gen, sub.sub_id)
        sub.queue = sub.shared_queue or own
        sub.consumer_tag = own  # unique on the channel, also when the queue is shared
        plan = plan_subscription(sub.address, sub.queue, durable_exchange=link.config.exchange_durable,
                                 shared=sub.shared_queue is not None)
        self._publisher.declare_exchange(plan.exchange.name)
        # pika sends these one after the other, each after the previous reply.
        channel.queue_declare(plan.queue.name, durable=plan.queue.durable, exclusive=plan.queue.exclusive,
                              auto_delete=plan.queue.auto_delete, callback=_noop)
        channel.queue_bind(plan.binding.queue, plan.binding.exchange, routing_key=plan.binding.binding_key,
                           callback=_noop)
        channel.basic_consume(plan.queue.name, link.guard(partial(self._deliver, sub)), auto_ack=True,
                              consumer_tag=sub.consumer_tag, callback=link.guard(lambda _f: self._consuming(sub, gen)))

    def _consuming(self, sub: AmqpSubscription, gen: int) -> None:
        if gen == self._link.generation and sub.waiter is not None:
            sub.waiter.resolve(None)

    def teardown(self, sub: AmqpSubscription, waiter: Waiter | None = None) -> None:
        """Cancel the consumer of ``sub`` and delete its queue (harmless if already gone).

        A share group's queue is left to the broker: it goes with its last consumer.
        ``waiter`` is resolved by the broker's ``cancel-ok`` (at once if there is no consumer).
        """
        channel = self._link.channel
        if channel is None or not channel.is_open or sub.generation != self._link.generation:
            if waiter is not None:
                waiter.resolve(None)
            return
        done = None if waiter is None else self._link.guard(lambda _frame: waiter.resolve(None))
        channel.basic_cancel(sub.consumer_tag, callback=done)
        if sub.shared_queue is None:
            channel.queue_delete(sub.queue)

    def _deliver(self, sub: AmqpSubscription, _channel: Any, method: Any, _props: Any, body: bytes) -> None:
        if sub.cancelled:
            return
        delivery = Delivery(address_from(method.routing_key), bytes(body))
        try:
            sub.handler(delivery)
        except Exception:  # noqa: BLE001 - a handler's bug must not stop later deliveries
            self._link.count("handler_errors")
            _log.exception("AMQP handler for %s raised on a message from %s; delivery continues",
                           clip(sub.address), clip(delivery.address))
        self._link.count("delivered")
