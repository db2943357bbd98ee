"""MemoryTransport: the Transport port on an in-process :class:`~pye2_transport_memory.hub.Hub`.

URL form: ``memory://<hub-name>`` (``memory://`` means ``memory://default``),
optionally ``?max_message_bytes=N``. Options of :meth:`MemoryTransport.from_url`:
``hubs`` (a :class:`HubRegistry` to look the name up in; without it only
``default`` is accepted, resolved in the process-wide :func:`default_registry`,
a convenience that tests should not rely on), ``create`` (default True: make
the hub if missing), ``max_message_bytes`` and ``name``. Or skip URLs:
``MemoryTransport(hub)``.

Behaviour (checked by :class:`pye2.testing.TransportTests`):

* Delivery is synchronous through the hub (see its docstring); handlers run on
  the thread that publishes, or the one draining the hub.
* ``subscribe()`` before ``connect()`` is allowed: the subscription becomes
  active when ``connect()`` runs. ``connect()`` raises ``TransportConnectError``
  while the hub refuses connections (:meth:`Hub.refuse_connections`).
* ``publish()`` before the first ``connect()`` raises ``TransportError``; after
  ``close()`` it raises ``TransportClosed``, as do ``subscribe()`` and
  ``connect()`` (closing is final). Above ``max_message_bytes`` it raises
  ``MessageTooLarge``.
* ``simulate_disconnect()`` plays a lost connection: subscriptions stop
  receiving, publishes are queued (up to ``offline_queue_limit``, then
  ``QueueFull``) and flushed in order by ``simulate_reconnect()``, which also
  restores every subscription not cancelled meanwhile. ``force_reconnect()``
  does both (the conformance kit's hook). Connection changes are reported to
  listeners added with ``add_connection_listener``.
* ``subscribe_shared(address, group, handler)``: share groups, the hub's round robin.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pye2.domain.sharing import validate_share_group
from pye2.errors import ConfigError, MessageTooLarge, QueueFull, TransportClosed, TransportConnectError, TransportError
from pye2.ports.clock import Clock
from pye2.ports.transport import (
    BaseTransport,
    ConnectionEvent,
    ConnectionListener,
    Delivery,
    Handler,
    TransportCapabilities,
)
from pye2_transport_memory.hub import Hub, HubSubscription, validate_address, validate_filter

__all__ = ["HubRegistry", "MemorySubscription", "MemoryTransport", "default_registry"]

log = logging.getLogger(__name__)

_NEW, _CONNECTED, _DISCONNECTED, _CLOSED = "new", "connected", "disconnected", "closed"


class HubRegistry:
    """Named hubs for ``memory://<name>`` URLs; pass one as ``hubs=`` to share hubs explicitly.

    Hubs are created on first use with the registry's ``clock``.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._hubs: dict[str, Hub] = {}

    def get(self, name: str, *, create: bool = True) -> Hub:
        """The hub called ``name``; ``ConfigError`` if missing and ``create`` is False."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"hub name must be a non-empty string, got {name!r}")
        with self._lock:
            hub = self._hubs.get(name)
            if hub is None:
                if not create:
                    raise ConfigError(f"no memory hub named {name!r} (known: {sorted(self._hubs)})")
                hub = self._hubs[name] = Hub(self.clock, name=name)
            return hub

    def add(self, name: str, hub: Hub) -> None:
        """Register an existing ``hub`` under ``name`` (``ConfigError`` if taken by another)."""
        with self._lock:
            if self._hubs.get(name, hub) is not hub:
                raise ConfigError(f"a different memory hub is already named {name!r}")
            self._hubs[name] = hub

    def names(self) -> list[str]:
        """Names of the registered hubs, sorted."""
        with self._lock:
            return sorted(self._hubs)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._hubs

    def remove(self, name: str) -> None:
        """Forget the hub called ``name`` (no error if unknown)."""
        with self._lock:
            self._hubs.pop(name, None)

    def clear(self) -> None:
        """Forget every hub."""
        with self._lock:
            self._hubs.clear()


_default_lock = threading.Lock()
_default: HubRegistry | None = None


def default_registry() -> HubRegistry:
    """The process-wide registry behind ``memory://default`` (a convenience only).

    Created on first use. Tests should build their own :class:`HubRegistry` (or
    :class:`Hub`) rather than share this one.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = HubRegistry()
        return _default


