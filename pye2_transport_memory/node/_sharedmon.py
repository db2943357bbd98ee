"""SharedMonitor: one subscription on ``{root}/ctrl`` feeding every node's network monitor.

Every node listens on the control topic (node.md section 9), so with one
subscription per node each heartbeat is delivered once per node: 3.6 million
deliveries per simulated hour at 100 nodes, each doing next to nothing. On a
simulated network whose nodes share one in-memory hub and one virtual clock,
every listening node hears the same heartbeats at the same moments, so the
network subscribes once and keeps, per sender, the latest heartbeat and a
running count. A node's :class:`~pye2_transport_memory.node.netmon.NetworkMonitor`
(records, ``rejected``) and its ``in_bytes`` counter catch up when they are
read, in time proportional to the peers heard since the last read.

What a node knows stays what its own subscription would have told it:

* it hears from the moment it subscribes (``start``) until it stops or
  crashes, and not while its transport is disconnected;
* peers are recorded in the order it first heard them;
* while the FaultPlan partitions the network, each heartbeat is handed to
  each node's own monitor, through the partition filter its transport
  wrapper applies (``partitioned`` drops are counted per node, as before);
* the receive cache counts one lookup per node served.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pye2.ports.transport import ConnectionEvent, Delivery
from pye2_transport_memory.node._pending import PendingView
from pye2_transport_memory.node.netmon import NetworkMonitor, PeerRecord, ReceiveCache, body_of

if TYPE_CHECKING:
    from pye2.ports.clock import Clock
    from pye2.ports.transport import Transport
    from pye2_transport_memory.faults import FaultPlan
    from pye2_transport_memory.hub import Hub

__all__ = ["SharedMonitor"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Latest:
    """The last heartbeat of one sender, and how many were heard while anyone listened."""

    count: int = 0
    seq: int = 0
    address: str = ""
    time: float = 0.0
    view: dict[str, Any] | PendingView | None = None
    alias: str | None = None
    alias_seq: int = 0


class _Member:
    """One node's place in the feed: what it has caught up to (the monitor's ``Feed``)."""

    def __init__(self, shared: SharedMonitor, party: str, monitor: NetworkMonitor, counters: Counter[str],
                 transport: Any) -> None:
        self.shared = shared
        self.party = party
        self.monitor = monitor
        self.counters = counters
        self.transport = transport
        self.own = monitor.own_body
        self.joined = False
        self.connected = True
        self.listening = False
        self.generation = 0
        # caught up to: feed sequence, bytes and rejections heard, per-sender counts
        self.seq = 0
        self.bytes = 0
        self.rejected = 0
        self.counts: dict[str, int] = {}

    def catch_up(self, records: bool = True) -> None:
        """Bring the node's ``in_bytes``, ``rejected`` and (``records``) peer records up to date."""
        if not self.listening:
            return
        shared = self.shared
        if self.bytes != shared.bytes:
            self.counters["in_bytes"] += shared.bytes - self.bytes
            self.bytes = shared.bytes
        if self.rejected != shared.rejected:
            self.monitor._rejected += shared.rejected - self.rejected
            self.rejected = shared.rejected
        if records and self.seq != shared.seq:
            shared._replay(self)

    def forgotten(self) -> None:
        """The monitor dropped its records: only heartbeats from now on count."""
        if self.listening:
            self.shared._rebase(self)


class _Membership:
    """The subscription handle a node keeps for its place in the feed."""

    def __init__(self, shared: SharedMonitor, member: _Member, address: str) -> None:
        self._shared = shared
        self._member = member
        self._generation = member.generation
        self.address = address

    def cancel(self) -> None:
        """Stop feeding the node (idempotent; a later membership of the node is not affected)."""
        if self._member.generation == self._generation:
            self._shared._leave(self._member)


