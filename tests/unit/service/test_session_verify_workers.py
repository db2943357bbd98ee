"""A wall-clock Session with ``verify_workers``: the same deliveries, in the same order, the same rejections.

* two sessions on one realtime simulated network, with 2 verify workers and with none, receive
  the same stream (genuine, forged and garbage messages): identical payload sequences in
  publishing order and identical rejection counts, the workers doing the checking;
* killing a worker mid-stream loses nothing and keeps the order;
* close() while batches are with (frozen) workers returns and leaves no child process
  (running or zombie);
* connection events pass through the verifying dispatcher in their place; batches too small
  to be worth a round trip are left to the engine (and start no process);
* the option is validated, read from ``PYE2_VERIFY_WORKERS``, and ignored on the virtual clock.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pye2 import Session
from pye2.adapters.json_serializer import JsonSerializer
from pye2.errors import ConfigError
from pye2.service.dispatch import Dispatcher
from pye2.service.inbox import Inbox
from pye2.service.stats import SessionStats
from pye2.service.verify_workers import VERIFY_WORKERS_ENV, Verdict, VerifyPool, VerifySpec
from pye2.service.worker import DispatchWorker
from pye2.wire import RATIO1, Identity, WireProfile, sign_message
from pye2_transport_memory import SimulatedNetwork


@pytest.fixture()
def realtime_net() -> Iterator[Any]:
    with SimulatedNetwork(nodes=1, seed=5, realtime=True, heartbeat_interval=0.2) as net:
        yield net


STREAMER = Identity.generate()


def _stream(profile: WireProfile, n: int, start: int = 0) -> tuple[list[bytes], list[int], int, int]:
    """Bodies, the payload numbers that must be delivered, and how many forged / garbage ones are among them.

    Every stream is the same node's (one key): a session takes another key claiming its name for an impostor.
    """
    signer = STREAMER
    bodies: list[bytes] = []
    genuine: list[int] = []
    forged = garbage = 0
    for i in range(start, start + n):
        message = sign_message({"EE_ID": "streamer", "EE_EVENT_TYPE": "PAYLOAD",
                                "EE_PAYLOAD_PATH": ["streamer", "pipe", "SIG", "inst"], "N": i, "V": i / 7},
                               signer, profile=profile)
        if i % 41 == 7:
            bodies.append(json.dumps(dict(message, N=-i)).encode())  # altered after signing
            forged += 1
        elif i % 97 == 3:
            bodies.append(b"{garbage " + str(i).encode())
            garbage += 1
        else:
            bodies.append(json.dumps(message).encode())
            genuine.append(i)
    return bodies, genuine, forged, garbage


def _session(net: Any, got: list[int], **options: Any) -> Session:
    def on_payload(sess: Session, e2id: str, pipeline: str, signature: str, instance: str, data: Any) -> None:
        if e2id == "streamer":
            got.append(data["N"])

    return Session(transport=net.transport(), clock=net.clock, profile=net.profile, identity=Identity.generate(),
                   on_payload=on_payload, **options)


def _pool(sess: Session) -> VerifyPool:
    worker = sess._worker
    assert worker is not None and worker.verifier is not None
    return worker.verifier


def _lingering(pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` that are still children of this process, running or zombie (not reaped)."""
    out = []
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone and reaped
        if int(text[text.rfind(")") + 2:].split()[1]) == os.getpid():
            out.append(pid)
    return out


