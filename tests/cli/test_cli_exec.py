"""``pye2 exec`` as a process against ``pye2 sim`` on Mosquitto: results, node errors, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_rig import Sim, one_error_line

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def _file(sim: Sim, name: str, code: str) -> Path:
    path = sim.work / name
    path.write_text(code)
    return path


def test_exec_prints_the_result_and_passes_params(sim: Sim) -> None:
    code = _file(sim, "square.py", "x = plugin.cfg_n\n_result = {'square': x * x, 'node': plugin.e2_id, "
                                   "'label': plugin.cfg_label}\n")
    done = sim.run("exec", "sim-node-1", str(code), "--param", "n=7", "--param", "label=seven")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"square": 49, "node": "sim-node-1", "label": "seven"}
    as_json = sim.run("exec", "sim-node-2", str(code), "--param", "N=3", "--param", "label=[1, 2]", "--json")
    record = json.loads(as_json.stdout)
    assert record["result"] == {"square": 9, "node": "sim-node-2", "label": [1, 2]} and record["error"] is None
    # each run archived the pipeline it made
    listed = sim.run("pipelines", "sim-node-1", "--json")
    assert [json.loads(line)["pipeline"] for line in listed.stdout.splitlines()] == ["admin_pipeline"]


def test_code_that_fails_on_the_node_is_exit_1_with_its_last_line(sim: Sim) -> None:
    code = _file(sim, "fails.py", "a = 1\n_result = a / 0\n")
    done = sim.run("exec", "sim-node-1", str(code))
    assert done.returncode == 1 and done.stdout == ""
    assert one_error_line(done.stderr) == ("error: the code failed on sim-node-1: ZeroDivisionError: division by zero "
                                           "(fails.py line 2)")
    as_json = sim.run("exec", "sim-node-1", str(code), "--json")
    assert as_json.returncode == 1 and "ZeroDivisionError" in json.loads(as_json.stdout)["error"]


def test_code_the_checker_refuses_is_reported_before_anything_is_sent(sim: Sim, unused_broker: str) -> None:
    code = _file(sim, "bad.py", "import os\n_result = os.listdir('.')\n")
    done = sim.run("exec", "sim-node-1", str(code))
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "refused by the checker" in line and "os (line 1)" in line and "nothing was sent" in line
    # not even a connection: the same answer with no broker at all
    offline = sim.run("exec", "sim-node-1", str(code), "--broker", unused_broker, connection=False)
    assert offline.returncode == 1 and one_error_line(offline.stderr) == line


def test_a_node_that_does_not_allow_list_us_is_refused_before_sending(sim: Sim) -> None:
    code = _file(sim, "ok.py", "_result = 1\n")
    done = sim.run("exec", "sim-node-1", str(code), identity=sim.other)
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "is SECURED and its allow-list does not list this identity" in line
    assert f"pye2 sim: --allow {sim.other_address}" in line


def test_unknown_node_and_missing_file(sim: Sim) -> None:
    code = _file(sim, "ok2.py", "_result = 1\n")
    unknown = sim.run("exec", "nobody", str(code), "--timeout", "2")
    assert unknown.returncode == 1 and "node nobody not heard within 2 s" in one_error_line(unknown.stderr)
    missing = sim.run("exec", "sim-node-1", str(sim.work / "nope.py"))
    assert missing.returncode == 1 and "cannot read" in one_error_line(missing.stderr)
    bad_param = sim.run("exec", "sim-node-1", str(code), "--param", "novalue")
    assert bad_param.returncode == 2 and "KEY=VALUE" in bad_param.stderr
