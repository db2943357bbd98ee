"""A broker outage seen through a ``pye2.Session``: private broker killed mid-run, restarted.

One scenario per broker kind (a private Mosquitto; a private second RabbitMQ node),
run once by the module fixture ``outage`` and recorded in an :class:`OutageRun`; the
tests below each check one requirement on that record:

1. the session connects; two simulated nodes on the same broker; a pipeline with a
   ``SIMPLE_COUNTER`` (a payload every 0.2 s) is created and confirmed;
2. the broker is SIGKILLed; commands are issued during the outage;
3. the broker is restarted on the same port; the session reconnects by itself
   (``on_connection`` events, ``is_connected``), heartbeats flow again, commands
   issued afterwards are confirmed;
4. every command of the run is in a ledger and must end confirmed, failed, timed
   out, or raised a pye2 error at the call: none pending, none lost silently;
5. payloads: the node's ``EE_MESSAGE_SEQ`` (one counter per node for payloads) is
   compared with the sequence numbers the session's ``on_payload`` received.

Last, a small deterministic test on the shared brokers: one command dropped in transit
(by the simulated network's fault plan) must not be reported confirmed.

Transport options (fast reconnect backoff, MQTT QoS 1 for every message, a short
AMQP publish-confirm timeout) travel in the URL query, so the nodes and the session
build their transports from the same URL.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _brokers import (
    SHARED_KINDS,
    BrokerFailed,
    EventLog,
    MosquittoBroker,
    PrivateBroker,
    RabbitBroker,
    SharedBroker,
    find_mosquitto,
    find_rabbitmq_server,
    isolated_profile,
    shared_broker,
    unavailable,
    with_options,
)

from pye2 import Session
from pye2.errors import CommandFailed, CommandTimeout, Pye2Error
from pye2.ports.transport import ConnectionEvent
from pye2.service.confirmations import Confirmation
from pye2.wire import Identity
from pye2_transport_memory.network import SimulatedNetwork

log = logging.getLogger(__name__)

WAIT = 20.0
COMMAND_TIMEOUT = 6.0
HEARTBEAT_INTERVAL = 1.0
COUNTER_DELAY = 0.2
NODES = ("sim-node-1", "sim-node-2")
COUNTING, SPARE = "counting", "spare"
MARK = "sent-during-the-outage"
OPTIONS: dict[str, dict[str, object]] = {
    "mqtt": {"qos": 1, "reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.3, "connect_timeout": 5},
    "amqp": {"reconnect_initial_delay": 0.1, "reconnect_max_delay": 0.5, "connect_timeout": 5,
             "publish_timeout": 1},
}


# ----------------------------------------------------------------------------- the ledger
@dataclass
class Entry:
    """One command of the run and what became of it."""

    label: str
    phase: str  # "before", "during" or "after" the outage
    confirmation: Confirmation | None = None
    raised: Pye2Error | None = None

    @property
    def outcome(self) -> str:
        """``raised``, ``confirmed``, ``failed``, ``timed_out`` or ``pending`` (the forbidden one)."""
        if self.raised is not None:
            return "raised"
        conf = self.confirmation
        assert conf is not None
        if not conf.done:
            return "pending"
        if conf.ok:
            return "confirmed"
        return "timed_out" if isinstance(conf.error, CommandTimeout) else "failed"

    def __repr__(self) -> str:
        detail = self.raised if self.raised is not None else (self.confirmation and self.confirmation.error)
        return f"<{self.phase}: {self.label} -> {self.outcome}{f' ({detail})' if detail else ''}>"


@dataclass
class Ledger:
    """Every command issued, with its confirmation or the pye2 error its call raised."""

    entries: list[Entry] = field(default_factory=list)

    def issue(self, label: str, phase: str, send: Callable[[], Any]) -> Any:
        """Call ``send()``; record its Confirmation (or the handle's) or the pye2 error it raised."""
        entry = Entry(label, phase)
        self.entries.append(entry)
        try:
            result = send()
        except Pye2Error as exc:
            entry.raised = exc
            return None
        entry.confirmation = result if isinstance(result, Confirmation) else result.confirmation
        return result

    def confirmations(self) -> list[Confirmation]:
        return [e.confirmation for e in self.entries if e.confirmation is not None]


# ----------------------------------------------------------------------------- the record
@dataclass
class OutageRun:
    """What one outage scenario observed (filled in by :class:`OutageScenario`)."""

    kind: str
    ledger: Ledger = field(default_factory=Ledger)
    session_events: list[str] = field(default_factory=list)
    connected_during_outage: bool | None = None
    connected_after: bool | None = None
    heartbeats_after_restart: dict[str, int] = field(default_factory=dict)
    # payload sequence numbers (EE_MESSAGE_SEQ) of the counting node
    received: set[int] = field(default_factory=set)
    duplicates: int = 0
    last_seq_before_outage: int = 0  # published and then waited for while connected
    seq_at_disconnect: int = 0
    first_seq_after_reconnect: int = 0
    last_seq: int = 0
    detectable_gaps: int = 0  # over every node: sequence numbers missing below one received
    counter_params: dict[str, Any] = field(default_factory=dict)  # node 1's c1, before "close counting"
    node2_pipelines: set[str] = field(default_factory=set)  # node 2's pipelines at the same moment
    session_stats: dict[str, Any] = field(default_factory=dict)
    node_counters: dict[str, Any] = field(default_factory=dict)

    @property
    def missing(self) -> set[int]:
        return set(range(1, self.last_seq + 1)) - self.received


def _transport_counters(transport: Any) -> dict[str, Any]:
    """A transport's counters (MQTT: ``stats`` property, a dataclass; AMQP: ``stats()``, a dict)."""
    stats = getattr(transport, "stats", None)
    if callable(stats):
        stats = stats()
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return dataclasses.asdict(stats)
    return dict(stats) if isinstance(stats, dict) else {}


class OutageScenario:
    """Runs the scenario against one private broker and fills an :class:`OutageRun`."""

    def __init__(self, kind: str, broker: PrivateBroker) -> None:
        self.kind = kind
        self.broker = broker
        self.url = with_options(broker.url, **OPTIONS[kind])
        self.profile = isolated_profile()
        self.run = OutageRun(kind)
        self.events: EventLog[ConnectionEvent] = EventLog()
        self.heartbeats: EventLog[tuple[str, int]] = EventLog()
        self.payloads: EventLog[tuple[str, int]] = EventLog()
        self.counter: Any = None  # the SIMPLE_COUNTER Instance handle
        self.spare: Any = None  # a pipeline closed during the outage
        self.beats_since: dict[str, int] = {}  # each node's heartbeat sequence number at the restart
        self.net = SimulatedNetwork(list(NODES), seed=5, profile=self.profile, broker=self.url,
                                    heartbeat_interval=HEARTBEAT_INTERVAL)
        identity = Identity.generate()
        self.net.allow_client(identity.address(self.profile))  # the nodes take commands from their allow-list only
        self.session = Session(
            transport=self.url, profile=self.profile, identity=identity, name=f"outage-{kind}",
            command_timeout=COMMAND_TIMEOUT, on_connection=lambda s, event: self.events.append(event),
            on_heartbeat=lambda s, e2id, data: self.heartbeats.append((e2id, int(data["EE_MESSAGE_SEQ"]))),
            on_payload=lambda s, e2id, pipe, sig, inst, data: self.payloads.append((e2id, int(data["EE_MESSAGE_SEQ"]))))

    # -- helpers -------------------------------------------------------------------------------
    def seq(self, node: str = NODES[0], channel: str = "DEFAULT") -> int:
        """How many messages the node has published on a channel (its EE_MESSAGE_SEQ counter;
        ``DEFAULT`` = payloads, ``HEARTBEATS``).

        Read without ``net.lock`` on purpose: ``net.run_until`` evaluates predicates holding
        the clock's waiter lock, which node timers take while holding ``net.lock``. One
        Counter lookup is atomic under the GIL.
        """
        return int(self.net.nodes[node].publisher.seq[channel])

    def received_from(self, node: str) -> set[int]:
        return {seq for e2id, seq in self.payloads.snapshot() if e2id == node}

    def wait_received(self, wanted: set[int]) -> bool:
        return self.payloads.wait_until(lambda _: wanted <= self.received_from(NODES[0]), WAIT)

    def wait_state(self, state: str, after: int) -> bool:
        return self.events.wait_until(lambda es: any(e.state == state for e in es[after:]), WAIT)

    def fresh_heartbeats(self, since: dict[str, int]) -> dict[str, int]:
        """Per node: heartbeats received that the node published after its sequence number ``since``."""
        beats = self.heartbeats.snapshot()
        return {n: sum(1 for e2id, seq in beats if e2id == n and seq > since[n]) for n in NODES}

    # -- the scenario --------------------------------------------------------------------------
    def execute(self) -> OutageRun:
        self.session.connect()  # before the nodes start: it hears every payload from sequence number 1
        self.net.start()
        try:
            counting = self._before()
            self._during()
            self._after()
            self._snapshot_nodes()
            self.run.ledger.issue("close counting", "after", lambda: counting.close())
            self._settle()
        finally:
            self.session.close()
            self.net.stop()
        return self.run

    def _before(self) -> Any:
        ledger, node1, node2 = self.run.ledger, NODES[0], NODES[1]
        counting = ledger.issue("create counting", "before", lambda: self.session.create_pipeline(
            e2id=node1, name=COUNTING, data_source="Void"))
        self.counter = ledger.issue("start counter", "before", lambda: counting.start_plugin_instance(
            signature="SIMPLE_COUNTER", instance_id="c1", params={"PROCESS_DELAY": COUNTER_DELAY}))
        self.spare = ledger.issue("create spare", "before", lambda: self.session.create_pipeline(
            e2id=node2, name=SPARE, data_source="Void"))
        assert all(c.wait(WAIT) for c in ledger.confirmations()), ledger.entries
        assert self.net.run_until(lambda: self.seq() >= 5, WAIT)
        self.run.last_seq_before_outage = self.seq()
        assert self.wait_received(set(range(1, self.run.last_seq_before_outage + 1))), "payloads lost while connected"
        return counting

    def _during(self) -> None:
        ledger, mark = self.run.ledger, len(self.events)
        self.broker.kill()
        assert self.wait_state("disconnected", mark), self.events.snapshot()
        self.run.connected_during_outage = self.session.is_connected
        self.run.seq_at_disconnect = self.seq()
        # nothing else is ever sent to (counting, c1): a confirmation can only come from this command
        ledger.issue("update counter", "during", lambda: self.counter.update_instance_config(outage_mark=MARK))
        ledger.issue("create during", "during", lambda: self.session.create_pipeline(
            e2id=NODES[1], name="during", data_source="Void"))
        ledger.issue("close spare", "during", lambda: self.spare.close())
        ledger.issue("archive a pipeline that does not exist", "during",
                     lambda: self.session.send_command_delete_pipeline(NODES[0], "no-such-pipeline"))
        # the node keeps producing while the broker is away
        assert self.net.run_until(lambda: self.seq() >= self.run.seq_at_disconnect + 3, WAIT)

    def _after(self) -> None:
        ledger, mark, payload_mark = self.run.ledger, len(self.events), len(self.payloads)
        self.broker.start()
        self.beats_since = {n: self.seq(n, "HEARTBEATS") for n in NODES}
        assert self.wait_state("connected", mark), self.events.snapshot()
        self.run.connected_after = self.session.is_connected
        # a heartbeat every node published after the restart: its link and subscriptions are back
        assert self.heartbeats.wait_until(
            lambda _: all(self.fresh_heartbeats(self.beats_since).values()), WAIT), self.heartbeats.snapshot()[-6:]
        after = ledger.issue("create after", "after", lambda: self.session.create_pipeline(
            e2id=NODES[1], name="after", data_source="Void"))
        if after is not None and after.confirmation.wait(WAIT):
            ledger.issue("close after", "after", lambda: after.close())
        # payloads: the first one after the reconnect, then everything published later
        assert self.payloads.wait_until(
            lambda ps: any(e2id == NODES[0] for e2id, _ in ps[payload_mark:]), WAIT), "no payload after restart"
        self.run.first_seq_after_reconnect = next(s for e2id, s in self.payloads.snapshot()[payload_mark:]
                                                  if e2id == NODES[0])
        target = self.seq() + 5
        assert self.net.run_until(lambda: self.seq() >= target, WAIT)
        self.run.last_seq = self.seq()
        self.wait_received(set(range(self.run.first_seq_after_reconnect, self.run.last_seq + 1)))
        # let every command so far resolve (a lost one times out) before looking at the nodes
        confs = ledger.confirmations()
        self.session.wait(lambda: all(c.done for c in confs), COMMAND_TIMEOUT + WAIT)

    def _snapshot_nodes(self) -> None:
        with self.net.lock:
            node1, node2 = self.net.nodes[NODES[0]], self.net.nodes[NODES[1]]
            self.run.counter_params = dict(instance_params(node1.pipelines.get(COUNTING), "c1") or {})
            self.run.node2_pipelines = set(node2.pipelines)

    def _settle(self) -> None:
        run, session = self.run, self.session
        confs = run.ledger.confirmations()
        # every confirmation resolves by itself: a node answer or its timeout (COMMAND_TIMEOUT)
        session.wait(lambda: all(c.done for c in confs), COMMAND_TIMEOUT + WAIT)
        run.session_events = [e.state for e in self.events.snapshot()]
        run.heartbeats_after_restart = self.fresh_heartbeats(self.beats_since)
        run.received = self.received_from(NODES[0])
        run.duplicates = sum(1 for e2id, _ in self.payloads.snapshot() if e2id == NODES[0]) - len(run.received)
        for name in NODES:
            got = self.received_from(name)
            run.detectable_gaps += len(set(range(1, max(got, default=0) + 1)) - got)
        run.session_stats = session.stats.as_dict()
        with self.net.lock:
            for node_id, node in self.net.nodes.items():
                run.node_counters[node_id] = {
                    "payloads": node.counters["payloads"], "publish_errors": node.counters["publish_errors"],
                    "transport": _transport_counters(getattr(node.transport, "inner", node.transport)),
                }
        log.info("outage run (%s): %s", self.kind, run)


def instance_params(pipeline: dict[str, Any] | None, instance_id: str) -> dict[str, Any] | None:
    """The parameters of one instance in a node's stored pipeline config, or None."""
    for plugin in (pipeline or {}).get("PLUGINS", []):
        for instance in plugin.get("INSTANCES", []):
            if instance.get("INSTANCE_ID") == instance_id:
                return dict(instance)
    return None


# ----------------------------------------------------------------------------- the brokers
def _mosquitto(folder: Path) -> MosquittoBroker:
    found = find_mosquitto()
    if found is None:
        unavailable("mosquitto (apt-get install mosquitto) or stdbuf (coreutils) is not installed")
    assert found is not None
    return MosquittoBroker(*found, folder)


def _rabbit(folder: Path) -> RabbitBroker:
    server = find_rabbitmq_server()
    if server is None:
        unavailable("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    assert server is not None
    return RabbitBroker(server, folder)


@pytest.fixture(scope="module", params=[
    pytest.param("mqtt", marks=pytest.mark.mqtt),
    pytest.param("amqp", marks=[pytest.mark.amqp, pytest.mark.slow]),
])
def outage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageRun]:
    """The scenario, run once per broker kind against a private broker."""
    kind: str = request.param
    folder = tmp_path_factory.mktemp(f"{kind}-{uuid.uuid4().hex[:6]}")
    broker: MosquittoBroker | RabbitBroker = _mosquitto(folder) if kind == "mqtt" else _rabbit(folder)
    try:
        broker.start()
    except (BrokerFailed, OSError) as exc:
        broker.kill()
        unavailable(f"could not start a private {kind} broker: {exc}")
    try:
        yield OutageScenario(kind, broker).execute()
    finally:
        broker.kill()


# ----------------------------------------------------------------------------- the checks
def test_session_reports_the_outage_and_reconnects_by_itself(outage: OutageRun) -> None:
    states = outage.session_events
    assert states[0] == "connected" and states[-1] == "connected", states
    lost = states.index("disconnected")
    assert "reconnecting" in states[lost:], states
    assert "connected" in states[lost:] and "gave_up" not in states and "closed" not in states, states
    assert outage.connected_during_outage is False
    assert outage.connected_after is True


def test_heartbeats_flow_again_after_the_restart(outage: OutageRun) -> None:
    assert set(outage.heartbeats_after_restart) == set(NODES)
    assert all(count >= 1 for count in outage.heartbeats_after_restart.values()), outage.heartbeats_after_restart


def test_every_command_ends_confirmed_or_reported_failed(outage: OutageRun) -> None:
    entries = outage.ledger.entries
    assert [e.phase for e in entries].count("during") == 4, entries
    assert all(e.outcome in ("confirmed", "failed", "timed_out", "raised") for e in entries), entries
    # before the outage and once the links are back, nothing fails
    assert all(e.outcome == "confirmed" for e in entries if e.phase != "during"), entries
    assert any(e.label == "close after" for e in entries), entries
    # the node refuses what cannot be done: never "confirmed", whatever the outage did to it
    refused = next(e for e in entries if e.label.startswith("archive a pipeline"))
    assert refused.outcome != "confirmed", refused
    for entry in entries:
        if entry.outcome == "failed":
            assert isinstance(entry.confirmation and entry.confirmation.error, CommandFailed), entry


def test_a_confirmed_command_took_effect_and_a_refused_call_did_not(outage: OutageRun) -> None:
    """Confirmed means applied by the node; a call that raised sent nothing (so retrying is safe)."""
    outcome = {e.label: e.outcome for e in outage.ledger.entries}
    applied = {
        "update counter": outage.counter_params.get("OUTAGE_MARK") == MARK,
        "create during": "during" in outage.node2_pipelines,
        "close spare": SPARE not in outage.node2_pipelines,
    }
    assert outage.counter_params, "node 1 lost the counting pipeline"
    for label, done in applied.items():
        if outcome[label] == "confirmed":
            assert done, (label, outage.counter_params, outage.node2_pipelines)
        elif outcome[label] == "raised":
            assert not done, (label, outage.counter_params, outage.node2_pipelines)
    assert "after" not in outage.node2_pipelines  # created and closed after the outage


def test_payloads_published_while_connected_are_all_delivered(outage: OutageRun) -> None:
    before = set(range(1, outage.last_seq_before_outage + 1))
    assert before <= outage.received, sorted(before - outage.received)
    after = set(range(outage.first_seq_after_reconnect, outage.last_seq + 1))
    assert after <= outage.received, sorted(after - outage.received)
    assert outage.first_seq_after_reconnect > outage.last_seq_before_outage


def test_payload_loss_is_confined_to_the_outage(outage: OutageRun) -> None:
    """Only payloads the node published between the last one waited for before the kill and the
    first one the session received after its reconnect may be missing (MQTT clean session /
    AMQP exclusive queues: the broker keeps nothing for a subscriber that is not there)."""
    window = set(range(outage.last_seq_before_outage + 1, outage.first_seq_after_reconnect))
    assert outage.missing <= window, (sorted(outage.missing), min(window, default=None), max(window, default=None))
    counting = outage.node_counters[NODES[0]]
    assert counting["payloads"] >= outage.last_seq  # the node's own count covers what it numbered


def test_payload_loss_is_visible_in_a_session_counter(outage: OutageRun) -> None:
    assert outage.session_stats.get("missed_payloads") == outage.detectable_gaps, (
        outage.detectable_gaps, outage.session_stats)


# ----------------------------------------------------------------------------- one lost command
class LostCommandConfirmed(AssertionError):
    """The session reported a command confirmed that its node never received."""


@pytest.fixture(params=SHARED_KINDS)
def shared(request: pytest.FixtureRequest) -> Iterator[SharedBroker]:
    """A shared broker (``mqtt_url`` / ``amqp_url``) with a root of this test's own."""
    yield from shared_broker(request)


def test_a_command_lost_in_transit_is_not_reported_confirmed(shared: SharedBroker) -> None:
    """Deterministic: the fault plan drops the session's first update before it reaches the broker."""
    node_id = "sim-node-1"
    with SimulatedNetwork([node_id], seed=8, profile=shared.profile, broker=shared.url,
                          heartbeat_interval=HEARTBEAT_INTERVAL) as net:
        # net.session(): the session's transport passes the network's fault plan
        session = net.session(identity=Identity.generate(), command_timeout=COMMAND_TIMEOUT)
        try:
            session.connect()
            pipe = session.create_pipeline(e2id=node_id, name="marked", data_source="Void", wait=WAIT)
            instance = pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c1",
                                                  params={"PROCESS_DELAY": 1})
            assert instance.confirmation.wait(WAIT)
            drop = net.faults.drop(topic=shared.profile.config(node_id), count=1)
            lost = instance.update_instance_config(lost_mark=1)
            assert drop.applied == 1  # the update never left the session's transport
            applied = instance.update_instance_config(applied_mark=1)
            assert applied.wait(WAIT), applied
            with net.lock:
                params = instance_params(net.nodes[node_id].pipelines.get("marked"), "c1") or {}
            assert params.get("APPLIED_MARK") == 1 and "LOST_MARK" not in params, params
            assert session.wait(lambda: lost.done, COMMAND_TIMEOUT + WAIT)
            if lost.ok:
                raise LostCommandConfirmed(f"{lost!r}, although the node never got it: {params}")
        finally:
            session.close()
