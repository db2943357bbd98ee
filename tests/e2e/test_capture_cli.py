"""``pye2 capture`` and ``pye2 replay`` as processes, against ``pye2 sim`` on Mosquitto (private roots).

The key test captures a live session's traffic while it runs a pipeline, then
replays the capture with ``--sim`` and compares the counters. Window: the
capture and the session both subscribe before ``pye2 sim`` starts, and an end
marker (a malformed body on ``<root>/ctrl``, published once the simulator has
exited) tells when the session has heard everything the capture holds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from pye2 import Session
from pye2.capture import read_capture
from pye2.capture_replay import message_counters
from pye2.domain.profiles import AIXP
from pye2.plugins.host import default_host
from pye2.wire import Identity

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "real_node_r1oracle.jsonl"
MARKER = b"end-of-test marker (not JSON)"


def _pye2(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pye2", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pye2", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _read_until(proc: subprocess.Popen[str], stream: Any, prefix: str) -> str:
    lines: list[str] = []
    while not lines or not lines[-1].startswith(prefix):
        line = stream.readline()
        if not line:
            _stop(proc, signal.SIGKILL)
            raise AssertionError(f"no line starting {prefix!r}: " + "".join(lines))
        lines.append(line)
    return "".join(lines)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def _publish_marker(url: str, root: str) -> None:
    transport = default_host().make_transport(url)
    transport.connect()
    try:
        transport.publish(f"{root}/ctrl", MARKER)
    finally:
        transport.close()


def _settle(session: Session, malformed: int) -> dict[str, Any]:
    """Wait for the end marker to be rejected and nothing left in flight; the session's message counters."""
    assert session.wait(lambda: session.stats.rejected.get("malformed", 0) >= malformed
                        and session.stats.in_flight == 0, 30), session.stats.as_dict()
    return message_counters(session.stats.as_dict())


@pytest.mark.mqtt
@pytest.mark.timeout(180)
def test_a_capture_of_a_live_session_replayed_with_sim_reproduces_its_counters(mqtt_url: str, tmp_path: Path) -> None:
    root = f"pye2cap{uuid.uuid4().hex[:8]}"
    capture_file = tmp_path / "live.jsonl"
    me = Identity.generate()
    capture = _spawn("capture", str(capture_file), "--url", mqtt_url, "--root-topic", root, "--json")
    sim: subprocess.Popen[str] | None = None
    session = Session(transport=mqtt_url, root_topic=root, identity=me, profile="AIXP", command_timeout=15)
    try:
        status = _read_until(capture, capture.stderr, "capturing")
        assert f"capturing {root}/# on {mqtt_url}" in status
        session.connect()  # capture and session listen before any node speaks
        sim = _spawn("sim", "--broker", mqtt_url, "--root", root, "--nodes", "2", "--heartbeat-interval", "1",
                     "--allow", me.address(AIXP))
        nodes = [line.split()[0] for line in _read_until(sim, sim.stdout, "allow-list").splitlines()
                 if line.startswith("  ")]
        assert len(nodes) == 2 and all(session.wait_for_node(n, 30) for n in nodes)
        payloads: list[int] = []
        pipeline = session.create_pipeline(e2id=nodes[0], name="counted", wait=True)
        pipeline.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c1", config={"PROCESS_DELAY": 0.2},
                                       on_data=lambda *args: payloads.append(1))
        assert session.wait(lambda: len(payloads) >= 8, 60)
        code, _, sim_err = _stop(sim)
        assert code == 0, sim_err
        _publish_marker(mqtt_url, root)
        live = _settle(session, 1)
    finally:
        session.close()
        if sim is not None:
            _stop(sim)
        code, out, err = _stop(capture, signal.SIGTERM)
    assert code == 0 and "Traceback" not in err, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "interrupt" and summary["omitted"] == 0
    records = read_capture(capture_file, strict=True).records
    assert summary["messages"] == len(records) and summary["by_kind"]["config"] >= 2  # our commands, captured too
    assert live["delivered"]["payload"] >= 8 and live["delivered"]["heartbeat"] >= 4
    assert live["delivered"]["notification"] >= 1 and live["rejected"] == {"malformed": 1}

    replay = _pye2("replay", str(capture_file), "--sim", "--json")
    assert replay.returncode == 0, replay.stderr
    result = json.loads(replay.stdout)
    assert result["counters"] == live
    assert result["replay"]["published"] == len(records) and result["malformed_lines"] == 0

    text = _pye2("replay", str(capture_file), "--sim")  # the same, for people
    assert text.returncode == 0
    assert f"replayed {len(records)} message(s)" in text.stdout
    assert f"payload {live['delivered']['payload']}" in text.stdout and "malformed 1" in text.stdout