def _children_of_me() -> list[int]:
    """Pids of every verify worker process this process has (by their command line)."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"pye2-verify-" in (entry / "cmdline").read_bytes():
                out.append(int(entry.name))
        except OSError:
            continue
    return out


def _publish(net: Any, bodies: list[bytes]) -> None:
    raw = net.transport()
    raw.connect()
    for body in bodies:
        raw.publish(net.profile.payloads, body)


def test_with_and_without_workers_the_same_payloads_in_order_and_the_same_rejections(realtime_net: Any) -> None:
    plain: list[int] = []
    verified: list[int] = []
    s0 = _session(realtime_net, plain, verify_workers=0)
    s2 = _session(realtime_net, verified, verify_workers=2)
    s0.connect()
    s2.connect()
    try:
        assert s0._worker is not None and s0._worker.verifier is None
        pool = _pool(s2)
        assert pool.start(wait=60) == 2
        local_before, answered_before = pool.local_batches, pool.answered
        bodies, genuine, forged, garbage = _stream(realtime_net.profile, 1500)
        _publish(realtime_net, bodies)
        for sess, got in ((s0, plain), (s2, verified)):
            assert sess.wait(lambda s=sess, g=got: len(g) >= len(genuine)  # type: ignore[misc]
                             and s.stats.as_dict()["rejected"].get("malformed", 0) >= garbage
                             and s.stats.as_dict()["rejected"].get("signature", 0) >= forged, 60)
        assert pool.local_batches == local_before  # the workers never failed: nothing fell back
        assert pool.answered > answered_before  # and they checked (the large batches of) the stream
        assert len(pool.pids()) == 2
    finally:
        s0.close()
        s2.close()
    assert verified == plain == genuine
    assert s2.stats.as_dict()["rejected"] == s0.stats.as_dict()["rejected"]
    assert s2.stats.as_dict()["rejected"] == {"signature": forged, "malformed": garbage}
    assert pool.started and _lingering(pool.started) == []


def test_killing_a_worker_mid_stream_loses_nothing(realtime_net: Any, caplog: pytest.LogCaptureFixture) -> None:
    got: list[int] = []
    sess = _session(realtime_net, got, verify_workers=2)
    sess.connect()
    first, genuine1, forged1, _ = _stream(realtime_net.profile, 800)
    second, genuine2, forged2, _ = _stream(realtime_net.profile, 800, start=800)
    try:
        pool = _pool(sess)
        assert pool.start(wait=60) == 2
        victim = pool.pids()[0]
        with caplog.at_level(logging.WARNING, "pye2.service.verify_workers"):
            _publish(realtime_net, first)
            assert sess.wait(lambda: len(got) >= 100, 60)
            os.kill(victim, signal.SIGKILL)
            _publish(realtime_net, second)
            assert sess.wait(lambda: len(got) >= len(genuine1) + len(genuine2), 60)
            assert sess.wait(lambda: sess.stats.as_dict()["rejected"].get("signature", 0) >= forged1 + forged2, 60)
        assert any(f"pid {victim}" in r.getMessage() for r in caplog.records)
    finally:
        sess.close()
    assert got == genuine1 + genuine2
    assert pool.started and _lingering(pool.started) == []


def test_close_with_batches_at_frozen_workers_returns_and_leaves_no_child(realtime_net: Any) -> None:
    got: list[int] = []
    sess = _session(realtime_net, got, verify_workers=2)
    sess.connect()
    pool = _pool(sess)
    try:
        assert pool.start(wait=60) == 2
        for pid in pool.pids():
            os.kill(pid, signal.SIGSTOP)  # they take batches and never answer
        bodies, genuine, _, _ = _stream(realtime_net.profile, 600)
        _publish(realtime_net, bodies)
        # (the nodes' heartbeats every 0.2 s wake this wait; nothing else would: the dispatcher is stuck)
        assert realtime_net.run_until(lambda: any(slot.outstanding for slot in pool._slots), 30)
    finally:
        sess.close()
    assert pool.started and _lingering(pool.started) == []
    assert got == genuine[:len(got)]  # whatever was applied came in order, without gaps


def test_connection_events_pass_through_in_their_place() -> None:
    pool = VerifyPool(VerifySpec(RATIO1, JsonSerializer()), 1, name="events")
    inbox: Inbox[tuple[str, Any]] = Inbox(10_000)
    decoded: list[tuple[Any, ...]] = []
    applied: list[Any] = []
    done = threading.Event()
    signer = Identity.generate()
    items: list[tuple[str, Any]] = []
    for i in range(600):
        if i % 50 == 0:
            items.append(("connection", f"event-{i}"))
        else:
            items.append(("payload", json.dumps(sign_message({"EE_ID": "n", "N": i}, signer, profile=RATIO1)).encode()))

    def decode(item: tuple[Any, ...]) -> Any:
        decoded.append(item)
        return item[2]

    def apply(kind: str, body: Any, result: Any) -> None:
        applied.append((kind, body, result))
        if len(applied) == len(items):
            done.set()

    stats = SessionStats()
    worker = DispatchWorker(inbox, decode, apply, Dispatcher(stats), stats, name="ev", verifier=pool)
    assert pool.start(wait=60) == 1
    for item in items:
        inbox.put(item)
    worker.start()
    try:
        assert done.wait(60)
    finally:
        worker.stop()
    assert [(k, b) for k, b, _ in applied] == items
    for kind, _, verdict in applied:
        if kind == "connection":
            assert verdict is None
        else:
            assert isinstance(verdict, Verdict) and verdict.ok
    assert all(len(item) == 3 for item in decoded)
    assert pool.local_batches == 0 and pool.pids() == []  # stop() closed the pool
    assert pool.started and _lingering(pool.started) == []


def test_small_batches_are_checked_by_the_engine_and_start_no_process() -> None:
    pool = VerifyPool(VerifySpec(RATIO1, JsonSerializer()), 2, name="small")
    inbox: Inbox[tuple[str, Any]] = Inbox(100)
    applied: list[Any] = []
    done = threading.Event()
    body = json.dumps(sign_message({"EE_ID": "n", "N": 1}, Identity.generate(), profile=RATIO1)).encode()

    def apply(kind: str, item: Any, result: Any) -> None:
        applied.append(result)
        if len(applied) == 5:
            done.set()

    stats = SessionStats()
    worker = DispatchWorker(inbox, lambda item: item, apply, Dispatcher(stats), stats, name="small", verifier=pool)
    for _ in range(5):
        inbox.put(("payload", body))
    worker.start()
    try:
        assert done.wait(30)
    finally:
        worker.stop()
    assert applied == [("payload", body, None)] * 5  # verdict None: the engine checks them itself
    assert pool.started == []


def test_option_validation_and_environment(realtime_net: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(ConfigError, match="verify_workers"):
            _session(realtime_net, [], verify_workers=bad).connect()
    monkeypatch.setenv(VERIFY_WORKERS_ENV, "3")
    sess = _session(realtime_net, [])
    off = _session(realtime_net, [], verify="off")
    sess.connect()
    off.connect()
    try:
        pool = _pool(sess)
        assert pool.size == 3
        assert off._worker is not None and off._worker.verifier is None  # nothing to check
    finally:
        sess.close()
        off.close()
    monkeypatch.setenv(VERIFY_WORKERS_ENV, "lots")
    with pytest.raises(ConfigError, match=VERIFY_WORKERS_ENV):
        _session(realtime_net, []).connect()
    assert _lingering(pool.started) == []


def test_by_default_the_worker_count_follows_the_machine(realtime_net: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERIFY_WORKERS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)  # a 2-core machine
    two = _session(realtime_net, []).connect()  # the count is decided when the session connects
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)  # a process pinned to one core
    one = _session(realtime_net, []).connect()
    try:
        assert _pool(two).size == 1 and _pool(two).pids() == []  # one worker, not started before it is needed
        assert one._worker is not None and one._worker.verifier is None
    finally:
        two.close()
        one.close()


def test_the_virtual_clock_ignores_the_option() -> None:
    beats: list[str] = []
    with SimulatedNetwork(nodes=1, seed=3, profile=RATIO1) as net:
        sess = Session(transport=net.transport(), clock=net.clock, profile=net.profile, identity=Identity.generate(),
                       on_heartbeat=lambda s, e2id, data: beats.append(e2id), verify_workers=2)
        sess.run(wait=25, close_session=False)
        try:
            assert sess._worker is None and beats
            assert _lingering(_children_of_me()) == []
        finally:
            sess.close()
