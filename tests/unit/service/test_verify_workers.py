"""VerifyPool: signatures checked in worker processes say exactly what the in-process check says.

* every signed case of the shared vectors (signatures, tampered, heartbeats, captured samples)
  and tampered / malformed / garbage bodies get the verdict, reason and sender that
  ``verify_fields`` gives in this process, from the worker processes themselves, with the
  default backends and with ``PYE2_VERIFIER=cryptography`` / ``PYE2_JSON=stdlib``;
* the engine applies a verdict as it applies its own check (strict and warn), and checks
  itself when the verdict is unchecked;
* a worker that is killed, or hangs, loses nothing: its batches are verified here and it is
  restarted; one that cannot build the verification is given up, the receiver checks itself;
* close() with batches outstanding returns, leaves no child process (running or zombie), and
  the batches are still answered; nothing is started before the first use.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pye2.adapters.json_serializer import JsonSerializer
from pye2.adapters.select import best_parser, best_sorted_text, best_verifier
from pye2.domain.signing import verify_fields
from pye2.errors import ConfigError, DecodeError, SignatureInvalid
from pye2.service.engine import ProtocolEngine
from pye2.service.verify_workers import (
    INVALID,
    MALFORMED,
    OK,
    VERIFY_WORKERS_ENV,
    Verdict,
    VerifyPool,
    VerifySpec,
    default_verify_workers,
    machine_verify_workers,
    usable_cores,
)
from pye2.wire import AIXP, RATIO1, Identity, WireProfile, sign_message

SERIALIZER = JsonSerializer()


def _spec(profile: WireProfile, *, verifier: str = "", json_choice: str = "", max_bytes: int = 1 << 24) -> VerifySpec:
    return VerifySpec(profile, SERIALIZER, verifier, json_choice, max_bytes)


def _in_process(body: bytes, spec: VerifySpec) -> tuple[Any, ...]:
    """What the engine's own check says, with the engine's calls (parse, then verify_fields)."""
    if len(body) > spec.max_message_bytes:
        return (MALFORMED,)
    try:
        message = best_parser(SERIALIZER, spec.json)(body)
    except DecodeError:
        return (MALFORMED,)
    raw = message.get("EE_SENDER")
    try:
        sender = verify_fields(message, profile=spec.profile, verify=best_verifier(spec.verifier).verify,
                               json_native=True, sorted_text=best_sorted_text(spec.json))
    except SignatureInvalid as exc:
        return (INVALID, exc.reason, raw if isinstance(raw, str) else None)
    return (OK, "", sender)


def _said(verdict: Verdict) -> tuple[Any, ...]:
    return (MALFORMED,) if verdict.status == MALFORMED else tuple(verdict)


def _vector_bodies(load: Callable[[str], Any], samples: Path) -> dict[str, list[bytes]]:
    """Profile name -> wire bodies of every signed case in the shared vectors."""
    out: dict[str, list[bytes]] = {"AIXP": [], "RATIO1": []}
    for filename, field in (("signatures.json", "signed"), ("tampered.json", "message")):
        for case in load(filename)["cases"]:
            legacy = "unversioned" in case.get("canon", "") or "unversioned_42ee127" in case["id"] \
                or "unversioned_42ee127" in case.get("based_on", "")
            body = json.dumps(case[field]).encode()
            out["AIXP" if legacy else "RATIO1"].append(body)
            out["RATIO1" if legacy else "AIXP"].append(body)  # the other profile's verdicts must match too
    for case in load("heartbeats.json")["cases"]:
        out["RATIO1"].append(case["wire_json"].encode())
    for path in sorted(samples.glob("*.json")):
        out["RATIO1"].append(path.read_bytes())
    return out


def _garbage(profile: WireProfile) -> list[bytes]:
    signer = Identity.generate()
    good = sign_message({"EE_ID": "n1", "EE_EVENT_TYPE": "PAYLOAD", "X": [1.5, 1e-7, "é"], "N": 3}, signer,
                        profile=profile)
    text = json.dumps(good)
    return [
        text.encode(),                                              # genuine
        json.dumps(dict(good, N=4)).encode(),                      # altered after signing
        json.dumps(dict(good, EE_HASH="0" * 64)).encode(),         # digest replaced
        json.dumps(dict(good, EE_SIGN=good["EE_SIGN"][:-4] + "AAA=")).encode(),  # signature altered
        json.dumps(dict(good, EE_SIGN=12)).encode(),               # signature of the wrong type
        json.dumps({k: v for k, v in good.items() if k != "EE_SENDER"}).encode(),
        json.dumps(dict(good, EE_SENDER="0xai_short")).encode(),
        json.dumps(dict(good, SIGN_CANON_V="v9")).encode(),
        json.dumps({"EE_ID": "unsigned"}).encode(),
        text.encode()[:-7],                                         # truncated JSON
        b"", b"not json", b"[1, 2, 3]", b"\xff\xfe\x00garbage", b"null", b'"just a string"',
        b'{"EE_SENDER": 5, "EE_SIGN": null}', b'{"a": NaN, "b": 1e400}',
        b"{" * 5000,                                                # deep nesting
        text.encode() + b" " * 2048,                               # over the spec's size cap below
    ]


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[str, VerifyPool]]:
    made = {name: VerifyPool(_spec(profile), 2, name=f"test-{name}")
            for name, profile in (("AIXP", AIXP), ("RATIO1", RATIO1))}
    try:
        for pool in made.values():
            assert pool.start(wait=60) == 2
        yield made
    finally:
        for pool in made.values():
            pool.close()


def _run(pool: VerifyPool, bodies: list[bytes], size: int = 16) -> list[Verdict]:
    handles = [pool.submit(bodies[i:i + size]) for i in range(0, len(bodies), size)]
    return [v for h in handles for v in h.result()]


def test_every_vector_gets_the_in_process_verdict_from_the_workers(
        pools: dict[str, VerifyPool], vectors: Callable[[str], Any], spec_samples: Path) -> None:
    by_profile = _vector_bodies(vectors, spec_samples)
    seen = set()
    for name, bodies in by_profile.items():
        pool = pools[name]
        before = pool.local_batches
        got = _run(pool, bodies)
        assert pool.local_batches == before  # answered by the processes, not by the fallback
        expected = [_in_process(b, pool.spec) for b in bodies]
        assert [_said(v) for v in got] == expected
        seen.update(v.status for v in got)
    assert {OK, INVALID} <= seen


@pytest.mark.parametrize("profile", [AIXP, RATIO1], ids=lambda p: p.name)
def test_tampered_malformed_and_garbage_bodies(profile: WireProfile) -> None:
    bodies = _garbage(profile)
    spec = _spec(profile, max_bytes=len(bodies[-1]) - 1)
    pool = VerifyPool(spec, 1, name="garbage")
    try:
        assert pool.start(wait=60) == 1
        got = pool.submit(bodies).result()
        assert pool.local_batches == 0
    finally:
        pool.close()
    assert [_said(v) for v in got] == [_in_process(b, spec) for b in bodies]
    assert got[0].ok and got[0].sender == json.loads(bodies[0])["EE_SENDER"]
    assert got[1].status == INVALID and got[1].reason.startswith(("Corrupted digest", "bad signature"))
    assert got[9].status == MALFORMED and not got[9].checked and got[-1].status == MALFORMED


@pytest.mark.parametrize("choices", [("cryptography", "stdlib"), ("coincurve", "orjson")])
def test_backend_choices_reach_the_workers_and_change_no_verdict(
        choices: tuple[str, str], vectors: Callable[[str], Any], spec_samples: Path) -> None:
    spec = _spec(RATIO1, verifier=choices[0], json_choice=choices[1])
    bodies = _vector_bodies(vectors, spec_samples)["RATIO1"] + _garbage(RATIO1)
    pool = VerifyPool(spec, 1, name="choices")
    try:
        assert pool.start(wait=60) == 1
        got = _run(pool, bodies, size=64)
        assert pool.local_batches == 0
    finally:
        pool.close()
    assert [_said(v) for v in got] == [_in_process(b, _spec(RATIO1)) for b in bodies]


def _engine(verify: str) -> ProtocolEngine:
    return ProtocolEngine(profile=RATIO1, identity=Identity.generate(), serializer=SERIALIZER,
                          parse=best_parser(SERIALIZER), sorted_text=best_sorted_text(),
                          formatter_lookup=lambda name: (_ for _ in ()).throw(ConfigError(name)), verify=verify)


def _outcome(event: Any) -> tuple[Any, ...]:
    return (type(event).__name__, getattr(event, "reason", None), getattr(event, "detail", None),
            getattr(event, "sender", None))


@pytest.mark.parametrize("mode", ["strict", "warn"])
def test_the_engine_applies_a_verdict_as_its_own_check(
        mode: str, pools: dict[str, VerifyPool], vectors: Callable[[str], Any], spec_samples: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    bodies = _vector_bodies(vectors, spec_samples)["RATIO1"] + _garbage(RATIO1)
    verdicts = _run(pools["RATIO1"], bodies)
    with caplog.at_level(logging.WARNING, "pye2.service.engine"):
        inline = [_outcome(_engine(mode).receive("payload", b, 0.0)) for b in bodies]
        inline_log = sorted(r.getMessage() for r in caplog.records)
        caplog.clear()
        given = [_outcome(_engine(mode).receive("payload", b, 0.0, v)) for b, v in zip(bodies, verdicts)]
        given_log = sorted(r.getMessage() for r in caplog.records)
    assert given == inline
    assert given_log == inline_log and inline_log
    assert any(o[:2] == ("Rejected", "signature") for o in inline) == (mode == "strict")


def test_an_unchecked_verdict_makes_the_engine_check_itself() -> None:
    forged = dict(sign_message({"EE_ID": "n", "EE_EVENT_TYPE": "PAYLOAD"}, Identity.generate(), profile=RATIO1),
                  EE_ID="other")
    body = json.dumps(forged).encode()
    got = _engine("strict").receive("payload", body, 0.0, Verdict(MALFORMED, "not checked"))
    assert _outcome(got)[:2] == ("Rejected", "signature")


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


def _freeze(pool: VerifyPool) -> list[int]:
    pids = pool.pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def test_a_killed_worker_loses_nothing_and_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    bodies = _garbage(RATIO1)[:9] * 8
    spec = _spec(RATIO1)
    expected = [_in_process(b, spec) for b in bodies]
    pool = VerifyPool(spec, 2, name="kill")
    try:
        assert pool.start(wait=60) == 2
        old = _freeze(pool)  # stopped: what we submit now is certainly outstanding when they die
        handles = [pool.submit(bodies[i:i + 8]) for i in range(0, len(bodies), 8)]
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, "pye2.service.verify_workers"):
            got = [v for h in handles for v in h.result()]
        assert [_said(v) for v in got] == expected
        assert pool.local_batches == len(handles)
        assert sum("verified in this process" in r.getMessage() for r in caplog.records) == 2
        assert pool.start(wait=60) == 2  # restarted after the back-off
        assert set(pool.pids()).isdisjoint(old) and pool.restarts == 2 and len(pool.started) == 4
        before = pool.local_batches
        assert [_said(v) for v in _run(pool, bodies, 8)] == expected
        assert pool.local_batches == before
    finally:
        pool.close()
    assert pool.started and _lingering(pool.started) == []


def test_a_large_batch_is_split_between_the_workers_and_keeps_its_order() -> None:
    bodies = _garbage(RATIO1)[:9] * 5
    spec = _spec(RATIO1)
    pool = VerifyPool(spec, 2, name="split", min_part=4)
    try:
        assert pool.start(wait=60) == 2
        victim = pool.pids()[0]
        os.kill(victim, signal.SIGSTOP)
        handle = pool.submit(bodies)
        assert len(handle._parts) == 2 and {p.slot.index for p in handle._parts if p.slot} == {0, 1}
        os.kill(victim, signal.SIGKILL)
        assert [_said(v) for v in handle.result()] == [_in_process(b, spec) for b in bodies]
        assert pool.local_batches == 1  # the killed worker's part, verified here; the other part came back
    finally:
        pool.close()
    assert pool.started and _lingering(pool.started) == []


def test_a_hung_worker_is_replaced_and_its_batch_verified_here() -> None:
    bodies = _garbage(RATIO1)[:4]
    spec = _spec(RATIO1)
    pool = VerifyPool(spec, 1, name="hung", answer_timeout=0.3)
    try:
        assert pool.start(wait=60) == 1
        (old,) = _freeze(pool)
        got = pool.submit(bodies).result()
        assert [_said(v) for v in got] == [_in_process(b, spec) for b in bodies]
        assert pool.local_batches == 1
        assert pool.start(wait=60) == 1 and pool.pids() != [old]
    finally:
        pool.close()
    assert pool.started and _lingering(pool.started) == []


def test_a_worker_that_cannot_build_the_check_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    pool = VerifyPool(_spec(RATIO1, verifier="no-such-backend"), 2, name="broken")
    body = _garbage(RATIO1)[0]
    with caplog.at_level(logging.ERROR, "pye2.service.verify_workers"):
        try:
            assert pool.start(wait=60) == 0
            assert pool.pids() == [] and len(pool.started) == 2
            (verdict,) = pool.submit([body]).result()
        finally:
            pool.close()
    assert verdict.status == MALFORMED and not verdict.checked  # the engine checks it itself
    assert any("not restarted" in r.getMessage() for r in caplog.records)
    assert pool.started and _lingering(pool.started) == []


def test_close_with_outstanding_batches_returns_and_leaves_no_process() -> None:
    bodies = _garbage(RATIO1)[:9]
    spec = _spec(RATIO1)
    pool = VerifyPool(spec, 2, name="close")
    assert pool.start(wait=60) == 2
    _freeze(pool)
    handles = [pool.submit(bodies) for _ in range(4)]
    assert not any(h.done() for h in handles)
    pool.close()
    assert pool.started and _lingering(pool.started) == []
    expected = [_in_process(b, spec) for b in bodies]
    assert all([_said(v) for v in h.result()] == expected for h in handles)
    assert pool.submit(bodies).result() and pool.pids() == []  # after close: verified here, nothing started
    pool.close()  # idempotent


def test_nothing_starts_before_the_first_use_and_empty_batches_need_no_process() -> None:
    pool = VerifyPool(_spec(RATIO1), 2, name="lazy")
    try:
        assert pool.submit([]).result() == [] and pool.pids() == [] and pool.started == []
        pool.submit([b"{}"]).result()
        assert len(pool.pids()) == 2
    finally:
        pool.close()
    assert pool.started and _lingering(pool.started) == []


def test_worker_count_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERIFY_WORKERS_ENV, raising=False)
    assert default_verify_workers() == machine_verify_workers()
    monkeypatch.setenv(VERIFY_WORKERS_ENV, "0")
    assert default_verify_workers() == 0
    monkeypatch.setenv(VERIFY_WORKERS_ENV, "3")
    assert default_verify_workers() == 3
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv(VERIFY_WORKERS_ENV, bad)
        with pytest.raises(ConfigError, match=VERIFY_WORKERS_ENV):
            default_verify_workers()
    with pytest.raises(ConfigError):
        VerifyPool(_spec(RATIO1), 0)


def test_the_default_worker_count_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # one core: verify in the session's own process; two: one worker beside it; many: a few, not one per core
    assert [machine_verify_workers(n) for n in (1, 2, 3, 4, 8, 64)] == [0, 1, 2, 3, 3, 3]
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    assert machine_verify_workers() == machine_verify_workers(usable_cores())
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    monkeypatch.delenv(VERIFY_WORKERS_ENV, raising=False)
    assert default_verify_workers() == 0  # a process pinned to one core starts no worker
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert default_verify_workers() == 1
