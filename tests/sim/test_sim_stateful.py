"""Random sequences of commands, faults and clock advances against a model of what nodes hold."""

from __future__ import annotations

import json
from typing import Any

from _node_rig import CLIENT, STRANGER
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.commands import build_envelope
from pye2.domain.profiles import AIXP
from pye2.wire import sign_message
from pye2_transport_memory import SimulatedNetwork

NODES = ["sim-node-1", "sim-node-2"]
nodes = st.sampled_from(NODES)
names = st.sampled_from(["a", "b", "c"])
instance_sets = st.frozensets(st.sampled_from(["i1", "i2", "i3"]), min_size=1)


class SimMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = SimulatedNetwork(NODES, seed=0, supervisor=False)
        self.net.start()
        self.client = self.net.transport()
        self.client.connect()
        self.model: dict[str, dict[str, frozenset[str]]] = {n: {} for n in NODES}

    # -- helpers -------------------------------------------------------------------------
    def _message(self, node_id: str, action: str, payload: Any, signer: Any = CLIENT) -> dict[str, Any]:
        node = self.net.nodes[node_id]
        message = build_envelope(action, payload, profile=AIXP, target_id=node.alias, target_address=node.address,
                                 initiator_id="model", session_id="s", now=self.net.clock.time())
        return sign_message(message, signer, profile=AIXP)

    def _publish(self, node_id: str, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(AIXP.config(node_id), data)
        self.net.advance(0.3)

    @staticmethod
    def _config(name: str, instances: frozenset[str], delay: int = 1) -> dict[str, Any]:
        return {"NAME": name, "TYPE": "Void", "PLUGINS": [{"SIGNATURE": "SIMPLE_COUNTER", "INSTANCES": [
            {"INSTANCE_ID": i, "PROCESS_DELAY": delay} for i in sorted(instances)]}]}

    # -- commands that change state ----------------------------------------------------------
    @rule(node=nodes, name=names, instances=instance_sets)
    def update_config(self, node: str, name: str, instances: frozenset[str]) -> None:
        self._publish(node, self._message(node, "UPDATE_CONFIG", self._config(name, instances)))
        self.model[node][name] = instances

    @rule(node=nodes, name=names)
    def archive(self, node: str, name: str) -> None:
        self._publish(node, self._message(node, "ARCHIVE_CONFIG", name))
        self.model[node].pop(name, None)

    @rule(node=nodes)
    def delete_all(self, node: str) -> None:
        self._publish(node, self._message(node, "DELETE_CONFIG_ALL", None))
        self.model[node].clear()

    @precondition(lambda self: any(self.model.values()))
    @rule(data=st.data(), delay=st.integers(1, 5))
    def update_instance(self, data: st.DataObject, delay: int) -> None:
        node = data.draw(st.sampled_from([n for n in NODES if self.model[n]]))
        name = data.draw(st.sampled_from(sorted(self.model[node])))
        iid = data.draw(st.sampled_from(sorted(self.model[node][name])))
        self._publish(node, self._message(node, "UPDATE_PIPELINE_INSTANCE", {
            "NAME": name, "SIGNATURE": "SIMPLE_COUNTER", "INSTANCE_ID": iid,
            "INSTANCE_CONFIG": {"PROCESS_DELAY": delay}}))
        stored = self.net.nodes[node].pipelines[name]["PLUGINS"][0]["INSTANCES"]
        assert [i["PROCESS_DELAY"] for i in stored if i["INSTANCE_ID"] == iid] == [delay]

    # -- commands that must not change state ---------------------------------------------------
    @rule(node=nodes, name=names)
    def forged(self, node: str, name: str) -> None:
        message = self._message(node, "UPDATE_CONFIG", self._config(name, frozenset({"i1"})))
        message["PAYLOAD"]["NAME"] = name + "x"
        self._publish(node, message)

    @rule(node=nodes, name=names)
    def impersonated(self, node: str, name: str) -> None:
        message = self._message(node, "ARCHIVE_CONFIG", name, signer=STRANGER)
        message["EE_SENDER"] = CLIENT.address(AIXP)
        self._publish(node, message)

    @rule(node=nodes, body=st.binary(max_size=64))
    def garbage(self, node: str, body: bytes) -> None:
        self._publish(node, body)

    @rule(node=nodes, name=names)
    def dropped(self, node: str, name: str) -> None:
        self.net.faults.drop(topic=AIXP.config(node), count=1)
        self._publish(node, self._message(node, "UPDATE_CONFIG", self._config(name, frozenset({"i2"}))))

    @rule(node=nodes, name=names)
    def partitioned(self, node: str, name: str) -> None:
        self.net.faults.partition([{node}])
        self._publish(node, self._message(node, "ARCHIVE_CONFIG", name))
        self.net.faults.heal()

    # -- time and failures -------------------------------------------------------------------------
    @rule(seconds=st.floats(0.1, 30))
    def advance(self, seconds: float) -> None:
        self.net.advance(seconds)

    @rule(node=nodes)
    def crash_and_restart(self, node: str) -> None:
        self.net.faults.crash(node, restart_after=5)
        assert not self.net.nodes[node].is_running
        self.net.advance(5.5)

    @rule(node=nodes)
    def restart_command(self, node: str) -> None:
        self._publish(node, self._message(node, "RESTART", None))
        self.net.advance(6)

    # -- invariants -------------------------------------------------------------------------------------
    @invariant()
    def nodes_hold_what_the_model_says(self) -> None:
        for node_id, node in self.net.nodes.items():
            assert node.is_running
            expected = self.model[node_id]
            assert set(node.pipelines) == {"admin_pipeline", *expected}
            assert set(node.disk) == set(expected)
            running = {(p, iid) for (p, _, iid) in node.instances if p != "admin_pipeline"}
            assert running == {(p, i) for p, insts in expected.items() for i in insts}

    @invariant()
    def heartbeats_report_what_the_node_holds(self) -> None:
        for node_id, node in self.net.nodes.items():
            view = decode_heartbeat(node.send_heartbeat())
            expected = self.model[node_id]
            assert {c["NAME"] for c in view["CONFIG_STREAMS"]} == {"admin_pipeline", *expected}
            active = {(a["STREAM_ID"], a["INSTANCE_ID"]) for a in view["ACTIVE_PLUGINS"]
                      if a["STREAM_ID"] != "admin_pipeline"}
            assert active == {(p, i) for p, insts in expected.items() for i in insts}
            assert any(p["is_self"] and p["online"] for p in node.peers())

    def teardown(self) -> None:
        self.net.stop()


TestSimMachine = SimMachine.TestCase
TestSimMachine.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
