"""The simulated network at scale, and the shortcuts that make it fast keep its behaviour.

* 100 nodes for ten simulated minutes: every node hears every other one, the
  heartbeat count is right, nothing fails (the full hour is
  ``bench/simnet_hour.py``).
* One shared subscription feeding every node's network monitor gives what
  one subscription per node gives, faults, partitions and outages included.
* What the receive cache takes as certain for bodies the nodes just signed
  (verdict, parsed message, heartbeat view and its summary) is what parsing
  and verifying the bytes gives.
* The simulator's heartbeat encoder, fast view decoder and message ids equal
  the domain's.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from typing import Any, ClassVar

import pytest
from _node_rig import CLIENT, pipeline
from hypothesis import given
from hypothesis import strategies as st

from pye2.domain.codecs.heartbeat import decode_heartbeat, encode_heartbeat
from pye2.domain.commands import build_envelope
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.errors import DecodeError
from pye2.wire import sign_message
from pye2_transport_memory._faulty import FaultyTransport
from pye2_transport_memory.network import SimulatedNetwork
from pye2_transport_memory.node._fastview import heartbeat_view
from pye2_transport_memory.node._heartbeat import encode_status
from pye2_transport_memory.node._outbound import dumps, uuid4_text
from pye2_transport_memory.node._pending import SUMMARY_KEYS, summary_of
from pye2_transport_memory.node._receive import plain_copy
from pye2_transport_memory.node.netmon import ReceiveCache
from pye2_transport_memory.node.plugin_base import InputItem, SimPlugin
from pye2_transport_memory.transport import MemoryTransport


class Recorder:
    """A client that keeps every body heard under the root, and counts heartbeats per node."""

    def __init__(self, net: SimulatedNetwork, check: bool = False) -> None:
        self.net = net
        self.bodies: list[tuple[float, str, bytes]] = []
        self.heartbeats: dict[str, int] = {}
        self.mismatches: list[str] = []
        self.checked = 0
        self.lock = threading.Lock()
        self._fresh = ReceiveCache(net.profile) if check else None
        transport = net.transport()
        transport.connect()
        transport.subscribe(f"{net.profile.root}/#", self._on)

    def _on(self, delivery: Any) -> None:
        body = delivery.body
        with self.lock:
            self.bodies.append((self.net.clock.time(), delivery.address, body))
            if delivery.address == self.net.profile.ctrl:
                try:
                    sender = json.loads(body).get("EE_ID")
                except ValueError:  # a corrupted copy (fault plan)
                    sender = None
                self.heartbeats[sender] = self.heartbeats.get(sender, 0) + 1
            if self._fresh is not None:
                self._compare(delivery.address, body)

    def _compare(self, topic: str, body: bytes) -> None:
        """The network's cache (which may have taken the body as certain) against a fresh parse."""
        assert self._fresh is not None
        cache = self.net.receive_cache
        mine, fresh = cache.message(body), self._fresh.message(body)
        if (repr(mine.message), mine.sender, mine.signed) != (repr(fresh.message), fresh.sender, fresh.signed):
            self.mismatches.append(f"verdict on {topic}: {mine} != {fresh}")
        if topic == self.net.profile.ctrl:
            view, _ = cache.heartbeat(body)
            expected, _ = self._fresh.heartbeat(body)
            if repr(view) != repr(expected):
                self.mismatches.append(f"view on {topic}")
        self.checked += 1


def command(net: SimulatedNetwork, node_id: str, action: str, payload: Any) -> None:
    """Publish a command signed by the test client, as a client SDK would."""
    node = net.nodes[node_id]
    message = build_envelope(action, payload, profile=net.profile, target_id=node.alias,
                             target_address=node.address, initiator_id="tester", session_id="s",
                             now=net.clock.time())
    client = net.transport()
    client.connect()
    target = node.address if net.profile.commands_by_address else node.alias
    client.publish(net.profile.config(target), json.dumps(sign_message(message, CLIENT, profile=net.profile)).encode())


# -- scale -----------------------------------------------------------------------------------------

