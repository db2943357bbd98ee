"""``pye2 capture`` and ``pye2 replay`` as processes, against ``pye2 sim`` on Mosquitto (private roots).

The key test captures a live session's traffic while it runs a pipeline, then
replays the capture with ``--sim`` and compares the counters. Window: the
capture and the session both subscribe before ``pye2 sim`` starts, and an end
marker (a notification signed by a stranger, published once the simulator has
exited; a delivery wakes ``Session.wait``, a rejection does not) tells when the
session has heard everything; then a message on ``<root>/test-end``, which only
the capture hears, waited for in its ``--echo`` lines, tells when the capture has.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from pye2 import Session
from pye2.capture import CaptureRecord, read_capture
from pye2.capture.replay import message_counters
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.plugins.host import default_host
from pye2.wire import Identity, sign_message

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "real_node_r1oracle.jsonl"
MARKER_NODE = "pye2-test-marker"
MARKER_TEXT = "end of test"


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


class _Echo:
    """Reads a ``pye2 capture --echo`` process's stderr on a thread; waits for a line on a Condition."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        assert proc.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(text in line for line in self.lines), timeout)

    def text(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


def _end_of_capture(url: str, root: str, echo: _Echo) -> None:
    """Publish on a topic only the capture hears and wait until it has recorded it (so everything before)."""
    transport = default_host().make_transport(url)
    transport.connect()
    try:
        transport.publish(f"{root}/test-end", b"end")
    finally:
        transport.close()
    assert echo.wait_for(f" {root}/test-end 3 bytes"), echo.lines


def _publish_marker(url: str, root: str, profile: WireProfile) -> None:
    """A notification signed by a stranger: delivered (so the session's waiters wake), captured, replayed."""
    marker = sign_message({"EE_ID": MARKER_NODE, "EE_EVENT_TYPE": "NOTIFICATION", "NOTIFICATION_TYPE": "NORMAL",
                           "NOTIFICATION": MARKER_TEXT, "EE_PAYLOAD_PATH": [MARKER_NODE, None, None, None]},
                          Identity.generate(), profile=profile)
    transport = default_host().make_transport(url)
    transport.connect()
    try:
        transport.publish(f"{root}/notif", json.dumps(marker).encode())
    finally:
        transport.close()


class _Marker:
    """``on_notification`` callback: set when the end marker arrives."""

    def __init__(self) -> None:
        self.seen = threading.Event()

    def __call__(self, session: Session, node: str, data: Any) -> None:
        if data.get("NOTIFICATION") == MARKER_TEXT:  # (RATIO1 names the node by its address)
            self.seen.set()


def _settle(session: Session, marker: _Marker) -> dict[str, Any]:
    """Wait for the end marker (all before it is counted: one dispatcher, in order); the message counters."""
    assert marker.seen.wait(30), session.stats.as_dict()
    assert session.stats.in_flight == 0
    return message_counters(session.stats.as_dict())


@pytest.mark.mqtt
@pytest.mark.timeout(180)
def test_a_capture_of_a_live_session_replayed_with_sim_reproduces_its_counters(mqtt_url: str, tmp_path: Path) -> None:
    root = f"pye2cap{uuid.uuid4().hex[:8]}"
    capture_file = tmp_path / "live.jsonl"
    me = Identity.generate()
    capture = _spawn("capture", str(capture_file), "--url", mqtt_url, "--root-topic", root, "--json", "--echo")
    echo = _Echo(capture)
    sim: subprocess.Popen[str] | None = None
    marker = _Marker()
    session = Session(transport=mqtt_url, root_topic=root, identity=me, profile="AIXP", command_timeout=15,
                      on_notification=marker)
    try:
        assert echo.wait_for(f"capturing {root}/# on {mqtt_url}"), echo.lines
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
        _publish_marker(mqtt_url, root, AIXP)
        live = _settle(session, marker)
        _end_of_capture(mqtt_url, root, echo)
    finally:
        session.close()
        if sim is not None:
            _stop(sim)
        code, out, _ = _stop(capture, signal.SIGTERM)
    err = echo.text()
    assert code == 0 and "Traceback" not in err, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "interrupt" and summary["omitted"] == 0
    records = read_capture(capture_file, strict=True).records
    assert summary["messages"] == len(records) and summary["by_kind"]["config"] >= 2  # our commands, captured too
    assert records[-1].topic == f"{root}/test-end" and err.count(" bytes\n") == len(records)
    assert live["delivered"]["payload"] >= 8 and live["delivered"]["heartbeat"] >= 4
    assert live["delivered"]["notification"] >= 2 and live["rejected"] == {}

    replay = _pye2("replay", str(capture_file), "--sim", "--json")
    assert replay.returncode == 0, replay.stderr
    result = json.loads(replay.stdout)
    assert result["counters"] == live
    assert result["replay"]["published"] == len(records) and result["malformed_lines"] == 0

    text = _pye2("replay", str(capture_file), "--sim")  # the same, for people
    assert text.returncode == 0
    assert f"replayed {len(records)} message(s)" in text.stdout
    assert f"payload {live['delivered']['payload']}" in text.stdout and "rejected            none" in text.stdout


@pytest.mark.mqtt
@pytest.mark.timeout(120)
def test_replay_to_mosquitto_is_received_by_a_session_as_the_simulated_replay_says(mqtt_url: str) -> None:
    root = f"pye2rep{uuid.uuid4().hex[:8]}"
    expected = json.loads(_pye2("replay", str(FIXTURE), "--sim", "--json").stdout)["counters"]
    assert expected["delivered"] == {"notification": 9, "payload": 5} and expected["rejected"] == {"signature": 3}
    marker = _Marker()
    session = Session(transport=mqtt_url, root_topic=root, profile="RATIO1", identity=Identity.generate(),
                      on_notification=marker)
    try:
        session.connect()
        # the fixture spans 239 s of captured time: at 100x that is 2.4 s
        done = _pye2("replay", str(FIXTURE), "--to", mqtt_url, "--root-topic", root, "--speed", "100", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["replay"]["published"] == 17 and report["root"] == root
        assert 2.0 <= report["replay"]["elapsed"] < 30
        _publish_marker(mqtt_url, root, RATIO1)
        live = _settle(session, marker)
    finally:
        session.close()
    assert live["delivered"] == {**expected["delivered"], "notification": 10}  # the fixture's 9 and the marker
    assert live["rejected"] == expected["rejected"] and live["received"] == expected["received"] + 1


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


@pytest.mark.mqtt
@pytest.mark.timeout(60)
def test_ctrl_c_stops_a_capture_with_a_summary_and_a_broker_replay_with_exit_130(mqtt_url: str,
                                                                                 tmp_path: Path) -> None:
    root = f"pye2int{uuid.uuid4().hex[:8]}"
    notifications = [r for r in read_capture(FIXTURE).records if r.topic.endswith("/notif")][:2]
    slow = tmp_path / "slow.jsonl"  # two real notifications 1000 s apart: the first goes out at once
    slow.write_text("".join(CaptureRecord(1000.0 * i, r.topic, r.body, r.size).to_json() + "\n"
                            for i, r in enumerate(notifications)), "utf-8")
    capture = _spawn("capture", str(tmp_path / "i.jsonl"), "--url", mqtt_url, "--root-topic", root, "--echo")
    echo = _Echo(capture)
    marker = _Marker()
    session = Session(transport=mqtt_url, root_topic=root, profile="RATIO1", identity=Identity.generate(),
                      on_notification=marker)
    try:
        assert echo.wait_for("capturing")
        session.connect()
        replay = _spawn("replay", str(slow), "--to", mqtt_url, "--root-topic", root, "--json")
        _read_until(replay, replay.stderr, "replaying")
        assert session.wait(lambda: session.stats.delivered.get("notification", 0) >= 1, 30)
        code, out, err = _stop(replay)
        assert code == 130 and "Traceback" not in err, err
        report = json.loads(out)["replay"]
        assert report["interrupted"] is True and report["published"] == 1
        _publish_marker(mqtt_url, root, RATIO1)
        counters = _settle(session, marker)
        assert counters["received"] == 2
        _end_of_capture(mqtt_url, root, echo)
    finally:
        session.close()
        code, out, _ = _stop(capture)  # Ctrl-C
    assert code == 0 and "Traceback" not in echo.text(), echo.lines
    assert out.startswith("captured 3 message(s)") and f"under {root}/#" in out
    assert len(read_capture(tmp_path / "i.jsonl", strict=True).records) == 3


@pytest.mark.amqp
@pytest.mark.timeout(90)
def test_on_rabbitmq_a_replayed_fixture_is_captured_byte_for_byte(amqp_url: str, tmp_path: Path) -> None:
    root = f"pye2amqp{uuid.uuid4().hex[:8]}"
    capture = _spawn("capture", str(tmp_path / "a.jsonl"), "--url", amqp_url, "--root-topic", root, "--echo")
    echo = _Echo(capture)
    try:
        assert echo.wait_for(f"capturing {root}/# on amqp://guest:***@"), echo.lines
        done = _pye2("replay", str(FIXTURE), "--to", amqp_url, "--root-topic", root, "--speed", "0")
        assert done.returncode == 0 and "replayed 17 message(s)" in done.stdout, done.stderr
        _end_of_capture(amqp_url, root, echo)
    finally:
        code, out, _ = _stop(capture)
    assert code == 0 and out.startswith("captured 18 message(s)")
    original = read_capture(FIXTURE).records
    captured = read_capture(tmp_path / "a.jsonl", strict=True).records[:-1]
    assert [(r.topic.replace("r1oracle/", f"{root}/"), r.body) for r in original] == [
        (r.topic, r.body) for r in captured]


@pytest.mark.mqtt
@pytest.mark.timeout(60)
def test_the_broker_comes_from_the_sessions_environment_and_none_at_all_is_one_line(mqtt_url: str,
                                                                                    tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYE2_")}
    argv = [sys.executable, "-m", "pye2", "capture", str(tmp_path / "e.jsonl"), "--seconds", "0.5",
            "--root-topic", f"pye2env{uuid.uuid4().hex[:8]}"]
    run = functools.partial(subprocess.run, argv, cwd=tmp_path, capture_output=True, text=True, timeout=30,
                            check=False)  # cwd without a .env file
    done = run(env={**env, "PYTHONPATH": str(ROOT), "PYE2_TRANSPORT": mqtt_url})
    assert done.returncode == 0 and done.stdout.startswith("captured 0 message(s)"), done.stderr
    assert f"on {mqtt_url} to" in done.stderr
    done = run(env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: no broker: pass the URL (mqtt://host:1883, amqp://user:pwd@host/) or set PYE2_TRANSPORT / PYE2_HOST"]
