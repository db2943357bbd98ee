"""Commands fail at once, with the node's words: -5000, not allow-listed, timeouts that explain; signing modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pye2.domain.profiles import AIXP
from pye2.errors import CommandFailed, CommandTimeout, ConfigError, NotAllowed
from pye2.service.settings import eth_setting
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork


def test_a_session_not_allow_listed_gets_not_allowed_within_one_heartbeat() -> None:
    stranger = Identity.generate()
    with SimulatedNetwork(nodes=1, seed=6, allow_list=[Identity.generate().address(AIXP)],
                          heartbeat_interval=10) as net:
        node = net.node_ids[0]
        sess = net.session(identity=stranger, command_timeout=60)
        sess.connect()
        assert sess.wait_for_node(node, 30)
        start = sess.clock.time()
        with pytest.raises(NotAllowed) as err:
            sess.create_pipeline(e2id=node, name="nope", wait=True)
        assert sess.clock.time() - start <= 10.0 + 0.5
        assert isinstance(err.value, CommandFailed)
        assert err.value.address == sess.address == sess.get_client_address()
        assert sess.address in str(err.value) and "authorized_addrs" in str(err.value)
        assert sess.stats.commands_failed == 1
        sess.close()


def test_a_timeout_says_what_the_session_can_see() -> None:
    with SimulatedNetwork(nodes=1, seed=6) as net:
        node = net.node_ids[0]
        sess = net.session(command_timeout=5)
        sess.connect()
        assert sess.wait_for_node(node, 30)
        net.faults.drop(topic=f"{net.profile.root}/+/config")
        with pytest.raises(CommandTimeout) as err:
            sess.create_pipeline(e2id=node, name="lost", wait=True)
        text = str(err.value)
        assert node in text and "last heard" in text and "signing mode" in text
        assert sess.stats.commands_timed_out == 1 and sess.stats.commands_sent == 1
        sess.close()


def test_plain_ratio1_commands_say_they_are_not_encrypted() -> None:
    with SimulatedNetwork(nodes=1, seed=6, profile="RATIO1") as net:
        sent: list[bytes] = []
        spy = net.transport()
        spy.connect()
        spy.subscribe(f"{net.profile.root}/+/config", lambda d: sent.append(bytes(d.body)))
        for encrypt in (False, True):
            sess = net.session(encrypt_comms=encrypt)
            sess.connect()
            assert sess.wait_for_node(net.node_ids[0], 30)
            sess.create_pipeline(e2id=net.node_ids[0], name=f"p{encrypt}", wait=True)
            assert json.loads(sent[-1])["EE_IS_ENCRYPTED"] is encrypt
            sess.close()


def test_the_eth_option_and_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert eth_setting(None, {}) is None and eth_setting("auto") is None
    assert eth_setting(True) is True and eth_setting("false") is False
    assert eth_setting(None, {"PYE2_ETH": "1"}) is True
    with pytest.raises(ConfigError):
        eth_setting("maybe")
    monkeypatch.setenv("PYE2_ETH", "0")
    with SimulatedNetwork(nodes=1, seed=6, profile="RATIO1", eth_enabled=True) as net:
        sess = net.session()  # forced to sign without ETH fields: an ETH-mode node takes both forms
        sess.connect()
        assert sess.wait_for_node(net.node_ids[0], 30)
        assert sess.eth is False and sess.signing_mode(net.node_ids[0]) is False
        sess.create_pipeline(e2id=net.node_ids[0], name="plain", wait=True)
        sess.close()


@pytest.mark.parametrize("eth", [True, False])
def test_a_session_verifies_either_kind_of_node_whatever_it_signs_with(eth: bool) -> None:
    with SimulatedNetwork(nodes=1, seed=6, profile="RATIO1", eth_enabled=eth) as net:
        for mode in (True, False):
            sess = net.session(eth=mode)
            seen: list[Any] = []
            sess.dispatcher.add("heartbeat", ("*",), lambda s, e2id, data, seen=seen: seen.append(e2id))
            sess.connect()
            sess.sleep(11)  # a heartbeat period
            assert seen
            assert sess.stats.rejected.get("signature", 0) == 0
            sess.close()


def test_a_whitelist_without_prefixes_as_a_real_node_writes_it_lists_the_session() -> None:
    with SimulatedNetwork(nodes=1, seed=6) as net:
        sess = net.session()
        sess.connect()
        assert sess.wait_for_node(net.node_ids[0], 30)
        body = sess.address.split("_", 1)[1]
        assert sess._listed([body]) and sess._listed([sess.address]) and not sess._listed(["AnotherBody"])
        sess.close()


def test_a_heartbeat_signed_before_the_command_does_not_fail_it() -> None:
    """The node's operator allow-lists the session while a heartbeat that does not list it is on its way."""
    stranger = Identity.generate()
    other = Identity.generate().address(AIXP)
    with SimulatedNetwork(nodes=1, seed=6, allow_list=[other], heartbeat_interval=10) as net:
        node = net.node_ids[0]
        started = net.clock.time()  # the node heartbeats at +0, +10, +20 ...
        sess = net.session(identity=stranger, command_timeout=30)
        sess.connect()
        assert sess.wait_for_node(node, 30)
        net.faults.delay(3.0, topic=net.profile.ctrl)  # from now on heartbeats take 3 s to arrive
        net.faults.delay(4.0, topic=f"{net.profile.root}/+/config")  # and commands 4 s: pending when it does
        sess.sleep(started + 10.5 - sess.clock.time())  # the heartbeat signed at +10 arrives at +13
        net.set_allow_list([other, sess.address])
        pipe = sess.create_pipeline(e2id=node, name="listed-in-time", wait=True)
        assert sess.clock.time() - started > 13  # the stale heartbeat arrived while the command was pending
        assert pipe.name in net.nodes[node].pipelines
        assert sess.stats.commands_failed == 0
        sess.close()