class MemorySubscription:
    """A transport-level subscription; survives simulated reconnects until cancelled."""

    __slots__ = ("_active", "_address", "_handler", "_hub_sub", "_transport", "group")

    def __init__(self, transport: MemoryTransport, address: str, handler: Handler, group: str | None = None) -> None:
        self._transport = transport
        self._address = address
        self._handler = handler
        self.group = group
        self._hub_sub: HubSubscription | None = None
        self._active = True

    @property
    def address(self) -> str:
        """The subscribed filter."""
        return self._address

    @property
    def active(self) -> bool:
        """False once cancelled."""
        return self._active

    def cancel(self) -> None:
        """Stop deliveries to the handler (idempotent, also after close)."""
        self._transport._cancel(self)

    def _deliver(self, delivery: Delivery) -> None:
        if self._active:  # a cancel on another thread may race the hub's snapshot
            self._handler(delivery)

    def __repr__(self) -> str:
        return f"<MemorySubscription {self._address!r}{'' if self._active else ' cancelled'}>"


class MemoryTransport(BaseTransport):
    """Transport on an in-process hub; ``force_reconnect`` and connection events included."""

    def __init__(
        self,
        hub: Hub,
        *,
        name: str = "memory",
        max_message_bytes: int | None = None,
        offline_queue_limit: int = 10_000,
    ) -> None:
        if not isinstance(hub, Hub):
            raise ConfigError(f"MemoryTransport needs a Hub, got {type(hub).__name__}")
        if max_message_bytes is not None and (not isinstance(max_message_bytes, int) or max_message_bytes < 0):
            raise ConfigError(f"max_message_bytes must be an int >= 0 or None, got {max_message_bytes!r}")
        if not isinstance(offline_queue_limit, int) or offline_queue_limit < 0:
            raise ConfigError(f"offline_queue_limit must be an int >= 0, got {offline_queue_limit!r}")
        self.hub = hub
        self.name = name
        self.capabilities = TransportCapabilities(
            wildcards=True, max_message_bytes=max_message_bytes, ordered_per_address=True, fanout=True, reconnects=True
        )
        self._offline_limit = offline_queue_limit
        self._lock = threading.RLock()
        self._state = _NEW
        self._subs: list[MemorySubscription] = []
        self._offline: deque[tuple[str, bytes]] = deque()
        self._listeners: list[ConnectionListener] = []

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryTransport:
        """Build an unconnected transport from ``memory://<hub-name>`` (see the module docstring)."""
        hubs = options.pop("hubs", None)
        create = options.pop("create", True)
        name = options.pop("name", "memory")
        limit = options.pop("max_message_bytes", None)
        if options:
            raise ConfigError(f"unknown memory transport options: {sorted(options)}")
        if hubs is not None and not isinstance(hubs, HubRegistry):
            raise ConfigError(f"hubs must be a HubRegistry, got {type(hubs).__name__}")
        if not isinstance(url, str):
            raise ConfigError(f"transport URL must be a string, got {url!r}")
        try:
            parts = urlsplit(url)
            query = dict(parse_qsl(parts.query, strict_parsing=bool(parts.query)))
        except ValueError as exc:
            raise ConfigError(f"malformed memory URL {url!r}: {exc}") from exc
        if parts.scheme != "memory" or parts.path not in ("", "/") or parts.fragment:
            raise ConfigError(f"expected memory://<hub-name>, got {url!r}")
        hub_name = parts.netloc or "default"
        if "max_message_bytes" in query:
            limit = _parse_int(query.pop("max_message_bytes"), url)
        if query:
            raise ConfigError(f"unknown parameters in {url!r}: {sorted(query)}")
        if hubs is None:
            if hub_name != "default":
                raise ConfigError(f"{url!r}: pass hubs=HubRegistry(...) to use a hub other than 'default'")
            hubs = default_registry()
        return cls(hubs.get(hub_name, create=bool(create)), name=name, max_message_bytes=limit)

    def __repr__(self) -> str:
        return f"<MemoryTransport {self.name!r} hub={self.hub.name!r} {self._state}>"

    # -- Transport port ------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True between ``connect()`` and ``close()``, except while simulating a disconnect."""
        return self._state == _CONNECTED

    def connect(self) -> None:
        """Attach to the hub (idempotent); ``TransportConnectError`` if it refuses."""
        with self._lock:
            if self._state == _CLOSED:
                raise TransportClosed("memory transport is closed; build a new one")
            if self._state != _NEW:
                return
            if not self.hub.accepting_connections:
                raise TransportConnectError(f"memory hub {self.hub.name!r} refuses connections")
            self._attach_all()
            self._state = _CONNECTED
        self._emit(ConnectionEvent("connected"))

    def subscribe(self, address: str, handler: Handler) -> MemorySubscription:
        """Deliver messages matching ``address`` (``+``/``#`` allowed) to ``handler``."""
        return self._subscribe(address, handler, None)

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> MemorySubscription:
        """Take turns with the hub's other subscriptions of ``group`` on ``address`` (round robin)."""
        return self._subscribe(address, handler, validate_share_group(group))

    def _subscribe(self, address: str, handler: Handler, group: str | None) -> MemorySubscription:
        validate_filter(address)
        if not callable(handler):
            raise ConfigError(f"handler must be callable, got {handler!r}")
        with self._lock:
            if self._state == _CLOSED:
                raise TransportClosed("cannot subscribe on a closed memory transport")
            sub = MemorySubscription(self, address, handler, group)
            self._subs.append(sub)
            if self._state == _CONNECTED:
                sub._hub_sub = self.hub.subscribe(address, sub._deliver, group=group)
        return sub

    def publish(self, address: str, body: bytes) -> None:
        """Publish ``body`` on ``address``; see the module docstring for the error cases."""
        validate_address(address)
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ConfigError(f"message body must be bytes, got {type(body).__name__}")
        body = bytes(body)
        limit = self.capabilities.max_message_bytes
        if limit is not None and len(body) > limit:
            raise MessageTooLarge(f"{len(body)} bytes is above this transport's maximum of {limit}")
        with self._lock:
            state = self._state
            if state == _CLOSED:
                raise TransportClosed("cannot publish on a closed memory transport")
            if state == _NEW:
                raise TransportError("memory transport is not connected yet: call connect() first")
            if state == _DISCONNECTED:
                if len(self._offline) >= self._offline_limit:
                    raise QueueFull(f"offline publish queue full ({self._offline_limit} messages)")
                self._offline.append((address, body))
                return
        # Outside our lock: the hub may run handlers that publish through this transport.
        self.hub.publish(address, body)

    def close(self) -> None:
        """Detach from the hub and drop queued offline publishes (idempotent)."""
        with self._lock:
            if self._state == _CLOSED:
                return
            was_open = self._state != _NEW
            self._detach_all()
            self._offline.clear()
            self._state = _CLOSED
        if was_open:
            self._emit(ConnectionEvent("closed"))

    # -- connection events and simulated outages -----------------------------------

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener`` on every connection change (on the thread causing it)."""
        with self._lock:
            self._listeners.append(listener)

    def simulate_disconnect(self) -> None:
        """Behave as if the broker connection dropped (no-op unless connected)."""
        with self._lock:
            if self._state != _CONNECTED:
                return
            self._detach_all()
            self._state = _DISCONNECTED
        self._emit(ConnectionEvent("disconnected", error=TransportError("simulated connection loss")))

    def simulate_reconnect(self) -> None:
        """End a simulated outage: restore subscriptions, then flush queued publishes in order."""
        with self._lock:
            if self._state != _DISCONNECTED:
                return
            if not self.hub.accepting_connections:
                raise TransportConnectError(f"memory hub {self.hub.name!r} refuses connections")
            self._attach_all()
            self._state = _CONNECTED
            queued = list(self._offline)
            self._offline.clear()
        self._emit(ConnectionEvent("connected"))
        for address, body in queued:
            self.hub.publish(address, body)

    def force_reconnect(self) -> None:
        """Drop and restore the connection at once (conformance-kit hook)."""
        self.simulate_disconnect()
        self.simulate_reconnect()

    # -- internals ----------------------------------------------------------------------

    def _cancel(self, sub: MemorySubscription) -> None:
        with self._lock:
            if not sub._active:
                return
            sub._active = False
            if sub in self._subs:
                self._subs.remove(sub)
            hub_sub, sub._hub_sub = sub._hub_sub, None
        if hub_sub is not None:
            hub_sub.cancel()

    def _attach_all(self) -> None:
        for sub in self._subs:
            if sub._hub_sub is None:
                sub._hub_sub = self.hub.subscribe(sub.address, sub._deliver, group=sub.group)

    def _detach_all(self) -> None:
        for sub in self._subs:
            if sub._hub_sub is not None:
                sub._hub_sub.cancel()
                sub._hub_sub = None

    def _emit(self, event: ConnectionEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("memory transport %r: connection listener failed on %s", self.name, event.state)


def _parse_int(text: str, url: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise ConfigError(f"{url!r}: max_message_bytes must be an integer, got {text!r}") from exc
    if value < 0:
        raise ConfigError(f"{url!r}: max_message_bytes must be >= 0")
    return value
