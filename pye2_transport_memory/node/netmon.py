"""The network monitor of a simulated node (node.md section 9) and ``NET_MON_01``.

* :class:`ReceiveCache` (from :mod:`~pye2_transport_memory.node._receive`)
  parses and verifies each received body once, for every node sharing it.
* :class:`NetworkMonitor`: the node listens on ``{root}/ctrl``, verifies
  peers' heartbeats (bad or unsigned ones are dropped and counted) and keeps
  per address the alias, last seen time (node clock), ``DEVICE_STATUS``,
  allow-list, ``SECURED`` and the last decoded view. It backs
  ``NodeApi.peers()``. A node records its own heartbeats directly, as a real
  node knows itself even when the broker loses its messages. On a simulated
  network the nodes' monitors are fed by one
  :class:`~pye2_transport_memory.node._sharedmon.SharedMonitor` instead of
  one subscription each; they catch up whenever they are read.
* :class:`NetMon01`: the admin pipeline's ``NET_MON_01``; only a supervisor
  node runs it, publishing ``CURRENT_NETWORK`` & co every ``PROCESS_DELAY``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from pye2_transport_memory.node._payload import time_text
from pye2_transport_memory.node._pending import SUMMARY_KEYS, PendingView
from pye2_transport_memory.node._receive import ReceiveCache, Received, body_of
from pye2_transport_memory.node.plugin_base import InputItem, SimPlugin

__all__ = [
    "ONLINE_WINDOW",
    "OPEN_TAG",
    "SUMMARY_KEYS",
    "Feed",
    "NetMon01",
    "NetworkMonitor",
    "PeerRecord",
    "ReceiveCache",
    "Received",
    "body_of",
]

log = logging.getLogger(__name__)

#: seconds since the last heartbeat within which a peer counts as online
ONLINE_WINDOW = 60.0
#: node tag a simulated node with no allow-list puts in its heartbeats (it accepts any signed sender)
OPEN_TAG = "EE_NT_ALLOW_ANY"


#: allow-lists seen last -> the address bodies they list (every peer of a network lists the same ones)
_BODIES: dict[tuple[Any, ...], frozenset[str | None]] = {}
_BODIES_KEPT = 64


def _bodies_of(whitelist: list[Any]) -> frozenset[str | None]:
    """The address bodies in an ``EE_WHITELIST`` (remembered by content for the last few lists)."""
    if set(map(type, whitelist)) != {str}:
        return frozenset(body_of(a) for a in whitelist)
    key = tuple(whitelist)
    found = _BODIES.get(key)
    if found is None:
        if len(_BODIES) >= _BODIES_KEPT:
            _BODIES.clear()
        found = _BODIES[key] = frozenset(body_of(a) for a in whitelist)
    return found


class Feed(Protocol):
    """What a shared monitor feeding a :class:`NetworkMonitor` offers it."""

    def catch_up(self, records: bool = True) -> None:
        """Apply every heartbeat the node has heard and not yet counted (and, with ``records``, recorded)."""

    def forgotten(self) -> None:
        """The monitor dropped its records."""


class PeerRecord:
    """What a node knows of one peer (or of itself).

    ``heartbeat`` is the last heartbeat's merged view; a shared monitor may
    hold it as a :class:`~pye2_transport_memory.node._pending.PendingView`
    until it is read (``summary`` reads without building it).
    """

    __slots__ = ("_heartbeat", "address", "alias", "heartbeats", "last_seen")

    def __init__(self, address: str, alias: str | None, last_seen: float,
                 heartbeat: Mapping[str, Any] | PendingView | None = None, heartbeats: int = 0) -> None:
        self.address = address
        self.alias = alias
        self.last_seen = last_seen
        self._heartbeat: Mapping[str, Any] | PendingView = {} if heartbeat is None else heartbeat
        self.heartbeats = heartbeats

    @property
    def heartbeat(self) -> Mapping[str, Any]:
        """The last heartbeat's view (``{}`` before any)."""
        hb = self._heartbeat
        if isinstance(hb, PendingView):
            hb = self._heartbeat = hb.view()
        return hb

    @heartbeat.setter
    def heartbeat(self, value: Mapping[str, Any] | PendingView) -> None:
        self._heartbeat = value

    @property
    def summary(self) -> Mapping[str, Any]:
        """The last heartbeat's :data:`SUMMARY_KEYS` fields (or its whole view), without building it."""
        hb = self._heartbeat
        return hb.summary if isinstance(hb, PendingView) else hb

    @property
    def device_status(self) -> str:
        """``DEVICE_STATUS`` of the last heartbeat (``ONLINE`` when absent)."""
        return str(self.summary.get("DEVICE_STATUS", "ONLINE")).upper()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PeerRecord):
            return NotImplemented
        return (self.address, self.alias, self.last_seen, self.heartbeat, self.heartbeats) == \
            (other.address, other.alias, other.last_seen, other.heartbeat, other.heartbeats)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as the dataclass was)

    def __repr__(self) -> str:
        return (f"PeerRecord(address={self.address!r}, alias={self.alias!r}, last_seen={self.last_seen!r}, "
                f"heartbeat={self.heartbeat!r}, heartbeats={self.heartbeats!r})")


