"""``pye2 nodes`` and ``pye2 pipelines`` / ``pye2 archive`` as processes against ``pye2 sim`` on Mosquitto."""

from __future__ import annotations

import json

import pytest
from _cli_rig import NODES, Sim, one_error_line, stop

from pye2 import Session
from pye2.wire import Identity

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def test_nodes_lists_each_node_with_version_resources_and_that_it_allow_lists_us(sim: Sim) -> None:
    done = sim.run("nodes", "--wait", "2.5")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2 node(s) heard, 2 online") and sim.me_address in lines[0]
    assert lines[1].split() == ["NODE", "ADDRESS", "STATUS", "VERSION", "CPU", "MEMORY", "PIPELINES", "ALLOWS",
                                "ME", "SIGNING"]
    for node, line in zip(NODES, lines[2:]):
        cells = line.split()
        assert cells[0] == node and cells[1] == sim.addresses[node] and cells[2] == "online"
        assert cells[3] == "7.7.336" and cells[4].endswith("%") and cells[-3:] == ["1", "yes", "plain"]


def test_nodes_json_says_another_identity_is_not_allow_listed(sim: Sim) -> None:
    done = sim.run("nodes", "--wait", "2.5", "--json", identity=sim.other)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["node"] for r in rows] == list(NODES)
    for row in rows:
        assert row["online"] is True and row["secured"] is True and row["allows_me"] is False
        assert row["address"] == sim.addresses[row["node"]] and row["signing"] == "plain"
        assert row["pipelines"] == 1 and abs(row["clock_skew_s"]) < 5 and row["memory_total_gb"] > 0


def test_nodes_watch_refreshes_until_interrupted(sim: Sim) -> None:
    proc = sim.start("nodes", "--watch", "--interval", "0.5", "--json")
    assert proc.stdout is not None
    seen: dict[str, int] = {}
    while min(seen.get(n, 0) for n in NODES) < 2:  # each node in two refreshes at least
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        row = json.loads(line)
        assert "time" in row
        seen[row["node"]] = seen.get(row["node"], 0) + 1
    code, _, err = stop(proc)
    assert code == 0 and err == ""


def test_pipelines_lists_the_admin_pipeline_and_its_instances(sim: Sim) -> None:
    done = sim.run("pipelines", "sim-node-1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"node sim-node-1 ({sim.addresses['sim-node-1']}): 1 pipeline(s)")
    assert lines[1].split() == ["PIPELINE", "TYPE", "SIGNATURE", "INSTANCE"]
    assert any(line.split()[:3] == ["admin_pipeline", "NetworkListener", "NET_MON_01"] for line in lines[2:])
    by_address = sim.run("pipelines", sim.addresses["sim-node-1"], "--json")
    records = [json.loads(line) for line in by_address.stdout.splitlines()]
    assert records[0]["pipeline"] == "admin_pipeline" and records[0]["node"] == "sim-node-1"
    assert {"signature": "NET_MON_01", "instance_id": "NET_MON_01_INST"} in records[0]["instances"]


def test_an_unknown_node_is_one_line_naming_the_nodes_heard(sim: Sim) -> None:
    for command in (("pipelines", "no-such-node"), ("archive", "no-such-node", "p")):
        done = sim.run(*command, "--timeout", "2")
        assert done.returncode == 1 and done.stdout == ""
        line = one_error_line(done.stderr)
        assert "node no-such-node not heard within 2 s" in line and "sim-node-1" in line and "sim-node-2" in line


def _deploy(sim: Sim, name: str) -> None:
    with Session(transport=sim.broker, root_topic=sim.root, identity=Identity.load(sim.me), name="deployer") as s:
        assert s.wait_for_node("sim-node-2", 20)
        s.create_pipeline(e2id="sim-node-2", name=name, data_source="Void", wait=20)


def test_archive_closes_a_pipeline_and_waits_for_the_node(sim: Sim) -> None:
    _deploy(sim, "to-close")
    refused = sim.run("archive", "sim-node-2", "to-close", identity=sim.other)
    assert refused.returncode == 1
    line = one_error_line(refused.stderr)
    assert "allow-list does not list this identity" in line and f"--allow {sim.other_address}" in line
    done = sim.run("archive", "sim-node-2", "to-close", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["archived"] is True and record["pipeline"] == "to-close" and record["node"] == "sim-node-2"
    again = sim.run("archive", "sim-node-2", "to-close")
    assert again.returncode == 1
    assert "has no pipeline 'to-close' (it has: admin_pipeline)" in one_error_line(again.stderr)
