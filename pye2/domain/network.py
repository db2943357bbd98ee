"""NetworkView: which nodes exist, which are online, what pipelines they hold.

Pure: fed decoded events with an explicit ``now`` (seconds, the session's
clock). A node is its address (``EE_SENDER``): records are keyed by it, and
a name (``EE_ID``) finds the record of the address that last used it. Which
address may use a name is decided before a message gets here (see
:mod:`pye2.domain.trust`). The number of records and the heartbeat bytes they
retain are bounded.

Memory per node is kept small on purpose: no full heartbeat is stored
(callers that want it get it in the heartbeat callback). What a record needs
from the node's last heartbeat (its pipelines, whitelist, ``SECURED``,
``DEVICE_STATUS``: a :class:`NodeStatus`) is read from it when first asked
for. Until then a v2 heartbeat is kept as its compressed status (about
3.6 KB for a real node, whose parsed pipelines alone take some 13 KB), so a
session that is never asked about a node never decodes its heartbeats. Once
read, the fields stay parsed for the :data:`DEFAULT_PARSED_NODES` nodes read
last; the others are decoded again when asked. A status that turns out not
to decode (or lists pipelines that are not a list) counts as listing
nothing: :attr:`NodeRecord.status_error` says why.

Records are written by one thread (the session's dispatcher) and may be
read from others, without locks: a read only writes its result to the
per-heartbeat holder it reads (the same result whichever thread writes it)
and appends to the bounded cache of parsed statuses, whose operations are
atomic.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pye2.domain.codecs.heartbeat_view import EncodedStatus, HeartbeatView
from pye2.errors import DecodeError

__all__ = ["DEFAULT_MAX_NODES", "DEFAULT_MAX_STATUS_BYTES_TOTAL", "DEFAULT_ONLINE_TIMEOUT", "DEFAULT_PARSED_NODES", "TRACKED_FIELDS", "NetworkView", "NodeRecord",
           "NodeStatus"]

#: seconds without any message after which a node counts as offline (spec 3)
DEFAULT_ONLINE_TIMEOUT = 60.0

#: how many nodes' heartbeat fields a NetworkView keeps parsed once read (some 13 KB each for a
#: real node's pipelines); the others keep the compressed status (3.6 KB) and decode it again if asked
DEFAULT_PARSED_NODES = 256

#: node records a NetworkView keeps at most (the longest silent go first)
DEFAULT_MAX_NODES = 20_000

#: heartbeat bytes all records together may retain (a real node's heartbeat is 5-40 KB)
DEFAULT_MAX_STATUS_BYTES_TOTAL = 64 * 1024 * 1024

#: the heartbeat fields a record reads (``PIPELINES`` is the later nodes' alias of ``CONFIG_STREAMS``)
TRACKED_FIELDS = ("CONFIG_STREAMS", "PIPELINES", "EE_WHITELIST", "SECURED", "DEVICE_STATUS")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What a record keeps of a node's last heartbeat.

    Attributes:
        pipelines: pipeline name -> config, as listed in ``CONFIG_STREAMS``
            (or ``PIPELINES``); None if the heartbeat listed none.
        whitelist: ``EE_WHITELIST`` (addresses allowed to command the node).
        secured: ``SECURED``, if a bool.
        status: ``DEVICE_STATUS``, if a non-empty string.
        error: why the heartbeat's status could not be read (then everything else is empty).
    """

    pipelines: dict[str, dict[str, Any]] | None = None
    whitelist: tuple[str, ...] = ()
    secured: bool | None = None
    status: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, view: Mapping[str, Any]) -> NodeStatus:
        """Read a heartbeat's merged view (a pending :class:`HeartbeatView` gets decoded).

        Raises:
            DecodeError: the status does not decode, or its pipelines are not a list.
        """
        streams = view.get("CONFIG_STREAMS", view.get("PIPELINES"))
        if streams is not None and not isinstance(streams, list):
            raise DecodeError("CONFIG_STREAMS is not a list")
        pipelines = None if streams is None else {
            str(cfg.get("NAME")): dict(cfg) for cfg in streams if isinstance(cfg, Mapping)
        }
        whitelist = view.get("EE_WHITELIST") or ()
        secured = view.get("SECURED")
        status = view.get("DEVICE_STATUS")
        return cls(
            pipelines=pipelines,
            whitelist=tuple(str(w) for w in whitelist) if isinstance(whitelist, (list, tuple)) else (),
            secured=secured if isinstance(secured, bool) else None,
            status=status if isinstance(status, str) and status else None,
        )


