"""Router: what an accepted event does to the session's state and which callbacks it reaches.

It updates the :class:`~pye2.domain.network.NetworkView`, offers
notifications to open confirmations, tracks archived pipelines, applies
``filter_workers`` and calls the user callbacks through the
:class:`~pye2.service.dispatch.Dispatcher`. The pipeline handles it routes to
are indexed by ``(node, pipeline)``, under the node's alias and address, so
routing costs O(1) in the number of pipelines and instances.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pye2.domain.codecs.heartbeat_view import HeartbeatView
from pye2.domain.keys import same_address
from pye2.domain.messages import Event, HeartbeatEvent, NotificationEvent, PayloadEvent, Rejected
from pye2.domain.network import NodeRecord
from pye2.errors import DecompressionBomb
from pye2.service.confirmations import ConfirmationTracker
from pye2.service.directory import NodeDirectory
from pye2.service.dispatch import Dispatcher
from pye2.service.payload import Payload
from pye2.service.stats import SessionStats

__all__ = ["DEFAULT_MAX_SEQ_GAP", "PipelineTarget", "Router"]

PipelineKey = tuple[str, str]

#: a jump in a node's ``EE_MESSAGE_SEQ`` larger than this is a restart or nonsense, not lost payloads
DEFAULT_MAX_SEQ_GAP = 1_000_000
#: ``EE_MESSAGE_SEQ`` values above this (2**53, the largest integer JSON peers agree on) are ignored
MAX_SEQ = 2**53
#: nodes whose last payload number is remembered (the oldest go first)
MAX_SEQ_NODES = 20_000


class PipelineTarget(Protocol):
    """What the router needs of a pipeline handle (:class:`pye2.service.handles.Pipeline`)."""

    e2id: str
    #: the address of the node the pipeline lives on (None until known)
    node_address: str | None

    @property
    def name(self) -> str: ...

    def _on_archived(self) -> None: ...


class Router:
    """Routes events for one session (``owner`` is what session-level callbacks receive first).

    ``count_gaps=False`` (a session in a share group) skips the payload numbering check.
    """

    def __init__(self, owner: Any, *, directory: NodeDirectory, dispatcher: Dispatcher, stats: SessionStats,
                 node_key: Callable[[str, str | None], str], filter_workers: set[str] | None,
                 max_seq_gap: int = DEFAULT_MAX_SEQ_GAP, count_gaps: bool = True) -> None:
        self.owner = owner
        self.directory = directory
        self.network = directory.network
        self.dispatcher = dispatcher
        self.stats = stats
        self.node_key = node_key
        self.filter_workers = filter_workers
        self.max_seq_gap = max_seq_gap
        #: False when this session gets only a share of the payloads (a share group): gaps are expected
        self.count_gaps = count_gaps
        self.confirmations: ConfirmationTracker | None = None
        #: ``f(record, envelope)`` after each admitted heartbeat (``envelope``: its verified top-level fields)
        self.on_heartbeat_of: Callable[[NodeRecord, Mapping[str, Any]], None] | None = None
        self.pipelines: dict[PipelineKey, PipelineTarget] = {}
        self._payload_seq: OrderedDict[str, int] = OrderedDict()

    # -- pipeline handles -----------------------------------------------------------------
    def register(self, pipe: PipelineTarget) -> None:
        """Route ``pipe``'s messages to it, whether they name its node by name or by address.

        The node's address is the one its name resolves to now (None if the
        node has not been heard from: then the first message the directory
        admits for it sets it).
        """
        alias, address = self.directory.resolve(pipe.e2id)
        if pipe.node_address is None:
            pipe.node_address = address
        self.directory.hold(pipe.e2id)
        for node in {pipe.e2id, alias, pipe.node_address}:
            if node:
                self.pipelines[(node, pipe.name)] = pipe

    def unregister(self, pipe: PipelineTarget) -> None:
        for key in [k for k, v in self.pipelines.items() if v is pipe]:
            del self.pipelines[key]

    def handles(self) -> list[PipelineTarget]:
        """Each registered handle once."""
        return list({id(p): p for p in self.pipelines.values()}.values())

    def pipeline_of(self, alias: str, address: str | None,
                    pipeline: str | None) -> tuple[PipelineKey, PipelineTarget] | None:
        """The handle (and the key it is registered under) of the pipeline a message belongs to.

        Only a message from the address the pipeline lives on finds it: a
        handle remembers its node's address, and one that does not know it
        yet adopts the address of the first admitted message for it.
        """
        if pipeline:
            for key in ((alias, pipeline), (address, pipeline)) if address else ((alias, pipeline),):
                pipe = self.pipelines.get(key)
                if pipe is not None:
                    home = pipe.node_address
                    if home is None:
                        if address is not None:
                            pipe.node_address = address
                            self.pipelines[(address, pipeline)] = pipe
                        return key, pipe
                    if address is not None and (home == address or same_address(home, address)):
                        return key, pipe
        return None

    # -- routing ---------------------------------------------------------------------------
    def route(self, kind: str, event: Event, now: float) -> None:
        """Admit one decoded event (replays and impostors are refused), apply it and run its callbacks."""
        reason = self.directory.admit(event, now, verified=event.verified)
        if reason is not None:
            detail = ("a copy of a message already received" if reason == "replay"
                      else f"claims the name {event.alias}, bound to another address")
            self.stats.count_rejected(reason, Rejected(reason, detail, sender=event.address, kind=kind))
            return
        if isinstance(event, HeartbeatEvent):
            self._heartbeat(kind, event, now)
            return
        self.directory.record(event, now)
        if isinstance(event, NotificationEvent):
            self._track_archive(event)  # first, so a confirmed archive finds the handle closed
            if self.confirmations is not None:
                self.confirmations.offer(event)
        elif isinstance(event, PayloadEvent) and self.count_gaps:
            self._check_sequence(event)
        if self.filter_workers is not None and not (
            event.alias in self.filter_workers or (event.address and event.address in self.filter_workers)
        ):
            self.stats.bump("filtered")
            return
        if isinstance(event, NotificationEvent):
            self._notification(event)
        else:
            self._payload(event)
        self.stats.count_delivered(kind)

    def _check_sequence(self, event: PayloadEvent) -> None:
        """Count payloads a node numbered but we never got (``EE_MESSAGE_SEQ`` gaps).

        Nodes number their payloads per communicator. A jump forward means payloads
        were lost on the way (or rejected: those are also counted under ``rejected``).
        A number below the last one is either a late arrival (close below it: it was
        counted missing when the numbers jumped, so it no longer is) or a restart
        (far below: the node numbers from scratch). A jump of more than
        ``max_seq_gap``, or a number outside 0..2**53, counts nothing.
        """
        seq = event.data.get("EE_MESSAGE_SEQ")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
            return
        node = event.address or event.alias
        numbers = self._payload_seq
        last = numbers.get(node)
        if last is None:
            numbers[node] = seq
            if len(numbers) > MAX_SEQ_NODES:
                numbers.popitem(last=False)
            return
        if seq <= last:
            if seq == last:
                self.stats.bump("duplicate_payloads")
            elif seq > last // 2 and last - seq <= self.max_seq_gap:  # late: the baseline stays
                self.stats.bump("late_payloads")
                if self.stats.missed_payloads > 0:
                    self.stats.bump("missed_payloads", -1)
            else:
                numbers[node] = seq  # a restart
            return
        numbers[node] = seq
        gap = seq - last - 1
        if 0 < gap <= self.max_seq_gap:
            self.stats.bump("missed_payloads", gap)

    def _heartbeat(self, kind: str, event: HeartbeatEvent, now: float) -> None:
        """Update the network view, run the heartbeat callbacks, count the heartbeat.

        A v2 heartbeat's ``data`` is decoded when first read (see
        :class:`~pye2.domain.codecs.heartbeat_view.HeartbeatView`). If a
        callback read it (or asked for the node's pipelines) and its status
        turned out not to decode, the heartbeat is counted as rejected, with
        the reason an eager decoder would have given (``bomb`` or
        ``malformed``), instead of delivered; the callbacks that read it got
        that error. A status nobody reads while the heartbeat is routed is
        never decoded here; if it fails later, the node's record says why
        (``NodeRecord.status_error``) and it lists no pipelines.
        """
        record = self.directory.record(event, now)
        try:
            if self.on_heartbeat_of is not None:
                self.on_heartbeat_of(record, event.data.envelope if isinstance(event.data, HeartbeatView) else event.data)
            if self.filter_workers is not None and not (
                event.alias in self.filter_workers or (event.address and event.address in self.filter_workers)
            ):
                self.stats.bump("filtered")
                return
            e2id = self.node_key(event.alias, event.address)
            for cb in self.dispatcher.lookup("heartbeat", [("*",)]):
                self.dispatcher.call(cb, self.owner, e2id, event.data)
            error = event.data.error if isinstance(event.data, HeartbeatView) else None
            if error is None:
                self.stats.count_delivered(kind)
            else:
                reason = "bomb" if isinstance(error, DecompressionBomb) else "malformed"
                self.stats.count_rejected(reason, Rejected(reason, str(error), sender=event.address, kind=kind))
        finally:
            record.settle()  # from here on the record keeps the compressed status, not the view

    def _notification(self, event: NotificationEvent) -> None:
        payload = Payload(event.data)
        found = self.pipeline_of(event.alias, event.address, event.pipeline)
        if found is not None:
            key, pipe = found
            for cb in self.dispatcher.lookup("pipeline_notification", [key]):
                self.dispatcher.call(cb, pipe, payload)
            if event.signature and event.instance_id:
                for cb in self.dispatcher.lookup("instance_notification", [(*key, event.signature, event.instance_id)]):
                    self.dispatcher.call(cb, pipe, payload)
        e2id = self.node_key(event.alias, event.address)
        for cb in self.dispatcher.lookup("notification", [("*",)]):
            self.dispatcher.call(cb, self.owner, e2id, payload)

    def _payload(self, event: PayloadEvent) -> None:
        payload = Payload(event.data)
        found = self.pipeline_of(event.alias, event.address, event.pipeline)
        if found is not None:
            key, pipe = found
            for cb in self.dispatcher.lookup("pipeline_data", [key]):
                self.dispatcher.call(cb, pipe, event.signature, event.instance_id, payload)
            for cb in self.dispatcher.lookup("instance_data", [(*key, event.signature, event.instance_id or "")]):
                self.dispatcher.call(cb, pipe, payload)
        e2id = self.node_key(event.alias, event.address)
        for cb in self.dispatcher.lookup("payload", [("*",)]):
            self.dispatcher.call(cb, self.owner, e2id, event.pipeline, event.signature, event.instance_id, payload)

    def _track_archive(self, event: NotificationEvent) -> None:
        if event.code == 4:
            found = self.pipeline_of(event.alias, event.address, event.pipeline)
            if found is not None:
                self.unregister(found[1])
                found[1]._on_archived()
