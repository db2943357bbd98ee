"""SimulatedNetwork: a hub (or a real broker), a clock, simulated nodes and a FaultPlan.

Features:

* ``nodes``: a count (ids ``sim-node-1`` ...) or a list of ids; each node gets
  a key derived from ``seed`` and its id, so the same seed gives the same
  addresses and (with the virtual clock) the same message sequence;
* ``broker=None``: an in-memory :class:`~pye2_transport_memory.hub.Hub`
  with the :class:`~pye2_transport_memory.clock.VirtualClock` (``realtime``
  selects the wall clock); a URL (``mqtt://...``, ``amqp://...``,
  ``memory://name``) gives every node its own transport from the plugin
  host, on the wall clock: the same nodes then serve real SDK clients;
* ``faults``: the :class:`~pye2_transport_memory.faults.FaultPlan`, installed
  as the hub's interceptor (or applied before publishing on a broker) and
  wrapped around every node and client transport (partitions, silences);
* ``transport()`` for clients, ``session()`` for a ``pye2.Session``;
* ``advance(s)`` / ``run_until(predicate, timeout)`` drive time.

Scale (virtual time, in-memory hub): one subscription to ``{root}/ctrl``
feeds every node's network monitor
(:class:`~pye2_transport_memory.node._sharedmon.SharedMonitor`), and the
network's :class:`~pye2_transport_memory.node.netmon.ReceiveCache` parses and
verifies each body once, taking what its own nodes just signed as certain;
100 nodes run a simulated hour in seconds (``bench/simnet_hour.py``).

Threading: with the wall clock, timers run on the clock's thread and
deliveries on transport threads; every node entry point takes the network's
one re-entrant lock, and node and client activity notifies the clock's
condition so ``run_until`` wakes without polling.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from pye2.domain.profiles import AIXP, WireProfile, get_profile
from pye2.errors import ConfigError
from pye2.ports.transport import Delivery, Handler, Transport
from pye2_transport_memory._faulty import FaultyTransport
from pye2_transport_memory.clock import VirtualClock
from pye2_transport_memory.faults import CLIENT, FaultPlan
from pye2_transport_memory.hub import Hub
from pye2_transport_memory.node._allow import AllowList
from pye2_transport_memory.node._sharedmon import SharedMonitor
from pye2_transport_memory.node.netmon import ReceiveCache, body_of
from pye2_transport_memory.node.node import SimulatedNode
from pye2_transport_memory.node.plugin_base import DataSourceRegistry, PluginRegistry, SimDataSource, SimPlugin
from pye2_transport_memory.transport import MemoryTransport

__all__ = ["SimulatedNetwork", "node_ids"]

log = logging.getLogger(__name__)

Supervisor = bool | str | Iterable[str] | None

#: sessions a network remembers as its own at most (each a ~44-character address body)
_MAX_CLIENTS = 10_000


def node_ids(nodes: int | Sequence[str]) -> list[str]:
    """The ids of a network: ``sim-node-1`` ... for a count, else the given ids (unique)."""
    if isinstance(nodes, bool):
        raise ConfigError("nodes must be a count or a list of ids")
    if isinstance(nodes, int):
        if nodes < 0:
            raise ConfigError(f"nodes must be >= 0, not {nodes}")
        return [f"sim-node-{i}" for i in range(1, nodes + 1)]
    if isinstance(nodes, str):
        raise ConfigError("nodes must be a count or a list of ids, not a string")
    ids = [str(n) for n in nodes]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"node ids must be unique: {ids}")
    return ids


def _supervisors(ids: list[str], supervisor: Supervisor) -> set[str]:
    if supervisor is None or supervisor is False:
        return set()
    if supervisor is True:
        return set(ids)
    if supervisor == "first":
        return set(ids[:1])
    if isinstance(supervisor, str):
        chosen = {supervisor}
    else:
        chosen = {str(s) for s in supervisor}
    unknown = chosen - set(ids)
    if unknown:
        raise ConfigError(f"unknown supervisor node(s): {sorted(unknown)}")
    return chosen


class _NotifyingTransport(FaultyTransport):
    """A client transport whose deliveries wake ``run_until`` on the wall clock."""

    def __init__(self, inner: Transport, plan: FaultPlan, party: str, wake: Callable[[], None],
                 apply_message_faults: bool) -> None:
        super().__init__(inner, plan, party, apply_message_faults=apply_message_faults)
        self._wake_up = wake

    def subscribe(self, address: str, handler: Handler) -> Any:
        return super().subscribe(address, self._waking(handler))

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> Any:
        return super().subscribe_shared(address, group, self._waking(handler))

    def _waking(self, handler: Handler) -> Handler:
        wake = self._wake_up

        def deliver(delivery: Delivery) -> None:
            try:
                handler(delivery)
            finally:
                wake()

        return deliver


class SimulatedNetwork:
    """A simulated network of Execution Engine nodes (see the module docstring).

    Args:
        nodes: a count or a list of node ids.
        seed: seeds keys, machine figures, message ids and faults.
        profile: ``AIXP`` (default) or ``RATIO1`` (or their names).
        broker: None (in-memory hub) or a broker URL.
        realtime: wall clock instead of virtual time (implied by ``broker``).
        heartbeat_interval / heartbeat_version: of every node.
        plugins / sources: extra plugin and data source classes (added to the catalog).
        secured: nodes drop commands whose signature does not verify.
        allow_list: who may command the nodes (besides themselves). None: the
            network's own nodes and the sessions it created (:meth:`session`,
            or any client of :meth:`transport`), and nothing else; a list of addresses (every
            node) or a mapping node id -> list: exactly those. A command from
            anyone else is dropped without a notification, as a real node does,
            and logged naming the sender.
        allow_any: accept commands from every validly signed sender (an explicit
            opt-in; the nodes' heartbeats then say ``SECURED: false``).
        identities: node id -> :class:`pye2.wire.Identity`, keys to use instead
            of the ones derived from ``seed`` (``pye2 sim --state`` keeps random ones).
        eth_enabled: the nodes' signing mode (see :class:`SimulatedNode`): a
            bool for every node, or a mapping node id -> bool; default: the profile's.
        supervisor: ``"first"`` (default), True (all), False/None, an id or ids.
        host: plugin host for broker URLs (default ``pye2.plugins.default_host()``).
        shared_monitor: on the in-memory hub with virtual time, feed every node's
            network monitor from one subscription to ``{root}/ctrl`` (see
            :class:`~pye2_transport_memory.node._sharedmon.SharedMonitor`; the
            same behaviour, 100 times fewer deliveries at 100 nodes). False:
            every node subscribes itself, as on a broker.
    """

    def __init__(
        self,
        nodes: int | Sequence[str] = 3,
        *,
        seed: int = 0,
        profile: WireProfile | str = AIXP,
        broker: str | None = None,
        realtime: bool = False,
        heartbeat_interval: float = 10.0,
        heartbeat_version: str = "v2",
        plugins: Iterable[type[SimPlugin]] = (),
        sources: Iterable[type[SimDataSource]] = (),
        secured: bool = True,
        allow_list: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        allow_any: bool = False,
        identities: Mapping[str, Any] | None = None,
        eth_enabled: bool | Mapping[str, bool] | None = None,
        supervisor: Supervisor = "first",
        host: Any = None,
        shared_monitor: bool = True,
    ) -> None:
        self.profile = get_profile(profile)
        self.seed = seed
        self.broker = broker
        self.realtime = bool(realtime or broker is not None)
        self.node_ids = node_ids(nodes)
        self.lock = threading.RLock()
        self.clock: Any = self._make_clock()
        self.faults = FaultPlan(seed, profile=self.profile)
        self._host = host
        self.hub: Hub | None = None
        if broker is None:
            self.hub = Hub(self.clock, name=f"sim-{seed}")
            self.hub.interceptor = self.faults.intercept
        self.plugins = PluginRegistry(_catalog("default_plugins") + list(plugins))
        self.sources = DataSourceRegistry(_catalog("default_sources") + list(sources))
        self.receive_cache = ReceiveCache(self.profile)
        # On the hub with virtual time every node hears the same heartbeats at the same moments:
        # one subscription feeds them all (100 nodes: 100x fewer deliveries on the control topic).
        self.shared_monitor: SharedMonitor | None = None
        if shared_monitor and self.hub is not None and not self.realtime:
            self.shared_monitor = SharedMonitor(self.hub, self.profile.ctrl, self.receive_cache, self.faults,
                                                self.clock)
        supervisors = _supervisors(self.node_ids, supervisor)
        #: address bodies of the sessions this network created (allowed by nodes with no explicit list)
        self.clients: set[str] = set()
        unknown = set(identities or {}) - set(self.node_ids)
        if unknown:
            raise ConfigError(f"identities for unknown node(s): {sorted(unknown)}")
        self.nodes: dict[str, SimulatedNode] = {}
        for node_id in self.node_ids:
            self.nodes[node_id] = SimulatedNode(
                node_id, transport=self._wrap(self._raw_transport(node_id), node_id), clock=self.clock,
                profile=self.profile, seed=seed, heartbeat_interval=heartbeat_interval,
                heartbeat_version=heartbeat_version, secured=secured,
                allow_list=self._allow_for(allow_list, node_id, allow_any),
                identity=(identities or {}).get(node_id), eth_enabled=_per_node(eth_enabled, node_id),
                plugins=self.plugins, sources=self.sources, supervisor=node_id in supervisors, lock=self.lock,
                receive_cache=self.receive_cache, on_activity=self._wake if self.realtime else None,
                shared_monitor=self.shared_monitor)
        for node in self.nodes.values():  # the network's nodes command each other (the tutorial's workers)
            self.clients.add(body_of(node.address))  # type: ignore[arg-type]
        self.faults.bind(clock=self.clock, nodes=self.nodes, profile=self.profile)
        self._clients: list[Transport] = []
        self._running = False

    def __repr__(self) -> str:
        where = self.broker or "memory"
        return f"<SimulatedNetwork {len(self.nodes)} nodes on {where} ({self.profile.name}, seed={self.seed})>"

    # -- construction helpers -----------------------------------------------------------
    def _make_clock(self) -> Any:
        if not self.realtime:
            return VirtualClock()
        from pye2.adapters.system_clock import SystemClock

        return SystemClock()

    def _plugin_host(self) -> Any:
        if self._host is None:
            from pye2.plugins import default_host

            self._host = default_host()
        return self._host

    def _raw_transport(self, name: str) -> Transport:
        if self.hub is not None:
            return MemoryTransport(self.hub, name=name)
        assert self.broker is not None
        transport: Transport = self._plugin_host().make_transport(self.broker)
        return transport

    def _wrap(self, transport: Transport, party: str) -> FaultyTransport:
        apply = self.hub is None
        if self.realtime:
            return _NotifyingTransport(transport, self.faults, party, self._wake, apply)
        return self.faults.wrap(transport, party, apply_message_faults=apply)

    def _wake(self) -> None:
        notify = getattr(self.clock, "notify_all", None)
        if notify is not None:
            notify()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SimulatedNetwork:
        """Start every node (connect, subscribe, first heartbeat)."""
        with self.lock:
            for node in self.nodes.values():
                node.start()
            self.faults.refresh_parties()
            self._running = True
        self._wake()
        return self

    def stop(self) -> None:
        """Stop every node gracefully, cancel scheduled faults, close transports (idempotent)."""
        with self.lock:
            for node in self.nodes.values():
                node.stop()
            self.faults.cancel_timers()
            self._running = False
        for transport in [n.transport for n in self.nodes.values()] + self._clients:
            try:
                transport.close()
            except Exception:  # closing is best effort; a broken broker must not hide the rest
                log.exception("closing %r failed", transport)
        self._clients.clear()
        close = getattr(self.clock, "close", None)
        if self.realtime and close is not None:
            close()

    def __enter__(self) -> SimulatedNetwork:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- driving time -----------------------------------------------------------------------------
    def advance(self, seconds: float) -> int:
        """Move virtual time forward, running every timer and delivery on the way."""
        if self.realtime:
            raise ConfigError("advance() needs virtual time; on the wall clock use run_until()")
        ran: int = self.clock.advance(seconds)
        return ran

    def run_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Run (virtual) or wait (wall clock) until ``predicate()`` holds or ``timeout`` passes."""
        if self.realtime:
            return bool(self.clock.wait_until(predicate, timeout))
        return bool(self.clock.run_until(predicate, timeout))

    # -- clients -------------------------------------------------------------------------------------
    def transport(self) -> Transport:
        """A new, unconnected client transport on this network (seen by faults as ``"client"``).

        It is one of the network's own: the nodes (unless given an explicit
        allow-list) accept the commands its sessions send.
        """
        wrapped = self._wrap(self._raw_transport(CLIENT), CLIENT)
        wrapped.on_publish = self._note_client
        self._clients.append(wrapped)
        return wrapped

    def session(self, **kwargs: Any) -> Any:
        """A ``pye2.Session`` wired to this network, its clock and its profile (the nodes allow it).

        Without ``identity=`` it gets a fresh key (the user's own key file is
        left alone).
        """
        from pye2 import Session
        from pye2.wire import Identity

        identity = kwargs.pop("identity", None) or Identity.generate()
        self.allow_client(identity.address(self.profile))
        return Session(transport=self.transport(), clock=self.clock, profile=self.profile, identity=identity,
                       **kwargs)

    # -- allow-lists ----------------------------------------------------------------------------------
    def allow_client(self, address: str) -> None:
        """Count ``address`` among the network's own sessions (allowed by nodes without an explicit list)."""
        body = body_of(address)
        if body is None:
            raise ConfigError(f"not a node address: {address!r}")
        self.clients.add(body)

    def _note_client(self, address: str, body: bytes) -> None:
        """A client transport of this network publishes: a command's sender is one of its sessions."""
        if address.endswith("/config") and len(self.clients) < _MAX_CLIENTS:
            try:
                sender = json.loads(body).get("EE_SENDER")
            except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
                return
            if body_of(sender) is not None:
                self.clients.add(body_of(sender))  # type: ignore[arg-type]

    def set_allow_list(self, addresses: Iterable[str], node: str | None = None) -> None:
        """Allow exactly ``addresses`` (plus the network's sessions, for nodes that track them), every node or one.

        Raises:
            ConfigError: an entry that is not an address, or an unknown node.
        """
        addresses = list(addresses)
        targets = [self.node(node)] if node is not None else list(self.nodes.values())
        with self.lock:
            for target in targets:
                target.allow.replace(addresses)

    def _allow_for(self, allow_list: Sequence[str] | Mapping[str, Sequence[str]] | None, node_id: str,
                   allow_any: bool) -> AllowList:
        if allow_any:
            return AllowList(allow_any=True)
        if isinstance(allow_list, str):
            raise ConfigError("allow_list must be a list of addresses, not a string")
        if isinstance(allow_list, Mapping):
            chosen = allow_list.get(node_id)
            return AllowList(clients=self.clients) if chosen is None else AllowList(list(chosen))
        if allow_list is None:
            return AllowList(clients=self.clients)
        return AllowList(list(allow_list))

    # -- inspection -----------------------------------------------------------------------------------
    def node(self, name: str) -> SimulatedNode:
        """A node by id, alias or address."""
        party = self.faults.party_of(name)
        if party in self.nodes:
            return self.nodes[party]
        raise ConfigError(f"unknown node {name!r}; known: {', '.join(self.nodes)}")

    @property
    def addresses(self) -> dict[str, str]:
        """Node id -> address."""
        return {node_id: node.address for node_id, node in self.nodes.items()}


def _per_node(value: bool | Mapping[str, bool] | None, node_id: str) -> bool | None:
    if isinstance(value, Mapping):
        chosen = value.get(node_id)
        return None if chosen is None else bool(chosen)
    return value


def _catalog(name: str) -> list[Any]:
    try:
        from pye2_transport_memory.node.plugins import catalog
    except ImportError as exc:  # the catalog is optional: a bare network still runs the admin pipeline
        log.warning("simulated network: plugin catalog unavailable (%s)", exc)
        return []
    found: list[Any] = getattr(catalog, name)()
    return found