_NO_STATUS = NodeStatus()


class _ParsedCache:
    """The per-heartbeat holders whose parsed status is kept, at most ``size`` (the oldest are let go).

    Safe for concurrent readers without a lock: ``deque.append`` and
    ``popleft`` are atomic, and letting a holder go only drops what it can
    decode again.
    """

    __slots__ = ("_held", "size")

    def __init__(self, size: int) -> None:
        self._held: deque[_LastHeartbeat] = deque()
        self.size = size

    def keep(self, holder: _LastHeartbeat) -> None:
        held = self._held
        held.append(holder)
        while len(held) > self.size:
            try:
                held.popleft().forget_parsed()
            except IndexError:  # emptied by another thread meanwhile
                break


class _LastHeartbeat:
    """One heartbeat's part in its node's record: what to read it from, and what was read.

    The source is the heartbeat's view while it is routed (a callback that
    decodes it decodes it for the record too), then its compressed status.
    A parsed :class:`NodeStatus` that lists pipelines counts against the
    network view's :class:`_ParsedCache`, which lets the oldest go back to
    compressed; any other status (no pipelines, an error, a heartbeat in
    clear) is kept and its source dropped.
    """

    __slots__ = ("_cache", "_source", "_status")

    def __init__(self, view: Mapping[str, Any], cache: _ParsedCache) -> None:
        self._source: Mapping[str, Any] | EncodedStatus | None = view
        self._status: NodeStatus | None = None
        self._cache = cache
        if not (isinstance(view, HeartbeatView) and view.pending):
            self.status()  # a heartbeat in clear: keep its fields, not the whole view

    def settle(self) -> None:
        """Swap the view for its compressed status (also if it was decoded: 3.6 KB against 13+ parsed)."""
        source = self._source
        if isinstance(source, HeartbeatView):
            if source.error is None:
                self._source = source.compact(TRACKED_FIELDS)
            else:
                self.status()  # found undecodable while routed: keep just why

    def status(self) -> NodeStatus:
        status = self._status
        if status is not None:
            return status
        source = self._source
        if source is None:  # read by another thread meanwhile, which set _status first
            return self._status or _NO_STATUS
        try:
            status = NodeStatus.of(source.decode() if isinstance(source, EncodedStatus) else source)
            view_error = source.error if isinstance(source, HeartbeatView) else None
            if view_error is not None:  # a view that failed to decode reads as its envelope alone
                status = NodeStatus(error=str(view_error))
        except DecodeError as exc:
            status = NodeStatus(error=str(exc))
        self._status = status
        if status.pipelines and isinstance(source, (EncodedStatus, HeartbeatView)):
            self._cache.keep(self)  # large, and can be decoded again: the cache may let it go
        else:
            self._source = None  # small, or nothing to decode again: keep just the status
        return status

    def forget_parsed(self) -> None:
        """Drop the parsed status if it can be read again from the source."""
        if self._source is not None:
            self._status = None


