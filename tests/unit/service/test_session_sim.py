"""Session against the simulated network on the virtual clock: the client API end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pye2 import Payload, Pipeline, Session
from pye2.errors import CodeCheckError, CommandFailed, CommandTimeout, ConfigError, NodeOffline, PipelineNotFound
from pye2.wire import Identity, sign_message
from pye2_transport_memory import SimulatedNetwork


@pytest.fixture()
def net() -> Any:
    with SimulatedNetwork(nodes=2, seed=7) as network:
        yield network


@pytest.fixture()
def session(net: Any) -> Any:
    sess = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(), name="tester")
    sess.connect()
    assert sess.wait_for_node(net.node_ids[0], 30)
    yield sess
    sess.close()


def test_heartbeats_reach_the_callback_with_cpu_and_mark_nodes_online(net: Any) -> None:
    seen: list[tuple[str, str]] = []
    sess = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(),
                   on_heartbeat=lambda s, e2id, data: seen.append((e2id, data["CPU"])))
    sess.run(wait=25, close_session=False)
    assert {e2id for e2id, _ in seen} == set(net.node_ids)
    assert all(isinstance(cpu, str) and cpu for _, cpu in seen)
    assert sess.get_active_nodes() == sorted(net.node_ids)
    assert "admin_pipeline" in (sess.get_active_pipelines(net.node_ids[0]) or {})
    sess.close()


def test_a_silent_node_goes_offline_after_the_online_timeout(net: Any, session: Session) -> None:
    session.sleep(15)
    assert net.node_ids[1] in session.get_active_nodes()
    net.faults.crash(net.node_ids[1])
    last_seen = session.network.find(net.node_ids[1]).last_seen  # type: ignore[union-attr]
    session.sleep(last_seen + 59 - session.clock.time())  # type: ignore[union-attr]
    assert net.node_ids[1] in session.get_active_nodes()  # last message < 60 s ago
    session.sleep(2)
    assert session.get_active_nodes() == [net.node_ids[0]]
    assert session.get_active_pipelines(net.node_ids[1]) is None


def test_create_start_receive_update_stop_close(net: Any, session: Session) -> None:
    node = net.node_ids[0]
    payloads: list[Payload] = []
    pipe_data: list[tuple[str, str | None]] = []
    pipe = session.create_pipeline(e2id=node, name="counting", data_source="Void",
                                   on_data=lambda p, sig, inst, data: pipe_data.append((sig, inst)), wait=True)
    assert pipe.confirmation.ok
    inst = pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c1", params={"PROCESS_DELAY": 1},
                                      on_data=lambda p, data: payloads.append(data))
    assert inst == f"{node}##counting##SIMPLE_COUNTER##c1"
    assert inst.confirmation.wait(10)
    session.sleep(5)
    assert len(payloads) >= 3
    assert all(p["STREAM_NAME"] == "counting" and p.INSTANCE_ID == "c1" for p in payloads)
    assert ("SIMPLE_COUNTER", "c1") in pipe_data
    stored = net.nodes[node].pipelines["counting"]
    assert stored["PLUGINS"][0]["INSTANCES"][0]["PROCESS_DELAY"] == 1

    assert inst.update_instance_config(process_delay=2).wait(10)
    assert net.nodes[node].pipelines["counting"]["PLUGINS"][0]["INSTANCES"][0]["PROCESS_DELAY"] == 2

    assert inst.stop().wait(10)
    before = len(payloads)
    session.sleep(5)
    assert len(payloads) == before
    assert not net.nodes[node].pipelines["counting"]["PLUGINS"]

    assert pipe.close().wait(10)
    assert pipe.closed and "counting" not in net.nodes[node].pipelines
    assert session.get_pipeline(node, "counting") is None


def test_custom_code_result_reaches_the_two_and_three_argument_callbacks(net: Any, session: Session) -> None:
    two: list[Any] = []
    three: list[tuple[Any, Any]] = []
    pipe = session.create_pipeline(e2id=net.node_ids[0], name="custom", data_source="Void")
    pipe.start_custom_plugin(instance_id="a", plain_code="_result = plugin.cfg_x * 2", params={"X": 21},
                             on_data=lambda p, result: two.append(result), process_delay=1)
    pipe.start_custom_plugin(instance_id="b", plain_code="_result = {'v': plugin.cfg_x}", params={"X": 5},
                             on_data=lambda p, result, payload: three.append((result, payload["EE_ID"])),
                             process_delay=1)
    session.sleep(4)
    assert two and set(two) == {42}
    assert three and three[0] == ({"v": 5}, net.node_ids[0])


def test_code_the_node_would_refuse_is_refused_locally(net: Any, session: Session) -> None:
    pipe = session.create_pipeline(e2id=net.node_ids[0], name="bad", data_source="Void")
    with pytest.raises(CodeCheckError) as info:
        pipe.start_custom_plugin(instance_id="x", plain_code="import os\n_result = 1", on_data=print)
    assert any("os" in err for err in info.value.errors)


def test_wait_exec_returns_result_and_error(net: Any, session: Session) -> None:
    pipe = session.create_pipeline(e2id=net.node_ids[0], name="oneshot", data_source="VideoStream",
                                   config={"URL": "sim://oneshot"})
    result, error = pipe.wait_exec(plain_code="_result = 6 * 7", timeout=30)
    assert result == 42 and not error


def test_refused_command_fails_with_the_node_message(net: Any, session: Session) -> None:
    conf = session.send_command_delete_pipeline(net.node_ids[0], "no-such-pipeline")
    with pytest.raises(CommandFailed, match="does not exist"):
        conf.result(10)


def test_command_to_a_crashed_node_times_out(net: Any, session: Session) -> None:
    net.faults.crash(net.node_ids[0])
    pipe = session.create_pipeline(e2id=net.node_ids[0], name="lost", data_source="Void")
    with pytest.raises(CommandTimeout):
        pipe.confirmation.result(5)


def test_attach_to_an_existing_pipeline(net: Any, session: Session) -> None:
    node = net.node_ids[0]
    other = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(), name="other")
    pipe = other.create_pipeline(e2id=node, name="shared", data_source="Void", wait=True)
    pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params={"PROCESS_DELAY": 1})
    session.sleep(11)  # next heartbeat lists the pipeline
    got: list[Payload] = []
    attached = session.attach_to_pipeline(node, "shared")
    attached.attach_to_instance("SIMPLE_COUNTER", "c", lambda p, data: got.append(data))
    assert not attached.owned
    session.sleep(3)
    assert got and got[-1]["INSTANCE_ID"] == "c"
    with pytest.raises(PipelineNotFound):
        session.attach_to_pipeline(node, "nope")
    with pytest.raises(NodeOffline):
        session.attach_to_pipeline("ghost-node", "shared")
    other.close()


def test_forged_and_malformed_messages_are_counted_not_delivered(net: Any, session: Session) -> None:
    hb: list[str] = []
    session.dispatcher.add("heartbeat", ("*",), lambda s, e2id, d: hb.append(e2id))
    raw = net.transport()
    raw.connect()
    base = {"EE_ID": "intruder", "EE_EVENT_TYPE": "HEARTBEAT", "CONFIG_STREAMS": [], "HEARTBEAT_VERSION": "v1"}
    signed = sign_message(base, Identity.generate(), profile=session.profile)
    forged = dict(signed, EE_ID="sim-node-1")  # altered after signing
    unsigned = dict(base)
    raw.publish(session.profile.ctrl, json.dumps(forged).encode())
    raw.publish(session.profile.ctrl, json.dumps(unsigned).encode())
    raw.publish(session.profile.ctrl, b"{not json")
    raw.publish(session.profile.ctrl, json.dumps(signed).encode())
    session.sleep(0.5)
    stats = session.stats.as_dict()
    assert stats["rejected"].get("signature", 0) >= 2
    assert stats["rejected"].get("malformed", 0) >= 1
    assert "intruder" in hb  # the genuine one still gets through
    assert hb.count("intruder") == 1
    assert stats["received"] >= sum(stats["delivered"].values()) + sum(stats["rejected"].values())


def test_a_raising_callback_does_not_stop_the_others(net: Any) -> None:
    calls: list[str] = []

    def bad(sess: Session, e2id: str, data: dict[str, Any]) -> None:
        raise RuntimeError("user bug")

    sess = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(), on_heartbeat=bad)
    sess.dispatcher.add("heartbeat", ("*",), lambda s, e2id, d: calls.append(e2id))
    sess.run(wait=12, close_session=False)
    assert calls and sess.stats.callback_errors >= len(calls)
    sess.close()


def test_filter_workers_limits_callbacks_but_not_tracking(net: Any) -> None:
    seen: list[str] = []
    sess = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(),
                   filter_workers=[net.node_ids[0]], on_heartbeat=lambda s, e, d: seen.append(e))
    sess.run(wait=12, close_session=False)
    assert set(seen) == {net.node_ids[0]}
    assert set(sess.get_active_nodes()) == set(net.node_ids)
    assert sess.stats.filtered > 0
    sess.close()


def test_run_on_the_virtual_clock_returns_when_own_pipelines_are_gone(net: Any, session: Session) -> None:
    pipe = session.create_pipeline(e2id=net.node_ids[0], name="short", data_source="Void", wait=True)
    code = ("if plugin.int_cache['n'] == 0:\n    plugin.int_cache['n'] = 1\n"
            "    plugin.obj_cache['t0'] = plugin.time()\n"
            "elif plugin.time() - plugin.obj_cache['t0'] > 30:\n    plugin.cmdapi_archive_pipeline()\n")
    pipe.start_custom_plugin(instance_id="self-stop", plain_code=code, on_data=print, process_delay=1)
    start = session.clock.time()  # type: ignore[union-attr]
    session.run(wait=True, close_session=False)
    elapsed = session.clock.time() - start  # type: ignore[union-attr]
    assert 30 < elapsed < 120 and pipe.closed


def test_session_without_any_broker_setting_says_how_to_configure(tmp_path: Any, monkeypatch: Any) -> None:
    for key in ("PYE2_HOST", "PYE2_TRANSPORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="sim://"):
        Session(identity=Identity.generate()).connect()


def test_context_manager_and_pipeline_type(net: Any) -> None:
    with Session(transport=net.transport(), clock=net.clock, identity=Identity.generate()) as sess:
        assert sess.wait_for_any_node(30)
        pipe = sess.create_pipeline(e2id=net.node_ids[1], name="cm", data_source="Void", wait=True)
        assert isinstance(pipe, Pipeline)
    assert not sess.is_connected


@pytest.mark.parametrize("encrypt", [False, True])
def test_ratio1_profile_commands_by_address_optionally_encrypted(encrypt: bool) -> None:
    with SimulatedNetwork(nodes=2, seed=3, profile="RATIO1") as net:
        wire_commands: list[dict[str, Any]] = []
        sniffer = net.transport()
        sniffer.connect()
        sniffer.subscribe(f"{net.profile.root}/+/config", lambda d: wire_commands.append(json.loads(d.body)))
        seen: list[str] = []
        sess = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(), profile="RATIO1",
                       encrypt_comms=encrypt, on_heartbeat=lambda s, e2id, d: seen.append(e2id))
        sess.connect()
        address = net.nodes[net.node_ids[0]].address
        assert sess.wait_for_node(address, 30)
        sess.sleep(11)
        assert address in seen and address.startswith("0xai_")
        pipe = sess.create_pipeline(e2id=address, name="r1", data_source="Void", wait=True)
        got: list[Any] = []
        pipe.start_custom_plugin(instance_id="x", plain_code="_result = 1", on_data=lambda p, r: got.append(r),
                                 process_delay=1)
        sess.sleep(3)
        assert got and got[0] == 1
        cmd = wire_commands[0]
        assert cmd["EE_DEST"] == address and cmd["SIGN_CANON_V"] == "v2" and "TIME" in cmd
        if encrypt:
            assert cmd["EE_IS_ENCRYPTED"] is True and "ACTION" not in cmd and "PAYLOAD" not in cmd
        else:
            assert cmd["ACTION"] == "UPDATE_CONFIG"
        sess.close()


def test_a_command_that_could_not_be_sent_leaves_the_handles_unchanged(net: Any, session: Session) -> None:
    from pye2.errors import TransportError

    pipe = session.create_pipeline(e2id=net.node_ids[0], name="kept", data_source="Void", wait=True)
    before = pipe.config
    session.transport.close()  # type: ignore[union-attr]
    with pytest.raises(TransportError):
        pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="never", on_data=print)
    assert pipe.config == before and not pipe.instances
    with pytest.raises(TransportError):
        pipe.update_acquisition_parameters(cap_resolution=5)
    assert pipe.config == before
    with pytest.raises(TransportError):
        session.create_pipeline(e2id=net.node_ids[0], name="phantom", data_source="Void")
    assert session.get_pipeline(net.node_ids[0], "phantom") is None
    assert [p.name for p in session.pipelines] == ["kept"]
    assert session.stats.commands_failed == 3


def test_a_lost_command_is_reported_lost_not_confirmed_by_a_later_one(net: Any, session: Session) -> None:
    node = net.node_ids[0]
    pipe = session.create_pipeline(e2id=node, name="seq", data_source="Void", wait=True)
    inst = pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params={"PROCESS_DELAY": 5})
    assert inst.confirmation.wait(10)
    net.faults.drop(topic=session.profile.config(node), count=1)
    lost = inst.update_instance_config(lost_mark=1)
    applied = inst.update_instance_config(applied_mark=1)
    assert not applied.done  # waits its turn behind the unsettled one
    with pytest.raises(CommandTimeout):
        lost.result(session.command_timeout + 1)
    assert applied.wait(10)
    params = net.nodes[node].pipelines["seq"]["PLUGINS"][0]["INSTANCES"][0]
    assert params.get("APPLIED_MARK") == 1 and "LOST_MARK" not in params


def test_commands_to_one_pipeline_settle_one_by_one_in_order(net: Any, session: Session) -> None:
    pipe = session.create_pipeline(e2id=net.node_ids[0], name="order", data_source="Void")
    confs = [pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id=f"i{n}").confirmation
             for n in range(4)]
    settled: list[int] = []
    for n, conf in enumerate(confs):
        conf.add_done_callback(lambda c, n=n: settled.append(n))
    assert pipe.confirmation.wait(10) and all(c.wait(10) for c in confs)
    assert settled == [0, 1, 2, 3]
    assert {i["INSTANCE_ID"] for i in net.nodes[net.node_ids[0]].pipelines["order"]["PLUGINS"][0]["INSTANCES"]} == \
        {"i0", "i1", "i2", "i3"}
