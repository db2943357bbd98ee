"""Capture files and replays, in-process: the format, malformed lines, pacing, and live == replay on the simulator."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from pye2.capture import CaptureHeader, CaptureReader, CaptureRecord, CaptureWriter, read_capture, topic_kind
from pye2.capture.replay import (
    Replayer,
    ReplayReport,
    VirtualPacer,
    WallPacer,
    message_counters,
    replay_into_session,
    rewrite_root,
)
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.errors import ConfigError, DecodeError, MessageTooLarge
from pye2_transport_memory.clock import VirtualClock
from pye2_transport_memory.network import SimulatedNetwork
from pye2_transport_memory.transport import MemoryTransport

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "real_node_r1oracle.jsonl"


def _write(records: list[tuple[str, bytes, float]], max_bytes: int = 1000) -> str:
    out = io.StringIO()
    writer = CaptureWriter(out, max_bytes=max_bytes)
    writer.write_header(CaptureHeader(root="r", profile="AIXP", started=1.0))
    for topic, body, when in records:
        writer.record(topic, body, when)
    writer.close()
    return out.getvalue()


def test_bodies_round_trip_as_text_or_base64_and_oversize_ones_are_omitted_and_counted() -> None:
    text_body, binary, big = '{"A": "é"}'.encode(), b"\x80\x00\xff", b"x" * 1001
    out = io.StringIO()
    writer = CaptureWriter(out, max_bytes=1000)
    writer.write_header(CaptureHeader(root="r"))
    assert writer.record("r/ctrl", text_body, 5.0) is True
    assert writer.record("r/payloads", binary, 6.0) is True
    assert writer.record("r/payloads", big, 7.0) is False
    writer.close()
    assert (writer.written, writer.omitted, writer.bytes) == (2, 1, len(text_body) + len(binary))
    assert writer.by_kind == {"ctrl": 1, "payloads": 2}
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[1]["body"] == '{"A": "é"}' and "encoding" not in lines[1]
    assert lines[2]["encoding"] == "base64"
    assert lines[3] == {"time": 7.0, "topic": "r/payloads", "omitted": "too_large", "size": 1001}
    capture = read_capture(io.StringIO(out.getvalue()))
    assert capture.header == CaptureHeader(root="r")
    assert [r.body for r in capture.records] == [text_body, binary, None]
    assert capture.records[2] == CaptureRecord(7.0, "r/payloads", None, 1001, omitted="too_large")
    assert capture.malformed_count == 0


def test_records_after_close_are_counted_as_late_not_written() -> None:
    out = io.StringIO()
    writer = CaptureWriter(out)
    writer.close()
    assert writer.record("r/ctrl", b"x", 1.0) is False
    assert writer.late == 1 and out.getvalue() == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_counted_and_logged_not_raised_on_the_transport_thread() -> None:
    full = open("/dev/full", "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    try:
        writer = CaptureWriter(full)
        for i in range(3):
            assert writer.record("r/ctrl", b"x", float(i)) is False
        writer.close()
        assert writer.write_errors >= 3 and writer.written == 0
    finally:
        with contextlib.suppress(OSError):
            full.close()


def test_malformed_lines_are_counted_with_their_line_numbers_and_the_rest_is_read() -> None:
    good = _write([("r/ctrl", b"one", 1.0), ("r/ctrl", b"two", 2.0)]).splitlines()
    lines = [good[0], good[1], "{not json", "[1, 2]", '{"time": "soon", "topic": "r/ctrl", "body": ""}',
             '{"time": 3, "topic": "r/+", "body": ""}',
             '{"time": 3, "topic": "r/ctrl", "body": "@@", "encoding": "base64"}',
             '{"time": 3, "topic": "r/ctrl", "body": "", "encoding": "rot13"}',
             '{"time": 3, "topic": "r/ctrl"}', "", good[2]]
    seen: list[str] = []
    reader = CaptureReader(io.StringIO("\n".join(lines) + "\n"), on_malformed=lambda p: seen.append(str(p)))
    records = list(reader)
    assert [r.body for r in records] == [b"one", b"two"]
    assert reader.malformed_count == 7 and [p.line for p in reader.malformed] == [3, 4, 5, 6, 7, 8, 9]
    assert seen[0].startswith("line 3: not JSON")
    assert "JSON list" in seen[1] and "'time'" in seen[2] and "wildcards" in seen[3]
    assert "base64" in seen[4] and "rot13" in seen[5] and "'body'" in seen[6]
    with pytest.raises(DecodeError, match="line 3"):
        list(CaptureReader(io.StringIO("\n".join(lines)), strict=True))


def test_an_over_long_line_is_skipped_without_losing_the_next_one() -> None:
    text = _write([("r/ctrl", b"a" * 300, 1.0), ("r/ctrl", b"ok", 2.0)])
    reader = CaptureReader(io.StringIO(text), max_line_chars=200)
    assert [r.body for r in reader] == [b"ok"]
    assert reader.malformed_count == 1 and "longer than 200" in reader.malformed[0].reason


def test_a_file_without_header_is_a_capture_whose_root_is_the_first_topic_level() -> None:
    capture = read_capture(['{"time": 1, "topic": "abc/ctrl", "body": "x"}'])
    assert capture.header is None and capture.root == "abc" and len(capture.records) == 1
    with pytest.raises(DecodeError, match="newer"):
        read_capture(['{"pye2_capture": 99, "root": "r"}'], strict=True)


def test_topic_kinds_and_root_rewriting() -> None:
    assert [topic_kind(t, "r") for t in ("r/ctrl", "r/notif", "r/payloads", "r/n1/config", "x/ctrl", "r")] == [
        "ctrl", "notif", "payloads", "config", "other", "root"]
    assert rewrite_root("old/ctrl", "old", "new") == "new/ctrl"
    assert rewrite_root("older/ctrl", "old", "new") == "older/ctrl"
    assert rewrite_root("old", "old", "new") == "new"
    assert rewrite_root("old/ctrl", "old", None) == "old/ctrl"


def _records(*times: float) -> list[CaptureRecord]:
    return [CaptureRecord(t, "r/ctrl", str(t).encode(), 3) for t in times]


def test_the_virtual_pacer_publishes_each_record_at_its_captured_time() -> None:
    clock = VirtualClock()
    pacer = VirtualPacer(clock)
    first = clock.time() + 100
    pacer.start_at(first)
    seen: list[tuple[float, bytes]] = []
    report = Replayer(lambda topic, body: seen.append((clock.time(), body)), pacer).play(
        _records(first, first + 2.5, first + 2.5, first + 10))
    assert [t - first for t, _ in seen] == [0, 2.5, 2.5, 10]
    assert report.published == 4 and report.captured_span == 10


def test_a_capture_older_than_the_virtual_clock_is_shifted_forward() -> None:
    clock = VirtualClock()
    pacer = VirtualPacer(clock)
    start = clock.time()
    pacer.start_at(start - 1000)
    seen: list[float] = []
    Replayer(lambda topic, body: seen.append(clock.time()), pacer).play(_records(start - 1000, start - 990))
    assert seen == [start, start + 10] and pacer.offset == 1000


def test_the_wall_pacer_scales_gaps_by_speed_and_stops_on_its_event() -> None:
    now = [0.0]
    waits: list[float] = []

    class FakeEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(round(timeout or 0, 6))
            now[0] += timeout or 0
            return False

    pacer = WallPacer(4.0, stop=FakeEvent(), monotonic=lambda: now[0])
    Replayer(lambda topic, body: None, pacer).play(_records(10, 12, 12, 20))
    assert waits == [0.5, 2.0]
    assert WallPacer(0).wait_until(123.0) is True
    stop = threading.Event()
    stop.set()
    report = Replayer(lambda topic, body: None, WallPacer(1, stop=stop)).play(_records(1, 2))
    assert report.interrupted and report.published == 0
    with pytest.raises(ConfigError):
        WallPacer(-1)


def test_refused_bodies_are_counted_and_the_replay_goes_on() -> None:
    def publish(topic: str, body: bytes) -> None:
        if body == b"big":
            raise MessageTooLarge("too big")
        if topic == "bad":
            raise ConfigError("cannot route")

    records = [CaptureRecord(1, "r/ctrl", b"big", 3), CaptureRecord(1, "bad", b"x", 1),
               CaptureRecord(1, "r/ctrl", None, 9, omitted="too_large"), CaptureRecord(1, "r/ctrl", b"ok", 2)]
    report = Replayer(publish, WallPacer(0)).play(records)
    assert report.failed == {"too_large": 1, "refused": 1} and report.omitted == 1 and report.published == 1


def _live_and_replayed(tmp_path: Path, profile: WireProfile,
                       same_key: bool) -> tuple[dict[str, Any], dict[str, Any], ReplayReport]:
    """A session on a simulated network with a pipeline emitting payloads, captured as it runs, then replayed."""
    net = SimulatedNetwork(nodes=2, seed=7, profile=profile)
    writer = CaptureWriter.open(tmp_path / "live.jsonl", clock=net.clock.time)
    writer.write_header(CaptureHeader(root=net.profile.root, profile=net.profile.name))
    tap = MemoryTransport(net.hub, name="tap")
    tap.connect()
    tap.subscribe(f"{net.profile.root}/#", writer.handler())
    session = net.session()
    session.connect()  # before the nodes start: the session hears all the capture holds
    net.start()
    assert session.wait_for_node("sim-node-1", 30)
    payloads: list[int] = []
    pipeline = session.create_pipeline(e2id="sim-node-1", name="counted", wait=True)
    pipeline.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c1", config={"PROCESS_DELAY": 1},
                                   on_data=lambda *args: payloads.append(1))
    net.run_until(lambda: len(payloads) >= 10, 60)
    net.hub.publish(f"{net.profile.root}/ctrl", b"not json at all")  # a rejection, live and replayed
    net.advance(5)
    net.stop()
    live = message_counters(session.stats.as_dict())
    session.close()
    writer.close()
    capture = read_capture(tmp_path / "live.jsonl")
    report, replayed = replay_into_session(capture.records, profile=net.profile,
                                           identity=session.identity if same_key else None)
    return live, replayed, report


@pytest.mark.parametrize(("profile", "same_key"), [(AIXP, False), (RATIO1, True)], ids=["aixp", "ratio1-key"])
def test_a_captured_session_replayed_into_the_simulator_gives_the_live_counters(
        tmp_path: Path, profile: WireProfile, same_key: bool) -> None:
    live, replayed, report = _live_and_replayed(tmp_path, profile, same_key)
    assert live["delivered"]["payload"] >= 10 and live["delivered"]["heartbeat"] >= 2
    assert live["delivered"]["notification"] >= 1 and live["rejected"] == {"malformed": 1}
    assert replayed == live
    assert report.published >= live["received"]  # plus the session's own commands on <root>/<node>/config


def test_the_real_node_fixture_replays_with_its_known_outcome() -> None:
    """The fixture: real node messages (RATIO1, root r1oracle); three were cut short when saved."""
    capture = read_capture(FIXTURE, strict=True)
    assert capture.header is not None and capture.header.profile == "RATIO1" and len(capture.records) == 17
    report, counters = replay_into_session(capture.records, profile=RATIO1.with_root("r1oracle"))
    assert report.published == 17
    assert counters["delivered"] == {"notification": 9, "payload": 5}
    assert counters["rejected"] == {"signature": 3}
    # under another root the same session would hear nothing of it
    _, elsewhere = replay_into_session(capture.records, profile=RATIO1.with_root("other"))
    assert elsewhere["received"] == 0
