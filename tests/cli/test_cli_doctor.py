"""``pye2 doctor`` as a process against ``pye2 sim`` on Mosquitto: a healthy setup, and each kind of problem."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest
from _cli_rig import NODES, Sim

from pye2.plugins.host import default_host

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def _checks(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_healthy_setup_is_all_ok_and_exit_0(sim: Sim) -> None:
    done = sim.run("doctor", "--wait", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok    identity    ") and "(mode 0600) loads" in lines[0]
    assert lines[1].startswith("ok    broker      127.0.0.1:") and "reachable" in lines[1]
    assert "connected in" in lines[2] and "round trip" in lines[2]
    for node in NODES:
        assert any(line.startswith(f"ok    node        {node} ({sim.addresses[node]}): online, allow-lists this "
                                   "identity, signs without ETH, clock skew") for line in lines), done.stdout
    assert lines[-1] == "0 problem(s), 0 warning(s) in 7 check(s)"


def test_not_allow_listed_and_an_insecure_key_are_problems_with_fixes(sim: Sim) -> None:
    insecure = sim.work / "insecure.pem"
    insecure.write_bytes(sim.other.read_bytes())
    insecure.chmod(0o644)
    done = sim.run("doctor", "--wait", "2", "--json", identity=insecure)
    assert done.returncode == 1
    checks = _checks(done)
    assert checks[0] == {"check": "identity", "status": "fail",
                         "detail": f"{insecure} can be read by other users (mode 0644)", "fix": f"chmod 600 {insecure}"}
    insecure.chmod(0o600)
    done = sim.run("doctor", "--wait", "2", "--json", identity=insecure)
    assert done.returncode == 1
    nodes = [c for c in _checks(done) if c.get("check") == "node"]
    assert len(nodes) == 2 and all(c["status"] == "fail" for c in nodes)
    assert all(f"does not allow-list this identity {sim.other_address}" in str(c["detail"]) for c in nodes)
    assert all(f"pye2 sim: --allow {sim.other_address}" in str(c["fix"]) for c in nodes)
    assert _checks(done)[-1] == {"summary": {"problems": 2, "warnings": 0, "checks": 7}}


def test_a_wrong_root_hears_no_node(sim: Sim) -> None:
    done = sim.run("doctor", "--wait", "1", "--broker", sim.broker, "--root", sim.root + "-typo",
                   "--identity", str(sim.me), connection=False)
    assert done.returncode == 1
    assert f"FAIL  nodes       no node heard in 1 s on root '{sim.root}-typo'" in done.stdout
    assert "fix: check --root and --profile" in done.stdout


def test_broker_down_is_a_failed_check_without_the_password(sim: Sim, unused_broker: str) -> None:
    done = sim.run("doctor", "--broker", unused_broker, "--identity", str(sim.me), connection=False)
    assert done.returncode == 1
    assert "FAIL  broker      cannot reach 127.0.0.1:" in done.stdout and "Connection refused" in done.stdout
    assert "fix: start the broker" in done.stdout and "s3cret-pw" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "1 problem(s), 0 warning(s) in 2 check(s)"


def test_rejections_while_listening_are_reported_with_reasons(sim: Sim) -> None:
    transport = default_host().load().make_transport(sim.broker)
    transport.connect()
    stop = threading.Event()

    def flood() -> None:  # garbage on the heartbeat topic while doctor listens
        while not stop.wait(0.2):
            transport.publish(f"{sim.root}/ctrl", b"{not json")

    thread = threading.Thread(target=flood)
    thread.start()
    try:
        done = sim.run("doctor", "--wait", "2", "--json")
    finally:
        stop.set()
        thread.join()
        transport.close()
    rejections = [c for c in _checks(done) if c.get("check") == "rejections"]
    assert len(rejections) == 1 and rejections[0]["status"] == "warn"
    assert str(rejections[0]["detail"]).split()[1:4] == ["malformed", "from", "unknown"]
    assert "do not parse" in str(rejections[0]["fix"])
    assert done.returncode == 0  # warnings are not failures
