"""The incumbent client (``ratio1`` 3.5.60) drives ``pye2 sim`` over Mosquitto.

Opt-in (it needs the ratio1 venv the bench builds, ``bench/.cache/ratio1-venv``):

    PYE2_INTEROP_RATIO1=1 .venv/bin/python -m pytest -q tests/interop_ratio1

Allowed (``--allow`` its address): it sees the node as peered, deploys custom
code and receives its results, updates and archives it, with encrypted and with
plain commands. Not allowed: its commands are refused and the simulator says why.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("ratio1_client.py")

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(300)]


def _ratio1_python() -> Path:
    sys.path.insert(0, str(ROOT))
    from bench.config import DEFAULT_CACHE, ensure_ratio1_venv

    return ensure_ratio1_venv(DEFAULT_CACHE)


def _lines(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=120)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plain"])
@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "not-allowed"])
def test_ratio1_drives_pye2_sim(mqtt_url: str, encrypt: bool, allowed: bool) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(mqtt_url)
    root = f"r1interop{uuid.uuid4().hex[:8]}"
    home = tempfile.mkdtemp(prefix="r1home")
    client = subprocess.Popen([str(_ratio1_python()), str(CLIENT), parts.hostname or "127.0.0.1",
                               str(parts.port or 1883), root, "1" if encrypt else "0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={"HOME": home, "PATH": "/usr/bin:/bin"})
    assert client.stdout is not None and client.stdin is not None
    address = None
    for line in client.stdout:  # ratio1 prints banners of its own first
        if line.startswith('{"address"'):
            address = json.loads(line)["address"]
            break
    assert address, "the ratio1 client never said its address"
    allow = ["--allow", address] if allowed else []
    sim = subprocess.Popen([sys.executable, "-m", "pye2", "sim", "--broker", mqtt_url, "--root", root, "--nodes", "1",
                            "--profile", "ratio1", "--heartbeat-interval", "1", *allow],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        assert "simulated node(s)" in sim.stdout.readline()
        node = sim.stdout.readline().split()[1]
        client.stdin.write(node + "\n")
        client.stdin.flush()
        steps = {s["step"]: s for s in _lines(client)}
    finally:
        sim.send_signal(2)
        _, err = sim.communicate(timeout=30)
    assert "error" not in steps or not allowed or steps["error"]["ok"], steps.get("error")
    assert steps["seen"]["ok"] and steps["seen"]["peered"] is allowed
    if allowed:
        assert steps["custom_code"]["ok"] and steps["custom_code"]["result"] == 42, steps
        # ratio1 3.5.60 reports None for an update it tracked no transaction for; False would be a refusal
        assert steps["update"]["ok"] is not False and steps["archive"]["ok"], steps
    else:
        assert not steps.get("custom_code", {}).get("ok"), steps
        assert address in err and "not in its allow-list" in err  # the simulator says who and how to allow
