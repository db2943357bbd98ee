"""The network monitor of a simulated node (node.md section 9) and ``NET_MON_01``.

* :class:`ReceiveCache` parses and verifies each received body once. A
  network shares one cache between its nodes, so a heartbeat fanned out to
  100 nodes is inflated and verified once, not 100 times (the same bytes
  object reaches every subscriber of the in-memory hub). Cached views are
  read-only: whoever hands one to user code copies it.
* :class:`NetworkMonitor`: the node listens on ``{root}/ctrl``, verifies
  peers' heartbeats (bad or unsigned ones are dropped and counted) and keeps
  per address the alias, last seen time (node clock), ``DEVICE_STATUS``,
  allow-list, ``SECURED`` and the last decoded view. It backs
  ``NodeApi.peers()``. A node records its own heartbeats directly, as a real
  node knows itself even when the broker loses its messages.
* :class:`NetMon01`: the admin pipeline's ``NET_MON_01``; only a supervisor
  node runs it, publishing ``CURRENT_NETWORK`` & co every ``PROCESS_DELAY``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.keys import address_body
from pye2.errors import DecodeError, Pye2Error
from pye2.wire import verify_message
from pye2_transport_memory.node._payload import time_text
from pye2_transport_memory.node._signing import make_verifier
from pye2_transport_memory.node.plugin_base import InputItem, SimPlugin

if TYPE_CHECKING:
    from pye2.domain.profiles import WireProfile
    from pye2.ports.signer import Verifier

__all__ = [
    "ONLINE_WINDOW",
    "OPEN_TAG",
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
_CACHE_SIZE = 2048


@functools.lru_cache(maxsize=4096)
def _body(address: str) -> str | None:
    try:
        return address_body(address)
    except DecodeError:
        return None


def body_of(address: Any) -> str | None:
    """The prefix-free body of an address, or None when it is not one (cached: few distinct addresses)."""
    return _body(address) if isinstance(address, str) else None


@dataclass(frozen=True)
class Received:
    """One received body: the parsed message, and its verified sender or why not."""

    message: dict[str, Any] | None
    sender: str | None = None
    error: str | None = None
    signed: bool = False


class ReceiveCache:
    """Parse + verify (and inflate heartbeats) once per body; bounded LRU.

    Args:
        profile: wire profile the messages are verified under.
        verifier: ECDSA backend (default: the fastest available).
    """

    def __init__(self, profile: WireProfile, verifier: Verifier | None = None, size: int = _CACHE_SIZE) -> None:
        self.profile = profile
        self.verifier = verifier if verifier is not None else make_verifier()
        self._size = size
        self._messages: OrderedDict[bytes, Received] = OrderedDict()
        self._views: OrderedDict[bytes, dict[str, Any] | None] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _remember(self, table: OrderedDict[bytes, Any], body: bytes, value: Any) -> None:
        table[body] = value
        if len(table) > self._size:
            table.popitem(last=False)

    def message(self, body: bytes) -> Received:
        """The parsed and verified form of ``body`` (never raises)."""
        found = self._messages.get(body)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        found = self._decode(body)
        self._remember(self._messages, body, found)
        return found

    def _decode(self, body: bytes) -> Received:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return Received(None, error=f"malformed JSON: {exc}")
        if not isinstance(message, dict):
            return Received(None, error="not a JSON object")
        signed = "EE_SIGN" in message
        try:
            sender = verify_message(message, profile=self.profile, verifier=self.verifier, json_native=True)
        except Pye2Error as exc:
            return Received(message, error=f"signature: {exc}", signed=signed)
        return Received(message, sender=sender, signed=True)

    def heartbeat(self, body: bytes) -> tuple[dict[str, Any] | None, Received]:
        """The merged heartbeat view of a verified ``body`` (None if it does not verify or decode)."""
        received = self.message(body)
        if received.sender is None or received.message is None:
            return None, received
        if body in self._views:
            return self._views[body], received
        try:
            view: dict[str, Any] | None = decode_heartbeat(received.message)
        except DecodeError as exc:
            log.debug("undecodable heartbeat from %s: %s", received.sender, exc)
            view = None
        self._remember(self._views, body, view)
        return view, received


@dataclass
class PeerRecord:
    """What a node knows of one peer (or of itself)."""

    address: str
    alias: str | None
    last_seen: float
    heartbeat: Mapping[str, Any] = field(default_factory=dict)
    heartbeats: int = 0

    @property
    def device_status(self) -> str:
        """``DEVICE_STATUS`` of the last heartbeat (``ONLINE`` when absent)."""
        return str(self.heartbeat.get("DEVICE_STATUS", "ONLINE")).upper()


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
        self.records: dict[str, PeerRecord] = {}
        self.rejected = 0

    def on_heartbeat(self, body: bytes) -> None:
        """A body arrived on the control topic."""
        view, received = self.cache.heartbeat(body)
        if view is None or received.sender is None:
            self.rejected += 1
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
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = PeerRecord(address, alias if isinstance(alias, str) else None, 0.0)
        record.address = address
        if isinstance(alias, str):
            record.alias = alias
        record.last_seen = self._now()
        record.heartbeat = view
        record.heartbeats += 1

    def forget(self) -> None:
        """Drop every record (the node restarted)."""
        self.records.clear()

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
        hb = record.heartbeat
        if body_of(record.address) == self.own_body or hb.get(OPEN_TAG) is True or hb.get("SECURED") is False:
            return True
        whitelist = hb.get("EE_WHITELIST")
        return isinstance(whitelist, list) and self.own_body in {body_of(a) for a in whitelist}

    def peers(self) -> list[dict[str, Any]]:
        """One dict per known node (itself included), sorted by alias then address."""
        now = self._now()
        out = []
        for record in self.records.values():
            hb = record.heartbeat
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

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._known: set[str] = set()

    def process(self, inputs: list[InputItem]) -> dict[str, Any]:
        """Build ``CURRENT_NETWORK`` from the node's monitor."""
        node = self.ctx.node
        now = node.time()
        network: dict[str, Any] = {}
        ranking, new = [], []
        for peer in node.peers():
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
