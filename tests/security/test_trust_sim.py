"""Attacks of a sender on the same (simulated) broker, performed through the public API and a raw transport.

Each test performs one attack from the trust issue and asserts that nothing
forged or replayed was delivered or settled a command, that it was counted
under the right reason, and that the real node still works afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from _attacker import Attacker

from pye2 import Payload, Pipeline, Session
from pye2.errors import AmbiguousNode, CommandTimeout
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork


def _is_pipeline(name: str, code: int | None = None) -> Any:
    def match(m: dict[str, Any]) -> bool:
        path = m.get("EE_PAYLOAD_PATH") or [None, None]
        ok = m.get("STREAM") == name or m.get("STREAM_NAME") == name or path[1] == name
        return ok and (code is None or m.get("NOTIFICATION_CODE") == code)
    return match


@pytest.fixture(params=["AIXP", "RATIO1"])
def net(request: pytest.FixtureRequest) -> Any:
    with SimulatedNetwork(nodes=2, seed=11, profile=request.param) as network:
        yield network


@pytest.fixture()
def conflicts() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture()
def session(net: Any, conflicts: list[tuple[str, str, str]]) -> Any:
    sess = net.session(identity=Identity.generate(), name="victim",
                       on_node_conflict=lambda s, name, known, other: conflicts.append((name, known, other)))
    sess.connect()
    assert sess.wait_for_node(net.node_ids[0], 30) and sess.wait_for_node(net.node_ids[1], 30)
    yield sess
    sess.close()


@pytest.fixture()
def attacker(net: Any) -> Any:
    evil = Attacker(net.transport(), net.profile)
    yield evil
    evil.close()


class Counting:
    """A pipeline with a counter instance; records what reaches each callback."""

    def __init__(self, session: Session, node: str, name: str = "counting") -> None:
        self.pipe_data: list[Payload] = []
        self.inst_data: list[Payload] = []
        self.session_data: list[Payload] = []
        self.notes: list[Payload] = []
        session.dispatcher.add("payload", ("*",), lambda s, e2id, p, sig, inst, data: self.session_data.append(data))
        self.pipe: Pipeline = session.create_pipeline(
            e2id=node, name=name, data_source="Void", wait=True,
            on_data=lambda p, sig, inst, data: self.pipe_data.append(data),
            on_notification=lambda p, data: self.notes.append(data))
        inst = self.pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c1",
                                               params={"PROCESS_DELAY": 1},
                                               on_data=lambda p, data: self.inst_data.append(data))
        inst.confirmation.result(10)

    def forged(self) -> list[Payload]:
        return [d for d in self.pipe_data + self.inst_data + self.session_data + self.notes if d.get("FORGED")]


def _node_still_works(session: Session, net: Any, node: str, counting: Counting) -> None:
    before = len(counting.inst_data)
    session.sleep(4)
    assert len(counting.inst_data) > before, "the real node's payloads stopped arriving"
    conf = counting.pipe.update_instance_config("SIMPLE_COUNTER", "c1", process_delay=2)
    conf.result(10)
    assert net.nodes[node].pipelines[counting.pipe.name]["PLUGINS"][0]["INSTANCES"][0]["PROCESS_DELAY"] == 2


def test_a_forged_payload_claiming_a_node_and_pipeline_is_not_delivered(
        net: Any, session: Session, attacker: Attacker, conflicts: list[Any]) -> None:
    node = net.node_ids[0]
    counting = Counting(session, node)
    session.sleep(3)
    genuine = attacker.last("payloads", _is_pipeline("counting"))
    for seq in range(5):
        attacker.publish("payloads", attacker.forge(genuine, FORGED=True, EE_MESSAGE_SEQ=10**6 + seq))
    session.sleep(2)
    assert counting.forged() == []
    assert session.stats.rejected["impostor"] == 5
    node_address = net.nodes[node].address
    assert conflicts == [(node, node_address, attacker.address)]  # reported once, with both addresses
    assert session.stats.missed_payloads == 0
    _node_still_works(session, net, node, counting)


def test_forged_notifications_do_not_settle_a_pending_command(
        net: Any, session: Session, attacker: Attacker) -> None:
    node = net.node_ids[0]
    counting = Counting(session, node)
    genuine_ok = attacker.last("notif", _is_pipeline("counting", 1))
    net.faults.drop(topic=f"{net.profile.root}/+/config", count=1)  # the node never hears the archive
    conf = counting.pipe.close()
    archived = attacker.forge(genuine_ok, NOTIFICATION_CODE=4, NOTIFICATION="Pipeline archived", FORGED=True)
    refused = attacker.forge(genuine_ok, NOTIFICATION_CODE=-4, NOTIFICATION="archive failed", FORGED=True)
    attacker.publish("notif", archived)
    attacker.publish("notif", refused)
    session.sleep(2)
    assert not conf.done, conf
    assert not counting.pipe.closed
    assert session.stats.rejected["impostor"] == 2
    assert counting.forged() == []
    with pytest.raises(CommandTimeout):
        conf.result(session.command_timeout)
    # the real node still answers: archive again, for real
    counting.pipe.close().result(10)
    assert counting.pipe.name not in net.nodes[node].pipelines


def test_a_forged_heartbeat_does_not_rebind_the_name(
        net: Any, session: Session, attacker: Attacker, conflicts: list[Any]) -> None:
    node = net.node_ids[0]
    real = net.nodes[node].address
    assert session.get_node_address(node) == real
    session.sleep(11)
    hb = attacker.last("ctrl", lambda m: m.get("EE_ID") == node)
    attacker.publish("ctrl", attacker.forge(hb, FORGED=True))
    session.sleep(1)
    assert session.stats.rejected["impostor"] == 1
    assert conflicts and conflicts[0][1:] == (real, attacker.address)
    # the application decides: the name is now ambiguous by name, the address still works
    with pytest.raises(AmbiguousNode) as err:
        session.get_node_address(node)
    assert err.value.addresses == [real, attacker.address]
    session.pin_node(node, real)
    assert session.get_node_address(node) == real
    # commands by name go to the real node (encrypted to it under RATIO1), and it applies them
    counting = Counting(session, node)
    assert "counting" in net.nodes[node].pipelines
    _node_still_works(session, net, node, counting)


def test_the_encrypted_command_goes_to_the_bound_address_not_to_a_claimant() -> None:
    with SimulatedNetwork(nodes=1, seed=5, profile="RATIO1") as net:  # AIXP commands are never encrypted
        _encrypted_command_goes_to_the_bound_address(net, Attacker(net.transport(), net.profile))


def _encrypted_command_goes_to_the_bound_address(net: Any, attacker: Attacker) -> None:
    sess = net.session(identity=Identity.generate(), name="victim", encrypt_comms=True)
    sess.connect()
    node = net.node_ids[0]
    assert sess.wait_for_node(node, 30)
    sess.sleep(11)
    attacker.publish("ctrl", attacker.forge(attacker.last("ctrl", lambda m: m.get("EE_ID") == node), FORGED=True))
    sess.sleep(1)
    sent: list[bytes] = []
    attacker.transport.subscribe(f"{net.profile.root}/+/config", lambda d: sent.append(bytes(d.body)))
    sess.create_pipeline(e2id=net.nodes[node].address, name="secret", data_source="Void", wait=True)
    command = json.loads(sent[-1])
    assert command["EE_IS_ENCRYPTED"] is True
    assert command["EE_DEST"] in (net.nodes[node].address, [net.nodes[node].address])
    assert attacker.address not in json.dumps(command)
    sess.close()


def test_replayed_payloads_are_delivered_once(net: Any, session: Session, attacker: Attacker) -> None:
    node = net.node_ids[0]
    counting = Counting(session, node)
    session.sleep(3)
    genuine = attacker.last("payloads", _is_pipeline("counting"))
    n = json.loads(genuine).get("EE_MESSAGE_SEQ")
    before = [p.get("EE_MESSAGE_SEQ") for p in counting.inst_data].count(n)
    assert before == 1
    for _ in range(3):
        attacker.publish("payloads", genuine)
    session.sleep(1)
    assert [p.get("EE_MESSAGE_SEQ") for p in counting.inst_data].count(n) == 1
    assert session.stats.rejected["replay"] == 3
    assert session.stats.duplicate_payloads == 0
    _node_still_works(session, net, node, counting)


def test_an_old_notification_replayed_does_not_confirm_a_new_command(net: Any, attacker: Attacker) -> None:
    # a short replay memory, so the copy is no longer remembered: the signed node time must stop it
    sess = net.session(identity=Identity.generate(), name="victim", replay_max_age=5, max_clock_skew=10)
    sess.connect()
    node = net.node_ids[0]
    assert sess.wait_for_node(node, 30)
    counting = Counting(sess, node)
    old_ok = attacker.last("notif", _is_pipeline("counting", 1))
    sess.sleep(60)
    net.faults.drop(topic=f"{net.profile.root}/+/config", count=1)  # the node never hears the update
    conf = counting.pipe.update_acquisition_parameters(STREAM_NOTE="x")
    attacker.publish("notif", old_ok)
    sess.sleep(2)
    assert not conf.done
    assert sess.confirmations is not None and sess.confirmations.stale >= 1
    assert sess.stats.rejected["replay"] == 0  # outside the replay memory: stopped by its age instead
    with pytest.raises(CommandTimeout):
        conf.result(sess.command_timeout)
    counting.pipe.update_acquisition_parameters(STREAM_NOTE="y").result(10)
    sess.close()


def test_a_recent_notification_replayed_is_refused(net: Any, session: Session, attacker: Attacker) -> None:
    node = net.node_ids[0]
    counting = Counting(session, node)
    ok = attacker.last("notif", _is_pipeline("counting", 1))
    net.faults.drop(topic=f"{net.profile.root}/+/config", count=1)
    conf = counting.pipe.update_acquisition_parameters(STREAM_NOTE="x")
    attacker.publish("notif", ok)
    session.sleep(2)
    assert not conf.done
    assert session.stats.rejected["replay"] == 1


def test_forget_node_accepts_a_node_that_changed_its_key(net: Any, session: Session, attacker: Attacker) -> None:
    node = net.node_ids[1]
    session.sleep(11)
    hb = attacker.last("ctrl", lambda m: m.get("EE_ID") == node)
    session.forget_node(node)
    attacker.publish("ctrl", attacker.forge(hb, FORGED=True))  # "the node's new key"
    session.sleep(0.5)
    assert session.get_node_address(node) == attacker.address
    assert session.stats.rejected["impostor"] == 0


def test_pinned_nodes_refuse_first_use_by_anyone_else(net: Any, attacker: Attacker) -> None:
    node = net.node_ids[0]
    sess = net.session(identity=Identity.generate(), trusted_nodes={node: net.nodes[node].address})
    sess.connect()
    assert sess.wait_for_node(node, 30)
    sess.sleep(11)
    attacker.publish("ctrl", attacker.forge(attacker.last("ctrl", lambda m: m.get("EE_ID") == node), FORGED=True))
    sess.sleep(1)
    assert sess.get_node_address(node) == net.nodes[node].address  # pinned: not ambiguous
    assert sess.stats.rejected["impostor"] == 1
    sess.close()


def test_every_message_is_counted_once(net: Any, session: Session, attacker: Attacker) -> None:
    node = net.node_ids[0]
    counting = Counting(session, node)
    session.sleep(3)
    genuine = attacker.last("payloads", _is_pipeline("counting"))
    attacker.publish("payloads", genuine)
    attacker.publish("payloads", attacker.forge(genuine, FORGED=True))
    attacker.publish("payloads", b"{not json")
    session.sleep(2)
    s = session.stats.as_dict()
    assert s["in_flight"] == 0
    assert s["received"] == sum(s["delivered"].values()) + sum(s["rejected"].values()) + s["filtered"] + s["dropped"]
    assert s["rejected"]["replay"] == 1 and s["rejected"]["impostor"] == 1 and s["rejected"]["malformed"] == 1
    assert counting.forged() == []


def test_a_copy_re_signed_or_with_the_other_address_prefix_is_still_a_replay(
        net: Any, session: Session, attacker: Attacker) -> None:
    node = net.node_ids[0]
    counting = Counting(session, node)
    session.sleep(3)
    genuine = json.loads(attacker.last("payloads", _is_pipeline("counting")))
    body, prefix = genuine["EE_SENDER"][5:], genuine["EE_SENDER"][:5]
    other = {"aixp_": "0xai_", "0xai_": "aixp_"}[prefix]
    attacker.publish("payloads", json.dumps(dict(genuine, EE_SENDER=other + body)).encode())
    attacker.publish("payloads", attacker.forge(genuine))  # the same content under the attacker's key
    session.sleep(1)
    assert [p.get("EE_MESSAGE_SEQ") for p in counting.inst_data].count(genuine["EE_MESSAGE_SEQ"]) == 1
    assert session.stats.rejected["replay"] == 2


def test_known_impostors_and_replays_are_refused_before_their_signature_is_checked(
        net: Any, session: Session, attacker: Attacker) -> None:
    """Under a flood, copies and a refused claimant cost no signature check (the soak's bottleneck)."""
    node = net.node_ids[0]
    counting = Counting(session, node)
    session.sleep(3)
    genuine = attacker.last("payloads", _is_pipeline("counting"))
    assert session.engine is not None
    checks: list[int] = []
    real_verify = session.engine._verify_ecdsa

    def counting_verify(*args: Any, **kwargs: Any) -> Any:
        checks.append(1)
        return real_verify(*args, **kwargs)

    session.engine._verify_ecdsa = counting_verify
    attacker.publish("payloads", attacker.forge(genuine, FORGED=True, EE_MESSAGE_SEQ=10**6))
    session.sleep(1)
    first = len(checks)
    assert session.stats.rejected["impostor"] == 1 and first >= 1  # a new claimant is checked in full
    before_flood = len(checks)
    for seq in range(1, 31):
        attacker.publish("payloads", attacker.forge(genuine, FORGED=True, EE_MESSAGE_SEQ=10**6 + seq))
        attacker.publish("payloads", genuine)
    session.sleep(1)
    assert session.stats.rejected["impostor"] == 31
    assert session.stats.rejected["replay"] == 30
    # only the node's own new payloads (one per second of the counter) were checked meanwhile
    assert len(checks) - before_flood < 10, len(checks) - before_flood
    assert counting.forged() == []
    _node_still_works(session, net, node, counting)


@pytest.mark.parametrize("field", ["EE_HASH", "EE_SIGN", "EE_ID", "EE_SENDER"])
@pytest.mark.parametrize("value", [["a", "list"], {"a": "dict"}, 12345, None])
def test_the_prescreen_takes_envelope_fields_of_any_type(
        net: Any, session: Session, attacker: Attacker, field: str, value: Any) -> None:
    """A copy of a genuine payload whose envelope field has the wrong type: refused and counted, never a crash."""
    node = net.node_ids[0]
    counting = Counting(session, node)
    session.sleep(3)
    genuine = json.loads(attacker.last("payloads", _is_pipeline("counting")))
    genuine[field] = value
    genuine["FORGED"] = True
    before = session.stats.as_dict()
    attacker.publish("payloads", json.dumps(genuine).encode())
    session.sleep(1)
    after = session.stats.as_dict()
    assert counting.forged() == []
    assert sum(after["rejected"].values()) == sum(before["rejected"].values()) + 1
    assert session.stats.callback_errors == 0
    _node_still_works(session, net, node, counting)
