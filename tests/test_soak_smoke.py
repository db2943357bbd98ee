"""Smoke run of the hostile-traffic soak (``python -m bench.soak``), so the harness cannot rot.

About five seconds at a low rate with small hostile sizes (``--smoke``) against
the local Mosquitto. Asserted: the run completes and prints its result JSON
(last line) with every expected key, and the PASS/FAIL lines. No threshold on
the figures themselves: they are for the full run, judged by a human.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]

#: the same list as ``bench.soak.RESULT_KEYS`` (kept here so a renamed key fails this test)
EXPECTED = ("seconds", "rate", "mix", "sizes", "root", "peak_rss_mb", "log_bytes", "genuine_sent",
            "genuine_delivered", "genuine_lost", "latency_ms", "forged_delivered", "duplicates_delivered",
            "hostile_sent", "hostile_mb_per_s", "stats", "checks")


def test_the_soak_completes_and_prints_its_result(mqtt_url: str, tmp_path: Path) -> None:
    parts = urlsplit(mqtt_url)
    host = parts.hostname or ""
    if not (host.startswith("127.") or host == "localhost"):
        pytest.skip(f"the soak only talks to a loopback broker, not {host!r}")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "5", "--rate", "200", "--node-rate", "50", "--smoke",
         "--host", host, "--port", str(parts.port or 1883), "--log", str(tmp_path / "session.log"),
         "--json", str(tmp_path / "soak.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    assert proc.returncode == 0, f"soak failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "soak.json").read_text("utf-8"))
    from bench.soak import RESULT_KEYS

    assert set(RESULT_KEYS) == set(EXPECTED)
    missing = [key for key in EXPECTED if key not in result]
    assert not missing, missing
    assert set(result["latency_ms"]) == {"median", "p99", "max"}
    for key in ("received", "delivered", "rejected", "dropped", "in_flight"):
        assert key in result["stats"], key
    assert result["genuine_sent"] > 0 and sum(result["hostile_sent"].values()) > 0  # the publishers ran
    assert result["log_bytes"] == (tmp_path / "session.log").stat().st_size
    for name in result["checks"]:
        assert f"PASS  {name}" in proc.stdout or f"FAIL  {name}" in proc.stdout
