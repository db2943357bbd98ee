"""Simulated nodes accept commands only from their allow-list, say so truthfully, and verify in their signing mode."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pye2 import Session
from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.profiles import RATIO1
from pye2.errors import CommandFailed, CommandTimeout, ConfigError
from pye2.wire import Identity, sign_message
from pye2_transport_memory import SimulatedNetwork
from pye2_transport_memory.node._allow import AllowList, parse_allow_text
from pye2_transport_memory.transport import MemoryTransport


def _outsider(net: Any, identity: Identity, **options: Any) -> Session:
    """A session on the network's hub whose transport the network did not make (someone else on the broker)."""
    sess = Session(transport=MemoryTransport(net.hub, name="outsider"), clock=net.clock, profile=net.profile,
                   identity=identity, command_timeout=5, **options)
    sess.connect()
    assert sess.wait_for_node(net.node_ids[0], 30)
    return sess


def _heartbeat(net: Any, node_id: str) -> dict[str, Any]:
    last = net.nodes[node_id].last_heartbeat
    assert last is not None
    return decode_heartbeat(last)


def test_by_default_only_the_networks_sessions_may_command_its_nodes(caplog: pytest.LogCaptureFixture) -> None:
    with SimulatedNetwork(nodes=2, seed=4) as net:
        node = net.node_ids[0]
        mine = net.session(name="mine")
        mine.connect()
        assert mine.wait_for_node(node, 30)
        mine.create_pipeline(e2id=node, name="ok", wait=True)
        stranger = Identity.generate()
        other = _outsider(net, stranger)
        notes: list[Any] = []
        other.dispatcher.add("notification", ("*",), lambda s, e2id, data: notes.append(data))
        with caplog.at_level(logging.WARNING, logger="pye2_transport_memory"), pytest.raises(CommandTimeout):
            other.create_pipeline(e2id=node, name="nope", wait=True)
        assert "nope" not in net.nodes[node].pipelines
        assert net.nodes[node].counters["rejected_not_allowed"] == 1
        assert not [n for n in notes if n.get("STREAM_NAME") == "nope" or "nope" in str(n.get("NOTIFICATION"))]
        said = [r.getMessage() for r in caplog.records if "not in its allow-list" in r.getMessage()]
        assert len(said) == 1 and stranger.address(net.profile) in said[0] and "--allow" in said[0]
        # the heartbeat tells the truth: secured, and the whitelist names the nodes and the network's session
        mine.sleep(11)
        view = _heartbeat(net, node)
        assert view["SECURED"] is True and "EE_NT_ALLOW_ANY" not in view
        assert mine.address in view["EE_WHITELIST"] and stranger.address(net.profile) not in view["EE_WHITELIST"]
        assert set(net.addresses.values()) <= set(view["EE_WHITELIST"])
        assert all(a.startswith(net.profile.address_prefix) for a in view["EE_WHITELIST"])
        other.close()
        mine.close()


def test_an_explicit_list_means_exactly_those_addresses_and_can_change_at_run_time() -> None:
    friend, stranger = Identity.generate(), Identity.generate()
    with SimulatedNetwork(nodes=1, seed=4, allow_list=[friend.address(RATIO1)]) as net:  # any prefix
        node = net.node_ids[0]
        ok = _outsider(net, friend)
        ok.create_pipeline(e2id=node, name="friend", wait=True)
        sess = net.session()  # not on the list: refused too
        sess.connect()
        sess.wait_for_node(node, 30)
        with pytest.raises(CommandTimeout):
            sess.create_pipeline(e2id=node, name="own", wait=5)
        assert _heartbeat(net, node)["EE_WHITELIST"] == [friend.address(net.profile)]
        net.set_allow_list([stranger.address(net.profile)])
        late = _outsider(net, stranger)
        late.create_pipeline(e2id=node, name="stranger", wait=True)
        with pytest.raises(CommandTimeout):
            ok.create_pipeline(e2id=node, name="friend-again", wait=5)
        with pytest.raises(ConfigError):
            net.set_allow_list(["not-an-address"])
        for s in (ok, sess, late):
            s.close()


def test_allow_any_is_an_explicit_opt_in_and_heartbeats_say_so() -> None:
    with SimulatedNetwork(nodes=1, seed=4, allow_any=True) as net:
        node = net.node_ids[0]
        anyone = _outsider(net, Identity.generate())
        anyone.create_pipeline(e2id=node, name="open", wait=True)
        anyone.sleep(11)
        view = _heartbeat(net, node)
        assert view["SECURED"] is False and view["EE_WHITELIST"] == [] and view["EE_NT_ALLOW_ANY"] is True
        anyone.close()


def test_the_allow_file_format() -> None:
    a, b = Identity.generate().address(RATIO1), Identity.generate().address(RATIO1)
    text = f"# authorized_addrs\n{a} alice\n\n  {b}   # bob\n"
    assert parse_allow_text(text) == [a, b]
    with pytest.raises(ConfigError, match="line 2"):
        parse_allow_text(f"{a}\nnot-an-address\n")
    allow = AllowList([a])
    assert allow.entries("aixp_") == ["aixp_" + a[5:]]


@pytest.mark.parametrize("eth", [True, False])
def test_both_signing_modes_of_real_nodes(eth: bool) -> None:
    with SimulatedNetwork(nodes=1, seed=4, profile="RATIO1", eth_enabled=eth) as net:
        node = net.node_ids[0]
        hb = json.loads(json.dumps(net.nodes[node].last_heartbeat))
        assert ("EE_ETH_SENDER" in hb) is eth  # a node signs the way it verifies: how a client can tell
        # a session that learns the node's mode (the default) signs the way the node verifies
        auto = net.session(command_timeout=5)
        auto.connect()
        assert auto.wait_for_node(node, 30)
        assert auto.signing_mode(node) is eth
        auto.create_pipeline(e2id=node, name="auto", wait=True)
        # commands carrying EE_ETH_* fields left out of the hash: only an ETH-mode node accepts them
        forced = net.session(command_timeout=30, eth=True)
        forced.connect()
        assert forced.wait_for_node(node, 30)
        if eth:
            forced.create_pipeline(e2id=node, name="eth", wait=True)
        else:
            start = forced.clock.time()
            with pytest.raises(CommandFailed) as err:
                forced.create_pipeline(e2id=node, name="eth", wait=True)
            assert forced.clock.time() - start <= 1.0  # the node's -5000 fails it at once, not the timeout
            assert err.value.code == -5000 and err.value.node_text.startswith("INCOMING: Received invalid command")
            assert any("Corrupted digest!" in line for line in net.nodes[node].log_lines)
            assert forced.stats.commands_failed == 1 and forced.stats.commands_timed_out == 0
        # a command signed without the ETH fields is accepted in both modes
        command = {"EE_ID": net.nodes[node].address, "ACTION": "UPDATE_CONFIG", "INITIATOR_ID": "plain",
                   "SESSION_ID": "plain", "EE_DEST": net.nodes[node].address,
                   "PAYLOAD": {"NAME": "plain", "TYPE": "Void", "PLUGINS": [], "INITIATOR_ID": "plain"}}
        signer = Identity.generate()
        net.allow_client(signer.address(net.profile))
        raw = net.transport()
        raw.connect()
        raw.publish(net.profile.config(net.nodes[node].address),
                    json.dumps(sign_message(command, signer, profile=net.profile.with_eth(False))).encode())
        auto.sleep(1)
        assert "plain" in net.nodes[node].pipelines
        auto.close()
        forced.close()
