"""SimulatedNetwork: determinism from the seed, faults, node failures, scale on the virtual clock, brokers."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import threading
import uuid
from typing import Any

import pytest
from _node_rig import CLIENT, pipeline

from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.commands import build_envelope
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.wire import sign_message
from pye2_transport_memory import FaultPlan, SimulatedNetwork
from pye2_transport_memory.cli import add_sim_arguments, run_sim


class Sniffer:
    """A client on the network that records (time, topic, message) of everything."""

    def __init__(self, net: SimulatedNetwork, root: str | None = None) -> None:
        self.net = net
        self.seen: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.transport = net.transport()
        self.transport.connect()
        self.transport.subscribe(f"{root or net.profile.root}/#", self._on)

    def _on(self, delivery: Any) -> None:
        try:
            message = json.loads(delivery.body)
        except ValueError:
            message = {"_raw": True}
        with self.lock:
            self.seen.append((self.net.clock.time(), delivery.address, message))

    def kind(self, event: str, sender: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return [m for _, _, m in self.seen[since:] if m.get("EE_EVENT_TYPE") == event
                    and (sender is None or m.get("EE_ID") == sender)]

    def mark(self) -> int:
        return len(self.seen)

    def command(self, node_id: str, action: str, payload: Any = None, *, signer: Any = CLIENT,
                compact: bool = False) -> None:
        node = self.net.nodes[node_id]
        message = build_envelope(action, payload, profile=self.net.profile, target_id=node.alias,
                                 target_address=node.address, initiator_id="tester", session_id="s",
                                 now=self.net.clock.time())
        message = sign_message(message, signer, profile=self.net.profile)
        body = json.dumps(message, separators=(",", ":") if compact else None).encode()
        target = node.address if self.net.profile.commands_by_address else node.alias
        self.transport.publish(self.net.profile.config(target), body)


def digest(sniffer: Sniffer) -> str:
    h = hashlib.sha256()
    for when, topic, message in sniffer.seen:
        if topic.endswith("/config"):  # the test client signs with randomised ECDSA; the nodes do not
            message = {k: v for k, v in message.items() if k != "EE_SIGN"}
        h.update(f"{when}|{topic}|{json.dumps(message, sort_keys=True)}\n".encode())
    return h.hexdigest()


@pytest.fixture()
def net() -> Any:
    network = SimulatedNetwork(3, seed=1)
    yield network
    network.stop()


# -- identity and determinism ---------------------------------------------------------------

def test_node_ids_and_keys_follow_the_seed() -> None:
    a, b, c = SimulatedNetwork(3, seed=4), SimulatedNetwork(3, seed=4), SimulatedNetwork(["x", "y"], seed=5)
    assert a.node_ids == ["sim-node-1", "sim-node-2", "sim-node-3"] and c.node_ids == ["x", "y"]
    assert a.addresses == b.addresses
    assert set(a.addresses.values()).isdisjoint(SimulatedNetwork(3, seed=5).addresses.values())
    assert all(addr.startswith("aixp_") for addr in a.addresses.values())
    assert all(addr.startswith("0xai_") for addr in SimulatedNetwork(1, profile=RATIO1).addresses.values())


def run_scenario(seed: int, profile: WireProfile = AIXP) -> str:
    with SimulatedNetwork(3, seed=seed, profile=profile) as network:
        sniffer = Sniffer(network)
        network.advance(5)
        code = "plugin.int_cache['n'] += 1\n_result = plugin.np.random.randint(1000) + plugin.int_cache['n']"
        from pye2.domain.codecs.code import code_to_base64

        sniffer.command("sim-node-2", "UPDATE_CONFIG", pipeline(
            "work", {"INSTANCE_ID": "w", "CODE": code_to_base64(code), "PROCESS_DELAY": 2},
            signature="CUSTOM_EXEC_01"))
        network.faults.drop(0.3, topic=f"{profile.root}/ctrl")
        network.advance(120)
        return digest(sniffer)


@pytest.mark.parametrize("profile", [AIXP, RATIO1], ids=["aixp", "ratio1"])
def test_same_seed_same_message_sequence(profile: WireProfile) -> None:
    first = run_scenario(11, profile)
    assert first == run_scenario(11, profile)
    assert first != run_scenario(12, profile)


# -- network monitor and supervisor ----------------------------------------------------------

def test_nodes_see_each_other_and_the_supervisor_publishes_the_network(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    net.advance(25)
    peers = net.nodes["sim-node-2"].peers()
    assert [p["alias"] for p in peers] == net.node_ids
    assert all(p["online"] and p["allows_me"] for p in peers)
    assert [p["is_self"] for p in peers] == [False, True, False]
    netmon = [m for m in sniffer.kind("PAYLOAD") if m.get("SIGNATURE") == "NET_MON_01"]
    assert netmon and {m["EE_ID"] for m in netmon} == {"sim-node-1"}
    network = netmon[-1]["CURRENT_NETWORK"]
    assert set(network) == set(net.node_ids) and {v["working"] for v in network.values()} == {"ONLINE"}
    assert netmon[-1]["IS_SUPERVISOR"] is True and netmon[-1]["STREAM"] == "admin_pipeline"
    assert decode_heartbeat(sniffer.kind("HEARTBEAT", "sim-node-1")[0])["EE_IS_SUPER"] is True


def test_plugin_command_to_a_peer_goes_through_the_broker(net: SimulatedNetwork) -> None:
    from pye2.domain.codecs.code import code_to_base64

    sniffer = Sniffer(net)
    net.start()
    net.advance(1)
    inner = code_to_base64("_result = 'remote'")
    code = code_to_base64(
        "if plugin.int_cache['sent'] == 0:\n"
        "    plugin.int_cache['sent'] = 1\n"
        "    workers = [w for w in plugin.deapi_get_wokers(3) if w != plugin.ee_id]\n"
        "    for w in workers:\n"
        "        plugin.cmdapi_start_simple_custom_pipeline(base64code=plugin.cfg_inner, dest=w, name='job')\n"
        "    _result = workers\n")
    sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline(
        "boss", {"INSTANCE_ID": "b", "CODE": code, "INNER": inner, "PROCESS_DELAY": 1}, signature="CUSTOM_EXEC_01"))
    net.advance(3)
    assert "job" in net.nodes["sim-node-2"].pipelines and "job" in net.nodes["sim-node-3"].pipelines
    assert net.nodes["sim-node-2"].pipelines["job"]["INITIATOR_ID"] == "sim-node-1"
    assert net.nodes["sim-node-2"].pipelines["job"]["INITIATOR_ADDR"] == net.nodes["sim-node-1"].address
    sent = [m for _, t, m in sniffer.seen if t == "lummetry/sim-node-2/config"]
    assert sent and sent[0]["EE_SENDER"] == net.nodes["sim-node-1"].address
    assert {m["EE_ID"] for m in sniffer.kind("PAYLOAD") if m.get("EXEC_RESULT") == "remote"} == \
        {"sim-node-2", "sim-node-3"}


def test_iot_listener_hears_payloads_of_every_node(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline(
        "listen", {"INSTANCE_ID": "echo"}, signature="SIMPLE_ECHO", type_="IotQueueListener",
        PATH_FILTER=[None, "count", None, None]))
    sniffer.command("sim-node-2", "UPDATE_CONFIG", pipeline("count", {"INSTANCE_ID": "c", "PROCESS_DELAY": 1}))
    sniffer.command("sim-node-3", "UPDATE_CONFIG", pipeline("other", {"INSTANCE_ID": "o", "PROCESS_DELAY": 1}))
    net.advance(5)
    echoes = [m for m in sniffer.kind("PAYLOAD", "sim-node-1") if "ECHO" in m]
    assert echoes and {e["ECHO"]["EE_ID"] for e in echoes} == {"sim-node-2"}
    assert {e["ECHO"]["STREAM"] for e in echoes} == {"count"}


# -- message faults ---------------------------------------------------------------------------

def test_drop_by_topic_and_node(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.faults.drop(topic="lummetry/ctrl", node="sim-node-2")
    net.start()
    net.advance(30)
    assert sniffer.kind("HEARTBEAT", "sim-node-2") == []
    assert len(sniffer.kind("HEARTBEAT", "sim-node-1")) == 4
    assert net.faults.counters["dropped"] == 4


def test_duplicate(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.faults.duplicate(topic="lummetry/ctrl", count=2, gap=0.5)
    net.start()
    ids = [m["EE_MESSAGE_ID"] for m in sniffer.kind("HEARTBEAT")]
    net.advance(1)
    ids = [m["EE_MESSAGE_ID"] for m in sniffer.kind("HEARTBEAT")]
    assert len(ids) == 5 and len(set(ids)) == 3 and net.faults.counters["duplicated"] == 2


def test_reorder_lets_later_messages_overtake(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    net.advance(5)
    net.faults.reorder(topic="lummetry/ctrl", node="sim-node-1", count=1, hold=0.5)
    mark = sniffer.mark()
    net.advance(6)
    order = [m["EE_ID"] for m in sniffer.kind("HEARTBEAT", since=mark)]
    assert order == ["sim-node-2", "sim-node-3", "sim-node-1"]
    assert net.faults.counters["reordered"] == 1


def test_delay(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    net.faults.delay(4.0, topic="lummetry/ctrl", node="sim-node-3", count=1)
    net.advance(20)
    times = [t for t, _, m in sniffer.seen if m.get("EE_EVENT_TYPE") == "HEARTBEAT" and m["EE_ID"] == "sim-node-3"]
    start = net.clock.time() - 20
    assert [round(t - start, 3) for t in times] == [0.0, 14.0, 20.0]  # the t=10 one came 4 s late


def test_corrupted_command_never_runs() -> None:
    with SimulatedNetwork(1, seed=3) as network:
        sniffer = Sniffer(network)
        network.faults.corrupt(topic="lummetry/+/config", count=1, nbytes=1)
        sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline("p"), compact=True)
        network.advance(1)
        node = network.nodes["sim-node-1"]
        assert "p" not in node.pipelines and network.faults.counters["corrupted"] == 1
        rejected = sum(node.counters[k] for k in ("rejected_malformed", "rejected_signature",
                                                   "rejected_not_for_me"))
        assert rejected == 1 and node.counters["commands_accepted"] == 0
        sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline("p"), compact=True)  # rule used up
        network.advance(1)
        assert "p" in node.pipelines


@pytest.mark.parametrize(("mode", "counter"), [("alter", "rejected_signature"),
                                               ("impersonate", "rejected_signature"),
                                               ("resign", "rejected_not_allowed")])
def test_forged_commands_are_refused(mode: str, counter: str) -> None:
    with SimulatedNetwork(1, seed=3, allow_list=[CLIENT.address(AIXP)]) as network:
        sniffer = Sniffer(network)
        network.faults.forge(mode=mode, topic="lummetry/+/config", count=1)
        sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline("p"))
        network.advance(1)
        node = network.nodes["sim-node-1"]
        refused = node.counters[counter]
        if mode == "alter":  # the altered field may be EE_ID: then the node is not even addressed
            refused += node.counters["rejected_not_for_me"]
        assert "p" not in node.pipelines and refused == 1
        assert network.faults.counters["forged"] == 1
        if mode == "resign":
            assert network.faults.forger_address is not None


def test_faults_are_reproducible_from_the_seed() -> None:
    def decisions(seed: int) -> list[int]:
        plan = FaultPlan(seed)
        plan.drop(0.5)
        return [len(plan.intercept("a/b", b"x%d" % i)) for i in range(64)]

    assert decisions(1) == decisions(1) and decisions(1) != decisions(2)
    assert 10 < decisions(1).count(0) < 54


# -- node faults ------------------------------------------------------------------------------------

def test_crash_then_restart(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    sniffer.command("sim-node-2", "UPDATE_CONFIG", pipeline("p"))
    net.advance(1)
    net.faults.crash("sim-node-2", restart_after=80)
    mark = sniffer.mark()
    assert not net.nodes["sim-node-2"].is_running
    net.advance(70)
    assert [m for _, _, m in sniffer.seen[mark:] if m.get("EE_ID") == "sim-node-2"] == []
    assert {p["alias"]: p["online"] for p in net.nodes["sim-node-1"].peers()}["sim-node-2"] is False
    net.advance(20)
    node = net.nodes["sim-node-2"]
    assert node.is_running and "p" in node.pipelines and net.faults.counters["restarted"] == 1
    assert {p["alias"]: p["online"] for p in net.nodes["sim-node-1"].peers()}["sim-node-2"] is True


def test_silent_node_keeps_working_but_nobody_hears_it(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    net.faults.silence("sim-node-3", duration=30)
    mark = sniffer.mark()
    sniffer.command("sim-node-3", "UPDATE_CONFIG", pipeline("quiet"))
    net.advance(25)
    assert "quiet" in net.nodes["sim-node-3"].pipelines
    assert [m for _, t, m in sniffer.seen[mark:] if m.get("EE_ID") == "sim-node-3" and "config" not in t] == []
    assert net.faults.counters["silenced"] > 0
    net.advance(10)
    assert sniffer.kind("HEARTBEAT", "sim-node-3", since=mark)


def test_partition_and_heal(net: SimulatedNetwork) -> None:
    sniffer = Sniffer(net)
    net.start()
    net.advance(11)  # everybody has heard everybody
    net.faults.partition([{"sim-node-1"}, {"sim-node-2", "sim-node-3", "client"}])
    mark = sniffer.mark()
    sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline("unreachable"))
    net.advance(70)
    assert "unreachable" not in net.nodes["sim-node-1"].pipelines
    assert sniffer.kind("HEARTBEAT", "sim-node-1", since=mark) == []
    assert {p["alias"]: p["online"] for p in net.nodes["sim-node-2"].peers()}["sim-node-1"] is False
    assert {p["alias"]: p["online"] for p in net.nodes["sim-node-1"].peers()}["sim-node-2"] is False
    assert net.faults.counters["partitioned"] > 0
    net.faults.heal()
    net.advance(11)
    assert {p["alias"]: p["online"] for p in net.nodes["sim-node-2"].peers()}["sim-node-1"] is True
    assert sniffer.kind("HEARTBEAT", "sim-node-1", since=mark)


def test_one_simulated_hour_of_ten_nodes() -> None:
    with SimulatedNetwork(10, seed=2) as network:
        sniffer = Sniffer(network)
        network.advance(3600)
        per_node = {n: len(sniffer.kind("HEARTBEAT", n)) for n in network.node_ids}
        # t = 0, 10, ..., 3590 and maybe 3600 (float sums of the period decide the last one)
        assert set(per_node.values()) <= {360, 361}
        assert all(p["online"] for p in network.nodes["sim-node-10"].peers())
        assert network.receive_cache.hits > network.receive_cache.misses  # each body verified once


def test_a_pye2_session_drives_the_network() -> None:
    with SimulatedNetwork(2, seed=6) as network:
        session = network.session(name="tester")
        session.connect()
        assert session.wait_for_node("sim-node-2", 30)
        results: list[Any] = []
        pipe = session.create_pipeline(e2id="sim-node-2", name="from_session", wait=True)
        assert "from_session" in network.nodes["sim-node-2"].pipelines
        pipe.start_custom_plugin(instance_id="c1", plain_code="_result = 6 * 7", params={},
                                 on_data=lambda _pipe, data: results.append(data))
        network.advance(3)
        assert results and set(results) == {42}
        pipe.close()
        network.advance(1)
        assert "from_session" not in network.nodes["sim-node-2"].pipelines
        session.close()


# -- wall clock and real brokers ------------------------------------------------------------------

def unique_profile(base: WireProfile = AIXP) -> WireProfile:
    return base.with_root(f"pye2sim{uuid.uuid4().hex[:8]}")


def test_realtime_network_on_the_memory_hub() -> None:
    profile = unique_profile()
    with SimulatedNetwork(2, realtime=True, heartbeat_interval=0.2, profile=profile) as network:
        sniffer = Sniffer(network)
        assert network.run_until(lambda: len(sniffer.kind("HEARTBEAT")) >= 4, timeout=20)
        with pytest.raises(ValueError):
            network.advance(1)


@pytest.mark.parametrize("broker", [pytest.param("mqtt_url", marks=pytest.mark.mqtt),
                                    pytest.param("amqp_url", marks=pytest.mark.amqp)])
def test_nodes_on_a_real_broker(broker: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(broker)
    profile = unique_profile()
    with SimulatedNetwork(2, broker=url, heartbeat_interval=0.5, profile=profile) as network:
        sniffer = Sniffer(network)
        assert network.run_until(lambda: {m["EE_ID"] for m in sniffer.kind("HEARTBEAT")} == set(network.node_ids),
                                 timeout=30)
        sniffer.command("sim-node-1", "UPDATE_CONFIG", pipeline("over_broker"))
        assert network.run_until(lambda: "over_broker" in network.nodes["sim-node-1"].pipelines, timeout=30)
        assert network.run_until(lambda: any(m.get("COUNTER") for m in sniffer.kind("PAYLOAD")), timeout=30)


def test_cli_hosts_nodes_until_stopped() -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args(["--nodes", "2", "--broker", "memory://default", "--heartbeat-interval", "5"])
    stop = threading.Event()
    stop.set()
    out = io.StringIO()
    assert run_sim(args, stop=stop, out=out) == 0
    text = out.getvalue()
    assert "sim-node-1" in text and "sim-node-2" in text and "aixp_" in text


def test_cli_reports_an_unreachable_broker(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args(["--broker", "nosuchscheme://x"])
    assert run_sim(args, stop=threading.Event(), out=io.StringIO()) == 1
    assert "error" in capsys.readouterr().err