class NetworkMonitor:
    """Peers heard on ``{root}/ctrl`` (see the module docstring).

    Args:
        own_address: the node's address (its records are marked ``is_self``).
        cache: shared or private :class:`ReceiveCache`.
        now: the node's clock.
    """

    def __init__(self, own_address: str, cache: ReceiveCache, now: Callable[[], float]) -> None:
        self.own_address = own_address
        self.own_body = body_of(own_address)
        self.cache = cache
        self._now = now
        self._records: dict[str, PeerRecord] = {}
        self._rejected = 0
        #: the shared monitor feeding this one, if any (set by it)
        self.feed: Feed | None = None

    @property
    def records(self) -> dict[str, PeerRecord]:
        """Address body -> :class:`PeerRecord`, in the order the peers were first heard."""
        if self.feed is not None:
            self.feed.catch_up()
        return self._records

    @property
    def rejected(self) -> int:
        """Heartbeats dropped because they did not verify or decode."""
        if self.feed is not None:
            self.feed.catch_up(records=False)
        return self._rejected

    @rejected.setter
    def rejected(self, value: int) -> None:
        if self.feed is not None:
            self.feed.catch_up(records=False)
        self._rejected = value

    def on_heartbeat(self, body: bytes) -> None:
        """A body arrived on the control topic."""
        view, received = self.cache.heartbeat(body)
        if view is None or received.sender is None:
            self._rejected += 1
            log.debug("network monitor of %s: dropped heartbeat (%s)", self.own_address, received.error)
            return
        key = body_of(received.sender) or received.sender
        if key == self.own_body:
            return  # recorded directly when sent
        self.observe(received.sender, view, key=key)

    def observe(self, address: str, view: Mapping[str, Any], *, key: str | None = None) -> None:
        """Record a heartbeat view from ``address`` now (``key``: its address body, if known)."""
        key = key or body_of(address) or address
        alias = view.get("EE_ID")
        if self.feed is not None and key != self.own_body:  # own heartbeats never come through the feed
            self.feed.catch_up()
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = PeerRecord(address, alias if isinstance(alias, str) else None, 0.0)
        record.address = address
        if isinstance(alias, str):
            record.alias = alias
        record.last_seen = self._now()
        record.heartbeat = view
        record.heartbeats += 1

    def forget(self) -> None:
        """Drop every record (the node restarted)."""
        self._records.clear()
        if self.feed is not None:
            self.feed.forgotten()

    def resolve(self, target: str) -> tuple[str | None, str | None]:
        """``(alias, address)`` for a target given as either (None where unknown)."""
        key = body_of(target)
        if key is not None:
            record = self.records.get(key)
            return (record.alias if record else None), target
        for record in self.records.values():
            if record.alias == target:
                return target, record.address
        return target, None

    def _allows(self, record: PeerRecord) -> bool:
        hb = record.summary
        if body_of(record.address) == self.own_body or hb.get(OPEN_TAG) is True or hb.get("SECURED") is False:
            return True
        whitelist = hb.get("EE_WHITELIST")
        if not isinstance(whitelist, list):
            return False
        # Listed as is (the usual case), else by address body (any prefix).
        return self.own_address in whitelist or self.own_body in _bodies_of(whitelist)

    def peers(self, *, summaries: bool = False) -> list[dict[str, Any]]:
        """One dict per known node (itself included), sorted by alias then address.

        ``summaries``: ``heartbeat`` holds only the :data:`SUMMARY_KEYS` fields
        (everything else is the same); views not read yet are then not built.
        """
        now = self._now()
        out = []
        for record in self.records.values():
            hb = record.summary if summaries else record.heartbeat
            online = now - record.last_seen <= ONLINE_WINDOW and record.device_status == "ONLINE"
            out.append({
                "address": record.address,
                "alias": record.alias,
                "last_seen": record.last_seen,
                "heartbeat": hb,
                "online": online,
                "device_status": record.device_status,
                "is_self": body_of(record.address) == self.own_body,
                "allows_me": self._allows(record),
                "secured": hb.get("SECURED"),
                "whitelist": list(hb.get("EE_WHITELIST") or []),
                "is_supervisor": bool(hb.get("EE_IS_SUPER")),
                "resources": {key: hb.get(key) for key in ("CPU_USED", "AVAILABLE_MEMORY", "AVAILABLE_DISK",
                                                             "MACHINE_MEMORY", "TOTAL_DISK", "GPUS",
                                                             "DEFAULT_CUDA")},
            })
        out.sort(key=lambda p: (str(p["alias"]), p["address"]))
        return out