class SharedMonitor:
    """The control-topic subscription of a whole simulated network (see the module docstring).

    Args:
        hub: the network's hub (subscribed to at once).
        topic: the control topic (``{root}/ctrl``).
        cache: the network's receive cache.
        plan: the network's fault plan (partitions).
        clock: the network's clock (``last_seen`` times).
    """

    def __init__(self, hub: Hub, topic: str, cache: ReceiveCache, plan: FaultPlan, clock: Clock) -> None:
        self.topic = topic
        self._cache = cache
        self._plan = plan
        self._clock = clock
        self._members: dict[str, _Member] = {}
        self._listening: list[_Member] = []
        # running totals over heartbeats heard while anyone listened
        self.seq = 0
        self.bytes = 0
        self.rejected = 0
        self._latest: dict[str, _Latest] = {}  # ordered by last heartbeat, oldest first
        self._universal: set[str] = set()  # senders every listening node has a record of
        self._hub_sub = hub.subscribe(topic, self._on_message)

    def __repr__(self) -> str:
        return f"<SharedMonitor {self.topic!r} listening={len(self._listening)} heard={self.seq}>"

    def close(self) -> None:
        """Unsubscribe from the hub; every node keeps what it heard."""
        for member in list(self._listening):
            self._leave(member)
        self._hub_sub.cancel()

    # -- membership ----------------------------------------------------------------------
    def join(self, party: str, monitor: NetworkMonitor, counters: Counter[str], transport: Transport) -> _Membership:
        """Feed ``monitor`` (and ``counters["in_bytes"]``) of node ``party`` from now on.

        ``transport`` is the node's: while it is disconnected the node hears nothing.
        Returns a handle whose ``cancel()`` ends the membership.
        """
        member = self._members.get(party)
        if member is None or member.monitor is not monitor or member.transport is not transport:
            member = self._members[party] = _Member(self, party, monitor, counters, transport)
            self._watch(member)
        member.counters = counters
        member.generation += 1
        member.joined = True
        member.connected = bool(transport.is_connected)
        self._refresh(member)
        return _Membership(self, member, self.topic)

    def _watch(self, member: _Member) -> None:
        # The node's subscriptions stop and resume with its connection (MemoryTransport.simulate_*).
        target = member.transport
        add = getattr(target, "add_connection_listener", None) or getattr(getattr(target, "inner", None),
                                                                          "add_connection_listener", None)
        if add is None:
            return

        def on_event(event: ConnectionEvent) -> None:
            if self._members.get(member.party) is member:
                member.connected = event.state == "connected"
                self._refresh(member)

        add(on_event)

    def _leave(self, member: _Member) -> None:
        member.joined = False
        member.generation += 1
        self._refresh(member)

    def _refresh(self, member: _Member) -> None:
        listening = member.joined and member.connected
        if listening == member.listening:
            return
        if listening:
            member.listening = True
            member.bytes, member.rejected = self.bytes, self.rejected
            self._rebase(member)
            member.monitor.feed = member
            self._listening.append(member)
        else:
            member.catch_up()
            member.listening = False
            member.monitor.feed = None
            self._listening.remove(member)

    def _rebase(self, member: _Member) -> None:
        """From now on ``member`` hears only later heartbeats."""
        member.seq = self.seq
        member.counts = {key: latest.count for key, latest in self._latest.items()}
        self._universal.clear()

    # -- receiving --------------------------------------------------------------------------
    def _on_message(self, delivery: Delivery) -> None:
        listening = self._listening
        if not listening:
            return
        body = delivery.body
        if self._plan.partitioned:
            self._deliver_each(body, listening)
            return
        view, received = self._cache.heartbeat_or_pending(body, len(listening))
        self.seq += 1
        self.bytes += len(body)
        sender = received.sender
        if view is None or sender is None:
            self.rejected += 1
            log.debug("shared network monitor: dropped heartbeat (%s)", received.error)
            return
        key = body_of(sender) or sender
        latest = self._latest.pop(key, None) or _Latest()
        self._latest[key] = latest  # now the newest
        latest.count += 1
        latest.seq = self.seq
        latest.address = sender
        latest.time = self._clock.time()
        latest.view = view
        alias = (view.summary if type(view) is PendingView else view).get("EE_ID")
        if isinstance(alias, str):
            latest.alias, latest.alias_seq = alias, self.seq
        if key not in self._universal:
            self._introduce(key, latest)

    def _introduce(self, key: str, latest: _Latest) -> None:
        """First heartbeat of ``key`` for some node: create its record now, in first-heard order."""
        alias = latest.alias if latest.alias_seq == latest.seq else None
        for member in self._listening:
            records = member.monitor._records
            if key == member.own or key in records:
                continue
            assert latest.view is not None
            records[key] = PeerRecord(latest.address, alias, latest.time, latest.view, 1)
            member.counts[key] = latest.count
        self._universal.add(key)

    def _replay(self, member: _Member) -> None:
        """Apply to ``member``'s records the newest heartbeat of every sender heard since it caught up."""
        records = member.monitor._records
        since, counts, latest_of = member.seq, member.counts, self._latest
        for key in reversed(latest_of):
            latest = latest_of[key]
            if latest.seq <= since:
                break
            if key == member.own:
                continue
            record = records.get(key)
            if record is None:  # removed by hand: recreated by the sender's next heartbeat, as before
                self._universal.discard(key)
                continue
            record.address = latest.address
            if latest.alias_seq > since:
                record.alias = latest.alias
            record.last_seen = latest.time
            if latest.view is not None:
                record.heartbeat = latest.view
            record.heartbeats += latest.count - counts.get(key, 0)
            counts[key] = latest.count
        member.seq = self.seq

    def _deliver_each(self, body: bytes, listening: list[_Member]) -> None:
        """Partitioned: each node's monitor on its own, behind its transport's partition filter."""
        plan = self._plan
        origin = plan.origin_of(body)
        size = len(body)
        for member in list(listening):
            member.catch_up()  # earlier heartbeats first
            if not plan.can_hear(member.party, origin):
                plan.counters["partitioned"] += 1
                continue
            member.counters["in_bytes"] += size
            member.monitor.on_heartbeat(body)
