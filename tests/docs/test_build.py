"""The documentation site builds with warnings as errors (the README's docs command, into a temporary folder)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers") is None:
        pytest.fail("mkdocs / mkdocstrings are not installed: .venv/bin/pip install -e '.[test]' (the docs extra)")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert "WARNING" not in done.stderr, done.stderr
    # the API reference was generated from the docstrings
    reference = (site / "reference" / "pye2" / "index.html").read_text("utf-8")
    for name in ("pye2.Session", "pye2.Pipeline", "pye2.Instance", "pye2.Payload", "pye2.Confirmation"):
        assert f'id="{name}"' in reference, name
    memory = (site / "reference" / "transport-memory" / "index.html").read_text("utf-8")
    for name in ("SimulatedNetwork", "FaultPlan", "VirtualClock"):
        assert f'id="pye2_transport_memory.{name}"' in memory, name
    assert (site / "security-model" / "index.html").exists() and (site / "testing" / "index.html").exists()
