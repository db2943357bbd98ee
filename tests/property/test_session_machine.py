"""A hypothesis state machine driving a Session against a simulated network.

Rules create and close pipelines, start and stop instances, attach to a
pipeline another client created, let time pass,
crash and restart nodes and inject forged or malformed messages. Invariants,
checked against a model after every step:

* the session's online set is exactly the running nodes once enough time has
  passed for the difference to be unambiguous;
* the pipelines the nodes hold are the ones the model says (commands are
  waited on, so a confirmed command is applied; a restarted node reloads
  the pipelines it had stored, as a real node does);
* each instance callback got exactly the payloads its node published for that
  instance (compared by ``EE_MESSAGE_ID`` with a raw sniffer on the hub);
* no user callback raised, and nothing raised out of the session.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pye2 import Session
from pye2.wire import Identity, sign_message
from pye2_transport_memory import SimulatedNetwork

NODES = ["n1", "n2", "n3"]
PIPES = ["p1", "p2"]
INSTANCES = ["i1", "i2"]
ONLINE_TIMEOUT = 60.0


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = SimulatedNetwork(nodes=NODES, seed=5).start()
        self.sniffed: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        sniffer = self.net.transport()
        sniffer.connect()
        sniffer.subscribe(self.net.profile.payloads, self._sniff)
        self.sess = Session(transport=self.net.transport(), clock=self.net.clock, identity=Identity.generate(),
                            name="machine")
        self.sess.connect()
        self.sess.sleep(11)
        self.running = set(NODES)
        self.down_since: dict[str, float] = {}
        self.up_since: dict[str, float] = {n: self.net.clock.time() for n in NODES}
        self.model: dict[tuple[str, str], set[str]] = {}
        self.handles: dict[tuple[str, str], Any] = {}
        self.received: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        # pipelines another client created, which this session may attach to
        self.other = Session(transport=self.net.transport(), clock=self.net.clock, identity=Identity.generate(),
                             name="other")
        self.other.connect()
        self.external: set[str] = set()
        self.attached: dict[str, set[str]] = {}  # node -> sniffed ids already there when attaching

    def _sniff(self, delivery: Any) -> None:
        try:
            msg = json.loads(delivery.body)
        except ValueError:
            return  # injected garbage
        if msg.get("SIGNATURE") == "SIMPLE_COUNTER" and msg.get("EE_SENDER") and "EE_HASH" in msg \
                and not str(msg.get("EE_MESSAGE_ID", "")).startswith("fake-"):
            self.sniffed[(msg["EE_ID"], msg["STREAM"], msg["INSTANCE_ID"])].add(msg["EE_MESSAGE_ID"])

    def teardown(self) -> None:
        self.other.close()
        self.sess.close()
        self.net.stop()

    # -- rules ---------------------------------------------------------------------------------
    @rule(seconds=st.floats(0.5, 40))
    def let_time_pass(self, seconds: float) -> None:
        self.sess.sleep(seconds)

    @precondition(lambda self: len(self.running) > 1)
    @rule(node=st.sampled_from(NODES))
    def crash(self, node: str) -> None:
        if node in self.running:
            self.net.nodes[node].crash()
            self.running.discard(node)
            self.down_since[node] = self.net.clock.time()

    @rule(node=st.sampled_from(NODES))
    def restart(self, node: str) -> None:
        if node not in self.running:
            self.net.nodes[node].restart()
            self.net.advance(0.5)
            self.running.add(node)
            self.up_since[node] = self.net.clock.time()

    def _live(self, keys: Any) -> list[Any]:
        return sorted(k for k in keys if k[0] in self.running)

    @rule(node=st.sampled_from(NODES), name=st.sampled_from(PIPES))
    def create_pipeline(self, node: str, name: str) -> None:
        if node not in self.running or (node, name) in self.model:
            return
        pipe = self.sess.create_pipeline(e2id=node, name=name, data_source="Void")
        assert pipe.confirmation.wait(10), pipe.confirmation
        self.model[(node, name)] = set()
        self.handles[(node, name)] = pipe

    @rule(data=st.data(), instance=st.sampled_from(INSTANCES))
    def start_instance(self, data: Any, instance: str) -> None:
        if not self._live(self.model):
            return
        key = data.draw(st.sampled_from(self._live(self.model)))
        if instance in self.model[key]:
            return
        pipe = self.handles[key]
        sink = self.received[(key[0], key[1], instance)]
        inst = pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id=instance,
                                          params={"PROCESS_DELAY": 2},
                                          on_data=lambda p, payload, _s=sink: _s.append(payload["EE_MESSAGE_ID"]))
        assert inst.confirmation.wait(10), inst.confirmation
        self.model[key].add(instance)

    @rule(data=st.data())
    def stop_instance(self, data: Any) -> None:
        candidates = sorted((k, i) for k, insts in self.model.items() for i in insts if k[0] in self.running)
        if not candidates:
            return
        key, instance = data.draw(st.sampled_from(candidates))
        assert self.handles[key].stop_plugin_instance("SIMPLE_COUNTER", instance).wait(10)
        self.model[key].discard(instance)
        self.net.advance(0.2)  # let in-flight payloads of the stopped instance land
        self._settle(key[0], key[1], instance)

    @rule(data=st.data())
    def close_pipeline(self, data: Any) -> None:
        if not self._live(self.model):
            return
        key = data.draw(st.sampled_from(self._live(self.model)))
        assert self.handles[key].close().wait(10)
        self._forget(key)

    @rule(node=st.sampled_from(NODES))
    def other_client_creates_a_pipeline(self, node: str) -> None:
        if node not in self.running or node in self.external:
            return
        pipe = self.other.create_pipeline(e2id=node, name="ext", data_source="Void")
        inst = pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="e1", params={"PROCESS_DELAY": 3})
        assert inst.confirmation.wait(10), inst.confirmation
        self.external.add(node)

    @rule(node=st.sampled_from(NODES))
    def attach(self, node: str) -> None:
        if node not in self.running or node not in self.external or node in self.attached:
            return
        self.sess.sleep(10.5)  # the next heartbeat lists the pipeline
        pipe = self.sess.attach_to_pipeline(node, "ext")
        assert not pipe.owned
        key = (node, "ext", "e1")
        self.attached[node] = set(self.sniffed.get(key, set()))
        pipe.attach_to_instance("SIMPLE_COUNTER", "e1",
                                lambda p, payload, _s=self.received[key]: _s.append(payload["EE_MESSAGE_ID"]))

    @rule(kind=st.sampled_from(["forged", "unsigned", "garbage"]))
    def inject(self, kind: str) -> None:
        raw = self.net.transport()
        raw.connect()
        body = {"EE_ID": "n1", "EE_EVENT_TYPE": "PAYLOAD", "STREAM": "p1", "SIGNATURE": "SIMPLE_COUNTER",
                "INSTANCE_ID": "i1", "EE_MESSAGE_ID": f"fake-{kind}"}
        if kind == "forged":
            wire = dict(sign_message(body, Identity.generate(), profile=self.net.profile), EE_ID="n2")
            data = json.dumps(wire).encode()
        elif kind == "unsigned":
            data = json.dumps(body).encode()
        else:
            data = b"\x00not json"
        before = sum(self.sess.stats.rejected.values())
        raw.publish(self.net.profile.payloads, data)
        raw.close()
        assert sum(self.sess.stats.rejected.values()) == before + 1

    # -- helpers ---------------------------------------------------------------------------------
    def _settle(self, node: str, pipe: str, instance: str) -> None:
        key = (node, pipe, instance)
        assert set(self.received.pop(key, [])) == self.sniffed.pop(key, set())

    def _forget(self, key: tuple[str, str]) -> None:
        for instance in self.model.pop(key, set()):
            self.net.advance(0.2)
            self._settle(key[0], key[1], instance)
        self.handles.pop(key, None)

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def online_set_matches(self) -> None:
        now = self.net.clock.time()
        online = set(self.sess.get_active_nodes())
        for node in NODES:
            if node in self.running and now - self.up_since[node] > 11:
                assert node in online, (node, online)
            if node not in self.running and now - self.down_since[node] > ONLINE_TIMEOUT + 0.5:
                assert node not in online, (node, online)

    @invariant()
    def node_pipelines_match(self) -> None:
        for node in self.running:
            held = {name for name in self.net.nodes[node].pipelines if name != "admin_pipeline"}
            expected = {name for (n, name) in self.model if n == node} | ({"ext"} if node in self.external else set())
            assert held == expected, (node, held, expected)
            for name in expected - {"ext"}:
                cfg = self.net.nodes[node].pipelines[name]
                insts = {i["INSTANCE_ID"] for p in cfg.get("PLUGINS", []) for i in p.get("INSTANCES", [])}
                assert insts == self.model[(node, name)]

    @invariant()
    def callbacks_got_exactly_their_payloads(self) -> None:
        for key, ids in list(self.received.items()):
            assert len(ids) == len(set(ids)), f"duplicate delivery to {key}"
            assert set(ids) <= self.sniffed.get(key, set()), f"payloads not meant for {key}"
        # everything sniffed for a live instance up to now has been delivered (inline dispatch)
        for (node, pipe), insts in self.model.items():
            for inst in insts:
                key = (node, pipe, inst)
                assert self.sniffed.get(key, set()) == set(self.received.get(key, [])), key

    @invariant()
    def attached_callbacks_got_everything_since_attaching(self) -> None:
        for node, before in self.attached.items():
            key = (node, "ext", "e1")
            assert set(self.received.get(key, [])) == self.sniffed.get(key, set()) - before, key

    @invariant()
    def nothing_raised(self) -> None:
        assert self.sess.stats.callback_errors == 0


SessionMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestSessionMachine = SessionMachine.TestCase