def test_a_hundred_nodes_for_ten_simulated_minutes() -> None:
    with SimulatedNetwork(100, seed=0) as net:
        recorder = Recorder(net)
        net.advance(600)
        ids = net.node_ids
        # t = 0, 10, ..., 600 (the last one within float sums of the period)
        assert set(ids) == set(recorder.heartbeats)  # and no corrupted copy (None)
        assert all(60 <= recorder.heartbeats[n] <= 62 for n in ids)
        assert all(60 <= net.nodes[n].counters["heartbeats"] <= 62 for n in ids)
        for node_id in ("sim-node-1", "sim-node-50", "sim-node-100"):
            peers = net.nodes[node_id].peers()
            assert [p["alias"] for p in peers] == sorted(ids, key=str)
            assert all(p["online"] and p["allows_me"] for p in peers)
            assert sum(p["is_self"] for p in peers) == 1
        assert all(net.nodes[n].netmon.rejected == 0 and net.nodes[n].counters["in_bytes"] > 0 for n in ids)
        netmon = [json.loads(b) for _, t, b in recorder.bodies if t.endswith("/payloads") and b"NET_MON_01" in b]
        network = netmon[-1]["CURRENT_NETWORK"]
        assert set(network) == set(ids) and {v["working"] for v in network.values()} == {"ONLINE"}
        assert net.hub is not None
        assert net.hub.counters.handler_errors == 0 and net.hub.counters.interceptor_errors == 0
        assert net.clock.timer_errors == 0
        assert not any(net.nodes[n].counters["publish_errors"] for n in ids)


# -- one shared subscription == one per node --------------------------------------------------------

def _state(net: SimulatedNetwork) -> list[Any]:
    out: list[Any] = []
    for node_id, node in net.nodes.items():
        for peer in node.peers():
            peer = dict(peer)
            peer["heartbeat"] = hashlib.sha256(json.dumps(peer["heartbeat"], sort_keys=True,
                                                          default=str).encode()).hexdigest()
            out.append((node_id, json.dumps(peer, sort_keys=True, default=str)))
        out.append((node_id, [(k, r.address, r.alias, r.last_seen, r.heartbeats)
                              for k, r in node.netmon.records.items()]))
        out.append((node_id, sorted(node.counters.items()), node.netmon.rejected))
    out.append(sorted(net.faults.counters.items()))
    return out


def _eventful_run(shared: bool, profile: WireProfile) -> tuple[list[Any], list[Any]]:
    with SimulatedNetwork(6, seed=21, profile=profile, shared_monitor=shared) as net:
        recorder = Recorder(net)
        ctrl = net.profile.ctrl
        states = []
        net.advance(15)
        net.faults.drop(0.2, topic=ctrl)
        net.faults.duplicate(0.1, topic=ctrl, gap=0.3)
        net.faults.delay(3.0, p=0.1, jitter=1.0, topic=ctrl)
        net.faults.corrupt(0.05, topic=ctrl)
        net.faults.forge(0.05, mode="any", topic=ctrl)
        net.faults.partition([{"sim-node-1", "sim-node-2"}, {"sim-node-3"}], after=10, duration=40)
        net.faults.crash("sim-node-4", after=5, restart_after=30)
        net.faults.silence("sim-node-5", after=20, duration=25)
        net.advance(35)
        states.append(_state(net))
        outage = net.nodes["sim-node-6"].transport
        assert isinstance(outage, FaultyTransport) and isinstance(outage.inner, MemoryTransport)
        outage.inner.simulate_disconnect()
        net.advance(15)
        outage.inner.simulate_reconnect()
        net.nodes["sim-node-2"].restart(7.0)
        net.advance(40)
        states.append(_state(net))
        net.faults.clear()
        net.advance(30)
        states.append(_state(net))
        return [(when, topic, body) for when, topic, body in recorder.bodies], states


@pytest.mark.parametrize("profile", [AIXP, RATIO1], ids=["aixp", "ratio1"])
def test_the_shared_monitor_changes_nothing_a_node_sees(profile: WireProfile) -> None:
    shared_bodies, shared_states = _eventful_run(True, profile)
    own_bodies, own_states = _eventful_run(False, profile)
    assert len(shared_bodies) == len(own_bodies) > 50
    assert shared_bodies == own_bodies  # byte for byte: IN_KB, NET_MON_01 and all
    assert shared_states == own_states
    faults = dict(shared_states[-1][-1])  # the run exercised what it should
    assert faults.get("partitioned", 0) > 0 and faults.get("silenced", 0) > 0 and faults.get("restarted") == 1
    assert faults.get("corrupted", 0) + faults.get("forged", 0) > 0 and faults.get("dropped", 0) > 0


# -- what the receive cache takes as certain ---------------------------------------------------------

class Odd(SimPlugin):
    """Payloads whose JSON round trip is not the identity: the cache must parse them."""

    SIGNATURE = "ODD_VALUES"
    DEFAULTS: ClassVar[dict[str, Any]] = {**SimPlugin.DEFAULTS, "PROCESS_DELAY": 1, "ALLOW_EMPTY_INPUTS": True}

    def process(self, inputs: list[InputItem]) -> list[dict[str, Any]]:
        """NaN, an infinity, a tuple (one payload each), then -0.0, big and small numbers, nesting."""
        return [{"NAN": math.nan}, {"INF": -math.inf}, {"TUPLE": (1, "a")},
                {"ZERO": -0.0, "BIG": 2**63 - 1, "TINY": 5e-324, "NEST": {"A": [1.5, None, True, {"B": "\u00e9"}]}}]


