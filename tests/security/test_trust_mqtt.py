"""The attacks that involve the wire, over the real Mosquitto: forged and replayed messages from another client.

A simulated RATIO1 node on the broker (private root topic), a session on the
same broker (its commands go through the network's transport, so the node
allows it), and an attacker with a key of its own on a raw MQTT connection.
Each test checks that nothing forged or replayed reached a callback or settled
a command, that it was counted under the right reason, and that the real node
still works afterwards. Ordering is proven with markers, not sleeps: the
attacker's messages are published before a genuine one the test waits for,
on the same topic and connection.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _attacker import Attacker

from pye2 import Payload, Session
from pye2.domain.profiles import RATIO1
from pye2.errors import AmbiguousNode, CommandTimeout
from pye2.plugins import default_host
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]

WAIT = 20.0


@pytest.fixture()
def conflicts() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture()
def rig(mqtt_url: str, conflicts: list[tuple[str, str, str]]) -> Iterator[tuple[SimulatedNetwork, Session, Attacker]]:
    profile = RATIO1.with_root(f"pye2sec{uuid.uuid4().hex[:8]}")
    with SimulatedNetwork(["sec-node"], seed=17, profile=profile, broker=mqtt_url, heartbeat_interval=1.0) as net:
        session = net.session(command_timeout=4.0,
                              on_node_conflict=lambda s, name, known, other: conflicts.append((name, known, other)))
        attacker = Attacker(default_host().make_transport(mqtt_url), profile)
        try:
            session.connect()
            assert session.wait_for_node("sec-node", WAIT)
            assert session.wait(lambda: bool(attacker.captured["ctrl"]), WAIT)
            yield net, session, attacker
        finally:
            attacker.close()
            session.close()


def _counter(session: Session) -> tuple[Any, list[Payload]]:
    got: list[Payload] = []
    pipe = session.create_pipeline(e2id="sec-node", name="p", data_source="Void", wait=WAIT)
    inst = pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params={"PROCESS_DELAY": 0.2},
                                      on_data=lambda _p, data: got.append(data))
    inst.confirmation.result(WAIT)
    assert session.wait(lambda: len(got) >= 2, WAIT)
    return pipe, got


def test_forged_payloads_heartbeats_and_notifications_are_refused_on_the_wire(
        rig: tuple[SimulatedNetwork, Session, Attacker], conflicts: list[tuple[str, str, str]]) -> None:
    net, session, attacker = rig
    pipe, got = _counter(session)
    genuine = json.loads(attacker.last("payloads", lambda m: m.get("STREAM") == "p"))
    hb = attacker.last("ctrl", lambda m: m.get("EE_ID") == "sec-node")
    attacker.publish("payloads", attacker.forge(genuine, FORGED=True, EE_MESSAGE_SEQ=10**6))
    attacker.publish("ctrl", attacker.forge(hb, FORGED=True))
    attacker.publish("notif", attacker.forge({"EE_ID": "sec-node", "EE_EVENT_TYPE": "NOTIFICATION",
                                              "NOTIFICATION_CODE": 4, "STREAM_NAME": "p", "FORGED": True,
                                              "EE_PAYLOAD_PATH": ["sec-node", "p", None, None]}))
    assert session.wait(lambda: session.stats.rejected["impostor"] >= 3, WAIT)
    assert not [d for d in got if d.get("FORGED")] and not pipe.closed
    node = net.nodes["sec-node"].address
    assert conflicts == [("sec-node", node, attacker.address)]
    with pytest.raises(AmbiguousNode):
        session.get_node_address("sec-node")
    assert session.get_node_address(node) == node
    # the real node still works: its payloads arrive, its confirmations resolve (the pipeline keeps its address)
    before = len(got)
    assert session.wait(lambda: len(got) > before, WAIT)
    pipe.update_instance_config("SIMPLE_COUNTER", "c", process_delay=0.3).result(WAIT)
    pipe.close().result(WAIT)


def test_a_payload_captured_and_published_again_is_delivered_once(
        rig: tuple[SimulatedNetwork, Session, Attacker]) -> None:
    _net, session, attacker = rig
    _pipe, got = _counter(session)
    captured = attacker.last("payloads", lambda m: m.get("STREAM") == "p")
    n = json.loads(captured)["EE_MESSAGE_SEQ"]
    assert session.wait(lambda: any(d.get("EE_MESSAGE_SEQ") == n for d in got), WAIT)
    for _ in range(3):
        attacker.publish("payloads", captured)
    assert session.wait(lambda: session.stats.rejected["replay"] >= 3, WAIT)
    assert [d.get("EE_MESSAGE_SEQ") for d in got].count(n) == 1
    before = len(got)
    assert session.wait(lambda: len(got) > before, WAIT)


def test_a_forged_or_replayed_notification_does_not_settle_a_command_the_node_never_got(
        rig: tuple[SimulatedNetwork, Session, Attacker]) -> None:
    net, session, attacker = rig
    pipe, _got = _counter(session)
    ok = attacker.last("notif", lambda m: m.get("NOTIFICATION_CODE") == 1
                       and (m.get("EE_PAYLOAD_PATH") or [None, None])[1] == "p")
    net.faults.drop(topic=f"{net.profile.root}/+/config", count=1)  # the node never hears the archive
    conf = pipe.close()
    archived = attacker.forge(ok, NOTIFICATION_CODE=4, NOTIFICATION="archived", FORGED=True)
    attacker.publish("notif", archived)
    attacker.publish("notif", ok)  # and an old genuine one, again
    assert session.wait(lambda: session.stats.rejected["impostor"] >= 1 and session.stats.rejected["replay"] >= 1,
                        WAIT)
    with pytest.raises(CommandTimeout):
        conf.result(WAIT)
    assert not pipe.closed
    pipe.close().result(WAIT)  # for real this time
    assert session.wait(lambda: "p" not in net.nodes["sec-node"].pipelines, WAIT)


def test_the_encrypted_command_goes_to_the_real_node_after_a_forged_heartbeat(mqtt_url: str) -> None:
    profile = RATIO1.with_root(f"pye2sec{uuid.uuid4().hex[:8]}")
    with SimulatedNetwork(["sec-node"], seed=18, profile=profile, broker=mqtt_url, heartbeat_interval=1.0) as net:
        session = net.session(command_timeout=4.0, encrypt_comms=True, identity=Identity.generate())
        attacker = Attacker(default_host().make_transport(mqtt_url), profile)
        sent: list[bytes] = []
        attacker.transport.subscribe(f"{profile.root}/+/config", lambda d: sent.append(bytes(d.body)))
        try:
            session.connect()
            assert session.wait_for_node("sec-node", WAIT)
            assert session.wait(lambda: bool(attacker.captured["ctrl"]), WAIT)
            attacker.publish("ctrl", attacker.forge(attacker.last("ctrl", lambda m: m.get("EE_ID") == "sec-node"),
                                                    FORGED=True))
            assert session.wait(lambda: session.stats.rejected["impostor"] >= 1, WAIT)
            real = net.nodes["sec-node"].address
            session.create_pipeline(e2id=real, name="secret", data_source="Void", wait=WAIT)
            assert session.wait(lambda: bool(sent), WAIT)
            command = json.loads(sent[-1])
            assert command["EE_IS_ENCRYPTED"] is True and attacker.address not in json.dumps(command)
            assert command["EE_DEST"] in (real, [real])
        finally:
            attacker.close()
            session.close()