class NetMon01(SimPlugin):
    """``NET_MON_01`` of a supervisor node: the network status payload every ``PROCESS_DELAY``."""

    SIGNATURE = "NET_MON_01"
    VERSION = "2.1.1"
    MODULE = "NetMon01Plugin"
    DEFAULTS: ClassVar[dict[str, Any]] = {**SimPlugin.DEFAULTS, "PROCESS_DELAY": 10, "ALLOW_EMPTY_INPUTS": True}
    COPY_INPUTS: ClassVar[bool] = False  # builds its status from the node's monitor, never from inputs

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._known: set[str] = set()

    def process(self, inputs: list[InputItem]) -> dict[str, Any]:
        """Build ``CURRENT_NETWORK`` from the node's monitor."""
        node = self.ctx.node
        now = node.time()
        network: dict[str, Any] = {}
        ranking, new = [], []
        netmon = getattr(node, "netmon", None)
        # What it reads of each peer's heartbeat is in its summary: full views need not be built.
        peers = netmon.peers(summaries=True) if isinstance(netmon, NetworkMonitor) else node.peers()
        for peer in peers:
            alias = str(peer.get("alias") or peer["address"])
            hb = peer.get("heartbeat") or {}
            working = "ONLINE" if peer.get("online") else "OFFLINE"
            network[alias] = {
                "address": peer["address"],
                "eeid": peer.get("alias"),
                "working": working,
                "last_seen_sec": round(now - float(peer.get("last_seen") or now), 1),
                "last_remote_time": hb.get("CURRENT_TIME"),
                "node_tz": "Etc/UTC",
                "is_supervisor": bool(peer.get("is_supervisor")),
                "trusted": bool(peer.get("allows_me")),
                "secured": peer.get("secured"),
                "whitelist": peer.get("whitelist", []),
                "avail_disk": hb.get("AVAILABLE_DISK"),
                "avail_mem": hb.get("AVAILABLE_MEMORY"),
                "cpu_past1h": hb.get("CPU_USED"),
                "uptime": hb.get("UPTIME"),
                "version": hb.get("VERSION"),
            }
            if working == "ONLINE":
                ranking.append(alias)
            if peer["address"] not in self._known:
                self._known.add(peer["address"])
                new.append(alias)
        return {
            "CURRENT_SERVER": node.alias,
            "CURRENT_NETWORK": network,
            "CURRENT_ALERTED": {},
            "CURRENT_RANKING": ranking,
            "CURRENT_NEW": new,
            "WHITELIST_MAP": {alias: info["whitelist"] for alias, info in network.items()},
            "MESSAGE": f"{len(ranking)} of {len(network)} nodes online at {time_text(now)}",
            "STATUS": "Network status",
            "IS_SUPERVISOR": True,
        }