@pytest.mark.parametrize(("profile", "version"), [(AIXP, "v2"), (RATIO1, "v2"), (AIXP, "v1")])
def test_what_the_cache_takes_as_certain_is_what_parsing_gives(profile: WireProfile, version: str) -> None:
    with SimulatedNetwork(4, seed=5, profile=profile, heartbeat_version=version, plugins=[Odd]) as net:
        recorder = Recorder(net, check=True)
        command(net, "sim-node-2", "UPDATE_CONFIG", pipeline("odd", {"INSTANCE_ID": "o", "PROCESS_DELAY": 1},
                                                              signature="ODD_VALUES"))
        command(net, "sim-node-3", "UPDATE_CONFIG", pipeline("count"))
        net.advance(45)
        assert recorder.mismatches == []
        assert recorder.checked > 100
        assert net.receive_cache.vouched > 0
        assert any(b"ODD_VALUES" in body for _, _, body in recorder.bodies)


# -- the encoder, the view decoder and ids against the domain ---------------------------------------

_STATUSES: list[dict[str, Any]] = [
    {"CURRENT_TIME": "2023-11-14 22:13:20.000000", "NR_PAYLOADS": 3, "CPU_USED": 12.5, "EE_WHITELIST": []},
    {"BIG": 2**64, "NEG": -(2**63) - 1, "TS": "20231114221320000000", "X": "12345678901234567890123"},
    {"NAN": math.nan, "INF": math.inf, "S": "\ud800", "U": "\u00e9\u4e2d", "L": [1, [2, [3, {"a": None}]]]},
    {"F": [1e300, -0.0, 0.1, 1.2345678901234567e20, 1.12345678901234567890123], "B": [True, False]},
    {"NR_INFERENCES": 1, "NR_PAYLOADS": 2, "NR_STREAMS_DATA": 3, "EE_ID": "renamed", "DEVICE_STATUS": "online"},
]


@pytest.mark.parametrize("status", _STATUSES)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_encode_status_is_the_domain_encoder(status: dict[str, Any], version: str) -> None:
    body, text = encode_status(status, version)
    assert repr(body) == repr(encode_heartbeat(status, version=version))
    assert (text is None) == (version == "v1")


@pytest.mark.parametrize("status", _STATUSES)
def test_the_fast_view_is_the_domain_view(status: dict[str, Any]) -> None:
    body, text = encode_status(status, "v2")
    message = {**body, "EE_ID": "sim-node-1", "EE_SENDER": "aixp_x"}
    expected = repr(decode_heartbeat(message))
    assert repr(heartbeat_view(message)) == expected
    assert text is not None and repr(heartbeat_view(message, text)) == expected
    summary = summary_of(message, status)
    view = decode_heartbeat(message)
    if summary is not None:
        assert repr(summary) == repr({k: view[k] for k in SUMMARY_KEYS if k in view})


def test_the_fast_view_fails_where_the_domain_fails() -> None:
    for broken in ({"HEARTBEAT_VERSION": "v2", "ENCODED_DATA": "not base64!"},
                   {"HEARTBEAT_VERSION": "v2", "ENCODED_DATA": 5},
                   {"HEARTBEAT_VERSION": "v3"}):
        with pytest.raises(DecodeError) as domain:
            decode_heartbeat(broken)
        with pytest.raises(DecodeError) as fast:
            heartbeat_view(broken)
        assert type(fast.value) is type(domain.value) and str(fast.value) == str(domain.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), _json, max_size=6))
def test_plain_copy_is_a_json_round_trip_or_nothing(message: dict[str, Any]) -> None:
    copied = plain_copy(message)
    if copied is not None:
        assert repr(copied) == repr(json.loads(dumps(message)))
        assert copied == message


@given(st.dictionaries(st.sampled_from(SUMMARY_KEYS + ("OTHER",)), _json, max_size=8))
def test_a_summary_is_the_view_s_fields(status: dict[str, Any]) -> None:
    body, _ = encode_status(status, "v2")
    message = {**body, "EE_ID": "sim-node-1", "DEVICE_STATUS": "outer"}
    summary = summary_of(message, status)
    view = decode_heartbeat(message)
    if summary is not None:
        assert repr(summary) == repr({k: view[k] for k in SUMMARY_KEYS if k in view})


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_message_ids_are_version_4_uuids(bits: int) -> None:
    assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
