"""``pye2 watch`` as a process against ``pye2 sim`` on Mosquitto: filters, rejections with reasons, images."""

from __future__ import annotations

import json
import subprocess

import pytest
from _cli_rig import Sim, stop

from pye2 import Session
from pye2.plugins.host import default_host
from pye2.wire import AIXP, Identity, sign_message

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def _started(proc: subprocess.Popen[str]) -> str:
    """The ``watching ...`` line (printed once subscribed)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("watching "), line + (proc.stderr.read() if proc.stderr else "")
    return line


def test_node_and_type_filters_and_json_lines(sim: Sim) -> None:
    done = sim.run("watch", "--node", "sim-node-2", "--type", "heartbeat", "--count", "3", "--json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 3
    for rec in records:
        assert (rec["status"], rec["type"], rec["node"]) == ("verified", "heartbeat", "sim-node-2")
        assert rec["address"] == sim.addresses["sim-node-2"] and "pipeline(s)" in rec["summary"]
    by_address = sim.run("watch", "--node", sim.addresses["sim-node-1"], "--type", "heartbeat", "--count", "1",
                         "--json")
    assert json.loads(by_address.stdout)["node"] == "sim-node-1"


def test_rejected_messages_are_shown_with_their_reason(sim: Sim) -> None:
    proc = sim.start("watch", "--pipeline", "no-such-pipeline", "--count", "2")
    try:
        header = _started(proc)
        assert f"root '{sim.root}'" in header and "(pipeline no-such-pipeline)" in header
        forger = Identity.generate()
        signed = sign_message({"EE_ID": "sim-node-1", "EE_EVENT_TYPE": "PAYLOAD", "STREAM_NAME": "p",
                               "SIGNATURE": "X", "INSTANCE_ID": "i", "DATA": 1}, forger, profile=AIXP)
        signed["DATA"] = 2  # tampered after signing
        transport = default_host().load().make_transport(sim.broker)
        transport.connect()
        try:
            transport.publish(f"{sim.root}/payloads", b"\x1b[31mnot json")
            transport.publish(f"{sim.root}/payloads", json.dumps(signed).encode())
        finally:
            transport.close()
        proc.wait(30)  # --count 2: it ends by itself
    finally:
        code, out, err = stop(proc)
    assert code == 0 and err == ""  # the SDK's own warning about the forgery is not printed
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert "REJECTED (malformed) payload" in lines[0]
    assert "REJECTED (signature) payload" in lines[1] and forger.address(AIXP) in lines[1]
    assert "\x1b" not in out  # what a sender controls never reaches the terminal raw


def test_payload_images_are_saved_to_a_folder(sim: Sim) -> None:
    folder = sim.work / "images"
    proc = sim.start("watch", "--pipeline", "cam", "--type", "payload", "--count", "3", "--save-images", str(folder))
    try:
        _started(proc)
        with Session(transport=sim.broker, root_topic=sim.root, identity=Identity.load(sim.me), name="cam") as s:
            assert s.wait_for_node("sim-node-2", 20)
            s.create_pipeline(e2id="sim-node-2", name="cam", data_source="VideoStream", config={"URL": "sim://c"},
                              plugins=[{"SIGNATURE": "VIEW_SCENE_01", "INSTANCES": [
                                  {"INSTANCE_ID": "v1", "PROCESS_DELAY": 0.3, "NR_WITNESSES": 2}]}], wait=20)
            proc.wait(60)  # --count 3: it ends by itself
            s.send_command_delete_pipeline("sim-node-2", "cam").result(20)
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    saved = sorted(p.name for p in folder.iterdir())
    assert saved == ["sim-node-2_cam_VIEW_SCENE_01_v1_00001.jpg", "sim-node-2_cam_VIEW_SCENE_01_v1_00002.jpg"]
    assert all((folder / name).read_bytes()[:2] == b"\xff\xd8" for name in saved)
    assert out.count("verified   payload") == 3 and "saved sim-node-2_cam_VIEW_SCENE_01_v1_00002.jpg" in out


def test_ctrl_c_stops_a_watch_with_exit_0(sim: Sim) -> None:
    proc = sim.start("watch", "--type", "heartbeat")
    try:
        _started(proc)
        assert proc.stdout is not None
        assert "verified   heartbeat" in proc.stdout.readline()
    finally:
        code, _, err = stop(proc)
    assert code == 0 and err == ""


def test_seconds_ends_a_quiet_watch_with_exit_0(sim: Sim) -> None:
    done = sim.run("watch", "--pipeline", "never-deployed", "--seconds", "1.5")
    assert done.returncode == 0 and done.stderr == ""
    header = f"watching {sim.broker} root '{sim.root}' as {sim.me_address} (pipeline never-deployed); Ctrl-C stops"
    assert done.stdout.splitlines() == [header]