@pytest.mark.mqtt
@pytest.mark.timeout(120)
def test_replay_to_mosquitto_is_received_by_a_session_as_the_simulated_replay_says(mqtt_url: str) -> None:
    root = f"pye2rep{uuid.uuid4().hex[:8]}"
    expected = json.loads(_pye2("replay", str(FIXTURE), "--sim", "--json").stdout)["counters"]
    assert expected["delivered"] == {"notification": 9, "payload": 5} and expected["rejected"] == {"signature": 3}
    session = Session(transport=mqtt_url, root_topic=root, profile="RATIO1", identity=Identity.generate())
    try:
        session.connect()
        # the fixture spans 239 s of captured time: at 100x that is 2.4 s
        done = _pye2("replay", str(FIXTURE), "--to", mqtt_url, "--root-topic", root, "--speed", "100", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["replay"]["published"] == 17 and report["root"] == root
        assert 2.0 <= report["replay"]["elapsed"] < 30
        _publish_marker(mqtt_url, root)
        live = _settle(session, 1)
    finally:
        session.close()
    assert live["delivered"] == expected["delivered"]
    assert live["rejected"] == {**expected["rejected"], "malformed": 1}
    assert live["received"] == expected["received"] + 1


@pytest.mark.timeout(60)
def test_an_unreachable_broker_is_one_line_and_exit_1_without_the_password(tmp_path: Path) -> None:
    url = "mqtt://someone:s3cret-pw@127.0.0.1:1"
    for argv in (("capture", str(tmp_path / "c.jsonl"), "--url", url, "--seconds", "5"),
                 ("replay", str(FIXTURE), "--to", url)):
        done = _pye2(*argv, "--connect-timeout", "3")
        assert done.returncode == 1, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot connect to mqtt://someone:***@127.0.0.1:1")
        assert "s3cret" not in done.stderr + done.stdout and done.stdout == ""


@pytest.mark.timeout(60)
def test_malformed_capture_lines_are_named_by_number_counted_and_fail_the_run(tmp_path: Path) -> None:
    good = FIXTURE.read_text("utf-8").splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([good[0], good[1], "{oops", '{"time": 1, "topic": "r1oracle/#", "body": ""}',
                              good[2]]) + "\n", "utf-8")
    done = _pye2("replay", str(bad), "--sim")
    assert done.returncode == 1
    assert f"error: {bad} line 3: not JSON" in done.stderr
    assert f"error: {bad} line 4: 'topic' must be a non-empty topic without wildcards" in done.stderr
    assert "replayed 2 message(s)" in done.stdout and "2 malformed line(s)" in done.stdout
    assert "Traceback" not in done.stderr
    missing = _pye2("replay", str(tmp_path / "nope.jsonl"), "--sim")
    assert missing.returncode == 1 and "error: cannot read" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.mqtt
@pytest.mark.timeout(60)
def test_capture_for_some_seconds_with_nothing_said_writes_a_header_and_a_zero_count(mqtt_url: str,
                                                                                     tmp_path: Path) -> None:
    root = f"pye2quiet{uuid.uuid4().hex[:8]}"
    done = _pye2("capture", str(tmp_path / "q.jsonl"), "--url", mqtt_url, "--root-topic", root, "--seconds", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"captured 0 message(s) under {root}/# in 1.")
    capture = read_capture(tmp_path / "q.jsonl", strict=True)
    assert capture.header is not None and capture.header.root == root and capture.records == []
