"""Smoke run of the benchmark harness, so it cannot rot (the benchmark itself is not part of CI).

``python -m bench --quick --only pye2`` against the local Mosquitto: tiny
rates and sizes, ratio1 skipped. Asserted: every figure produced a number for
pye2, pye2 lost no message without counting it, and it rejected every
tampered message (it verifies signatures). No timing assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pye2.service.verify_workers import machine_verify_workers

ROOT = Path(__file__).resolve().parent.parent

#: where each figure's headline number sits in the bench's JSON (pye2 side)
HEADLINES = {
    "ingest-pl": ("max_sustained", "median"),
    "ingest-pl-w": ("max_sustained", "median"),
    "ingest-share": ("two", "max_sustained", "median"),
    "ingest-hb": ("max_sustained", "median"),
    "loss": ("uncounted",),
    "mem-node": ("bytes_per_node",),
    "mem-idle": ("rss_idle",),
    "cmd-latency": ("plain", "latency_ms", "median"),
    "simnet": ("advance_s",),
}

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]


def _dig(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = result
    for key in path:
        assert isinstance(value, dict) and key in value, f"missing {'.'.join(path)} in {result}"
        value = value[key]
    return value


@pytest.fixture(scope="module")
def quick_run(mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    host = urlsplit(mqtt_url).hostname or ""
    if not (host.startswith("127.") or host == "localhost"):
        pytest.skip(f"the bench only talks to a loopback broker, not {host!r}")
    work = tmp_path_factory.mktemp("bench")
    out = work / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "pye2", "--broker", mqtt_url,
         "--json", str(out), "--cache", str(work / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    data: dict[str, Any] = json.loads(out.read_text("utf-8"))
    data["stdout"] = proc.stdout
    return data


def test_every_figure_produced_a_number_for_pye2(quick_run: dict[str, Any]) -> None:
    figures = quick_run["figures"]
    assert set(figures) == set(HEADLINES)
    for name, path in HEADLINES.items():
        assert set(figures[name]) == {"pye2"}, f"{name}: ratio1 must be skipped with --only pye2"
        result = figures[name]["pye2"]
        assert "error" not in result, f"{name}: {result.get('error')}"
        value = _dig(result, path)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{name}: {value!r}"
    assert figures["ingest-pl"]["pye2"]["max_sustained"]["median"] > 0
    assert figures["ingest-pl-w"]["pye2"]["verify_workers"] == 0  # the in-process comparison
    floor = figures["cmd-latency"]["pye2"]["floor"]
    assert floor["received"] == floor["calls"] > 0 and floor["latency_ms"]["median"] > 0
    paths = quick_run["meta"]["pye2_paths"]  # the table says what the install used
    assert paths["verify_workers"] == machine_verify_workers() and paths["verifier"]
    assert figures["ingest-hb"]["pye2"]["max_sustained"]["median"] > 0
    share = figures["ingest-share"]["pye2"]
    assert share["one"]["sessions"] == 1 and share["two"]["sessions"] == 2
    assert share["one"]["max_sustained"]["median"] > 0 and share["two"]["max_sustained"]["median"] > 0


def test_pye2_loses_no_message_without_counting_it(quick_run: dict[str, Any]) -> None:
    loss = quick_run["figures"]["loss"]["pye2"]
    assert loss["sent"] > 0
    assert loss["uncounted"] == 0, loss["steps"]
    for step in loss["steps"]:
        assert step["delivered"] + step["counted"] == step["sent"], step


def test_pye2_verifies_every_signature(quick_run: dict[str, Any]) -> None:
    tampered = quick_run["figures"]["loss"]["pye2"]["tampered"]
    assert tampered["sent"] > 0
    assert tampered["rejected"] == tampered["sent"]
    assert tampered["delivered"] == 0


def test_table_names_both_sdks_and_skips_ratio1(quick_run: dict[str, Any]) -> None:
    table = quick_run["table"]
    assert "| figure | ratio1" in table and "pye2/ratio1" in table
    assert "skipped" in table
    assert table in quick_run["stdout"]