class NodeRecord:
    """What the session remembers of one node.

    Attributes:
        alias: ``EE_ID``.
        address: ``EE_SENDER`` of its signed messages, if any.
        last_seen: session time of its last accepted message.
        last_heartbeat: session time of its last heartbeat.
        heartbeats: heartbeats received.
        messages: messages received (heartbeats included).
        eth: the node's signing mode, as its last message showed it: True when it
            signs with ``EE_ETH_SENDER``/``EE_ETH_SIGN`` (ETH mode), False when it
            does not, None before anything signed was heard.
    """

    __slots__ = ("_bytes", "_extra", "_last", "address", "alias", "eth", "heartbeats", "last_heartbeat",
                 "last_seen", "messages")

    def __init__(self, alias: str, address: str | None = None) -> None:
        self.alias = alias
        self.address = address
        self.last_seen = float("-inf")
        self.last_heartbeat = float("-inf")
        self.heartbeats = 0
        self.messages = 0
        self.eth: bool | None = None
        self._last: _LastHeartbeat | None = None
        self._extra: dict[str, Any] | None = None
        self._bytes = 0

    # -- the last heartbeat -------------------------------------------------------------
    def settle(self) -> None:
        """Call once the last heartbeat has been handed out: keep only its compressed status.

        Until then the record reads the heartbeat's view itself, so reading
        the record while the heartbeat's callbacks run decodes it only once,
        for both.
        """
        last = self._last
        if last is not None:
            last.settle()

    @property
    def node_status(self) -> NodeStatus:
        """The fields of the last heartbeat (decoded now if they were not yet)."""
        last = self._last
        return _NO_STATUS if last is None else last.status()

    @property
    def pipelines(self) -> dict[str, dict[str, Any]] | None:
        """Pipeline name -> config from the last heartbeat (None: it listed none, or no heartbeat yet)."""
        return self.node_status.pipelines

    @property
    def whitelist(self) -> tuple[str, ...]:
        return self.node_status.whitelist

    @property
    def secured(self) -> bool | None:
        return self.node_status.secured

    @property
    def status(self) -> str | None:
        """``DEVICE_STATUS`` of the last heartbeat."""
        return self.node_status.status

    @property
    def status_error(self) -> str | None:
        """Why the last heartbeat's status could not be read, if it could not."""
        return self.node_status.error

    @property
    def extra(self) -> dict[str, Any]:
        """Free-form per-node data for callers (created on first use)."""
        if self._extra is None:
            self._extra = {}
        return self._extra

    def __repr__(self) -> str:
        return (f"NodeRecord(alias={self.alias!r}, address={self.address!r}, last_seen={self.last_seen!r}, "
                f"heartbeats={self.heartbeats}, messages={self.messages})")


