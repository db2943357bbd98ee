"""Smoke run of the hostile-traffic soak (``python -m bench.soak``), so it cannot rot.

A few seconds at a low rate with small hostile sizes against the local
Mosquitto. Asserted: the run completes and reports every figure, and nothing
forged or replayed reached the session's callback. The soak's own thresholds
(peak RSS, genuine loss) are for its full run, not for this one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def test_the_soak_runs_and_nothing_hostile_is_delivered(mqtt_url: str, tmp_path: Path) -> None:
    parts = urlsplit(mqtt_url)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "6", "--rate", "200", "--node-rate", "50", "--smoke",
         "--host", parts.hostname or "127.0.0.1", "--port", str(parts.port or 1883), "--log", str(tmp_path / "s.log")],
        cwd=ROOT, capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("peak_rss_mb", "log_bytes", "genuine_delivered", "forged_delivered", "delivered_twice",
                "latency_ms", "stats", "node_sent", "attack_sent"):
        assert key in result, key
    assert result["node_sent"] > 0 and result["genuine_delivered"] > 0
    assert result["forged_delivered"] == 0 and result["delivered_twice"] == 0
    rejected = result["stats"]["rejected"]
    assert rejected.get("impostor", 0) > 0 and rejected.get("signature", 0) > 0
