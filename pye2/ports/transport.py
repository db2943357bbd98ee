"""The Transport port: how pye2 moves bytes between addresses.

An *address* is a logical channel name in MQTT topic form, built by the wire
profile (``lummetry/ctrl``, ``lummetry/<node>/config`` ...). Levels are
separated by ``/``; in a subscription ``+`` matches one level and ``#`` (last
level only) matches any number of levels, including none. Each adapter maps
addresses onto its broker (MQTT: topic; AMQP: exchange + routing key).

Contract every adapter keeps (checked by :mod:`pye2.testing`):

* ``connect()`` and ``close()`` are idempotent. ``connect()`` raises
  :class:`~pye2.errors.TransportConnectError` within its timeout.
* ``subscribe(address, handler)`` returns a :class:`Subscription`; the handler
  may be called on a transport thread and must be cheap (the Session passes
  its inbox's ``put``). An exception raised by a handler is logged and never
  stops later deliveries.
* ``publish(address, body)`` raises :class:`~pye2.errors.TransportClosed`
  after ``close()`` and :class:`~pye2.errors.MessageTooLarge` above
  ``capabilities.max_message_bytes``.
* No driver exception escapes: adapters translate them into
  :class:`~pye2.errors.TransportError` subclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BaseTransport",
    "ConnectionEvent",
    "ConnectionListener",
    "Delivery",
    "Handler",
    "Subscription",
    "SupportsConnectionEvents",
    "SupportsSharedSubscriptions",
    "Transport",
    "TransportCapabilities",
    "TransportFactory",
]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a transport hands it over: where it arrived and its bytes."""

    address: str
    body: bytes


Handler = Callable[[Delivery], None]


@dataclass(frozen=True, slots=True)
class TransportCapabilities:
    """What a transport guarantees; the conformance kit skips on these."""

    wildcards: bool = True
    max_message_bytes: int | None = None
    ordered_per_address: bool = True
    fanout: bool = True
    reconnects: bool = False


@runtime_checkable
class Subscription(Protocol):
    """Handle of one subscription."""

    @property
    def address(self) -> str:
        """The subscribed address (may contain wildcards)."""
        ...

    def cancel(self) -> None:
        """Stop delivering to this subscription's handler. Idempotent."""
        ...


@runtime_checkable
class Transport(Protocol):
    """A connection to a broker (or an in-memory hub)."""

    name: str
    capabilities: TransportCapabilities

    def connect(self) -> None:
        """Connect (idempotent); raise ``TransportConnectError`` on failure."""
        ...

    def subscribe(self, address: str, handler: Handler) -> Subscription:
        """Deliver every message published on ``address`` to ``handler``."""
        ...

    def publish(self, address: str, body: bytes) -> None:
        """Send ``body`` to ``address``."""
        ...

    def close(self) -> None:
        """Disconnect and release resources (idempotent)."""
        ...

    @property
    def is_connected(self) -> bool:
        """True while the transport believes it is connected."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A change of a transport's connection state.

    ``state`` is one of ``"connected"``, ``"disconnected"``, ``"reconnecting"``
    (``attempt`` and ``delay`` say which try and how long until it),
    ``"gave_up"`` (reconnecting stopped; the transport stays down) and
    ``"closed"``. ``error`` is the pye2 error that caused it, if any.
    """

    state: str
    error: BaseException | None = None
    attempt: int = 0
    delay: float = 0.0


ConnectionListener = Callable[[ConnectionEvent], None]


@runtime_checkable
class SupportsConnectionEvents(Protocol):
    """Optional: transports that report connection changes (MQTT, AMQP)."""

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener`` (on a transport thread; keep it cheap) on every change."""
        ...


@runtime_checkable
class SupportsSharedSubscriptions(Protocol):
    """Optional: transports on which several clients can split one address's messages (MQTT, AMQP).

    Every client that subscribes to the same ``address`` in the same ``group``
    (a name checked by :func:`pye2.domain.sharing.validate_share_group`) joins
    one broker-side group: each message published on the address goes to one
    member of the group instead of to each of them (MQTT 5 shared subscription
    ``$share/<group>/<address>``; AMQP competing consumers of one queue).
    Subscriptions made with :meth:`Transport.subscribe` still receive every
    message. Which member gets a message is the broker's choice (round robin
    on Mosquitto and RabbitMQ); a message is not re-delivered to another
    member if the one that got it dies before handling it. ``cancel()`` of a
    member's subscription returns once the broker has taken it out of the
    group (bounded by the transport's timeout): messages published afterwards
    go to the other members.
    """

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> Subscription:
        """Join ``group`` on ``address``: ``handler`` gets this client's share of its messages.

        Raises:
            ConfigError: invalid address or group name.
            TransportClosed: after ``close()``.
            TransportError: the broker refused the subscription.
        """
        ...


class TransportFactory(Protocol):
    """Builds an unconnected transport from a URL; no network activity."""

    def __call__(self, url: str, **options: Any) -> Transport: ...


class BaseTransport:
    """Optional base class: context-manager support on top of connect/close."""

    name: str = "transport"
    capabilities: TransportCapabilities = TransportCapabilities()

    def connect(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> BaseTransport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