class NetworkView:
    """Online tracking per spec section 3, from the session's clock.

    A node is its address: records are keyed by the sender address of its
    messages (a message with no address, possible only with ``verify="off"``,
    keys its record by name). A name finds the record of the address that last
    used it; the session's :class:`~pye2.service.directory.NodeDirectory`
    decides which address a name may be used by before a message gets here.

    Bounded: at most ``max_nodes`` records, and the heartbeats they retain at
    most ``max_status_bytes`` (counted as the size of each node's last
    heartbeat as received); past either bound the longest-silent records are
    dropped (a dropped node comes back with its next message).

    Args:
        online_timeout: seconds after the last message before a node is offline.
        parsed_nodes: how many nodes' last heartbeats are kept parsed once
            read (see :data:`DEFAULT_PARSED_NODES`).
        max_nodes: records kept at most.
        max_status_bytes: retained heartbeat bytes at most, all records together.
    """

    def __init__(self, online_timeout: float = DEFAULT_ONLINE_TIMEOUT, *,
                 parsed_nodes: int = DEFAULT_PARSED_NODES, max_nodes: int = DEFAULT_MAX_NODES,
                 max_status_bytes: int = DEFAULT_MAX_STATUS_BYTES_TOTAL) -> None:
        if online_timeout <= 0:
            raise ValueError("online_timeout must be positive")
        if max_nodes <= 0 or max_status_bytes <= 0:
            raise ValueError("max_nodes and max_status_bytes must be positive")
        self.online_timeout = float(online_timeout)
        self.max_nodes = int(max_nodes)
        self.max_status_bytes = int(max_status_bytes)
        #: record key (the address, or NUL + name for a record without one) -> record, least recently seen first
        self._records: OrderedDict[str, NodeRecord] = OrderedDict()
        self._by_alias: dict[str, NodeRecord] = {}
        self._status_bytes = 0
        self.evicted = 0
        self._parsed = _ParsedCache(max(0, int(parsed_nodes)))

    # -- feeding ---------------------------------------------------------------
    def _record(self, alias: str, address: str | None) -> NodeRecord:
        key = address if address is not None else "\0" + alias
        records = self._records
        rec = records.get(key)
        if rec is None:
            rec = NodeRecord(alias, address)
            records[key] = rec
            if len(records) > self.max_nodes:
                self._evict(keep=rec)
        else:
            records.move_to_end(key)
            if rec.alias != alias:  # the node renamed itself: its new name finds it
                if self._by_alias.get(rec.alias) is rec:
                    del self._by_alias[rec.alias]
                rec.alias = alias
        if self._by_alias.get(alias) is not rec:
            self._by_alias[alias] = rec
        return rec

    def _drop(self, key: str) -> None:
        rec = self._records.pop(key)
        self._status_bytes -= rec._bytes
        if self._by_alias.get(rec.alias) is rec:
            del self._by_alias[rec.alias]
        self.evicted += 1

    def _evict(self, keep: NodeRecord) -> None:
        """Drop the longest-silent records until both bounds hold (never ``keep``)."""
        records = self._records
        while len(records) > self.max_nodes or self._status_bytes > self.max_status_bytes:
            key = next(iter(records))
            if records[key] is keep:
                if len(records) == 1:
                    return
                records.move_to_end(key)
                continue
            self._drop(key)

    def seen(self, alias: str, address: str | None, now: float) -> NodeRecord:
        """Any accepted message from the node (heartbeat, payload, notification)."""
        rec = self._record(alias, address)
        rec.last_seen = max(rec.last_seen, now)
        rec.messages += 1
        return rec

    def heartbeat(self, alias: str, address: str | None, now: float, view: Mapping[str, Any], *,
                  size: int = 0) -> NodeRecord:
        """An accepted heartbeat and its merged view; call ``settle()`` on the record once it has been handed out.

        The record reads its pipelines, whitelist... from ``view`` when first
        asked for. ``size``: the heartbeat's bytes as received, counted against
        ``max_status_bytes`` until the node's next heartbeat.
        """
        rec = self.seen(alias, address, now)
        rec.last_heartbeat = now
        rec.heartbeats += 1
        previous, rec._last = rec._last, _LastHeartbeat(view, self._parsed)
        if previous is not None:
            previous.forget_parsed()  # it may still sit in the cache: keep only its compressed status there
        self._status_bytes += size - rec._bytes
        rec._bytes = size
        if self._status_bytes > self.max_status_bytes:
            self._evict(keep=rec)
        return rec

    def forget(self, node: str) -> None:
        """Drop everything known about a node (by name or address)."""
        rec = self.find(node)
        if rec is not None:
            self._drop(rec.address if rec.address is not None else "\0" + rec.alias)
            self.evicted -= 1

    # -- queries ---------------------------------------------------------------
    def find(self, node: str) -> NodeRecord | None:
        """The record for an address, or the record that last used a name."""
        return self._records.get(node) or self._by_alias.get(node)

    def find_address(self, address: str) -> NodeRecord | None:
        """The record of an address (an address only: a name finds nothing here)."""
        return self._records.get(address)

    def is_online(self, node: str, now: float) -> bool:
        rec = self.find(node)
        return rec is not None and now - rec.last_seen < self.online_timeout

    def records(self) -> list[NodeRecord]:
        """Every record, least recently seen first."""
        return list(self._records.values())

    def online(self, now: float) -> list[str]:
        """Names of the nodes seen less than ``online_timeout`` ago, sorted."""
        return sorted(rec.alias for rec in self._records.values() if now - rec.last_seen < self.online_timeout)

    def online_records(self, now: float) -> list[NodeRecord]:
        """Records of the nodes seen less than ``online_timeout`` ago, by name."""
        return sorted((rec for rec in self._records.values() if now - rec.last_seen < self.online_timeout),
                      key=lambda r: (r.alias, r.address or ""))

    def known(self) -> list[str]:
        return sorted({rec.alias for rec in self._records.values()})

    @property
    def status_bytes(self) -> int:
        """Heartbeat bytes the records retain (as counted against ``max_status_bytes``)."""
        return self._status_bytes

    def pipelines(self, node: str, now: float) -> dict[str, dict[str, Any]] | None:
        """The node's pipelines from its last heartbeat, or None if offline/unknown or it listed none."""
        rec = self.find(node)
        if rec is None or now - rec.last_seen >= self.online_timeout:
            return None
        return rec.pipelines

    def __len__(self) -> int:
        return len(self._records)
