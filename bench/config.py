"""Bench settings shared by every figure, and the ratio1 venv the bench creates.

ratio1 is never a dependency of pye2: the bench installs ``ratio1==3.5.60``
(and ``paho-mqtt``) from PyPI into ``bench/.cache/ratio1-venv`` on first use
and runs the ratio1 sink with that venv's Python.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["RATIO1_REQUIREMENT", "RATIO1_VERSION", "BenchConfig", "ensure_ratio1_venv", "parse_broker"]

log = logging.getLogger(__name__)

RATIO1_VERSION = "3.5.60"
RATIO1_REQUIREMENT = f"ratio1=={RATIO1_VERSION}"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
SDKS = ("ratio1", "pye2")


def parse_broker(url: str) -> tuple[str, int]:
    """``mqtt://HOST[:PORT]`` -> (host, port); only loopback hosts: the bench talks to 127.0.0.1 alone."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme != "mqtt":
        raise ValueError(f"the bench needs an mqtt:// broker URL, not {url!r}")
    host = parts.hostname or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the bench only talks to a loopback broker (127.0.0.1), not {host!r}")
    return host, parts.port or 1883


@dataclass
class BenchConfig:
    """Everything a figure needs to know about this run."""

    host: str = "127.0.0.1"
    port: int = 1883
    quick: bool = False
    reps: int = 3
    sdks: tuple[str, ...] = SDKS
    cache: Path = DEFAULT_CACHE
    profile: bool = False
    ratio1_python: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: extra environment of the pye2 sinks (e.g. ``PYE2_VERIFY_WORKERS`` for the ``ingest-pl-w`` figure)
    pye2_env: dict[str, str] = field(default_factory=dict)
    #: another pye2 source tree for the pye2 sinks (``--pye2-src``: a before/after comparison in one run)
    pye2_src: Path | None = None

    @property
    def pye2_python(self) -> Path:
        """Our venv's interpreter (the one running the bench)."""
        return Path(sys.executable)

    def python_for(self, sdk: str) -> Path:
        """The interpreter a sink of ``sdk`` runs with."""
        if sdk == "pye2":
            return self.pye2_python
        if self.ratio1_python is None:
            self.ratio1_python = ensure_ratio1_venv(self.cache)
        return self.ratio1_python

    def env_for(self, sdk: str) -> dict[str, str]:
        """The child environment: ratio1 keeps its state under the cache, never the real home."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO)
        if sdk == "pye2":
            env.update(self.pye2_env)
            if self.pye2_src is not None:  # put first on sys.path by the sink itself; the bench stays this one
                env["PYE2_BENCH_SRC"] = str(self.pye2_src)
        if sdk == "ratio1":
            home = self.cache / "ratio1-home"
            home.mkdir(parents=True, exist_ok=True)
            env["HOME"] = str(home)
        return env


def _ratio1_ok(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('ratio1'))"],
                           check=False, capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == RATIO1_VERSION


def ensure_ratio1_venv(cache: Path) -> Path:
    """The ratio1 venv's Python, creating the venv and installing ratio1 on first use."""
    venv = cache / "ratio1-venv"
    python = venv / "bin" / "python"
    if _ratio1_ok(python):
        return python
    base = getattr(sys, "_base_executable", None) or sys.executable
    print(f"bench: creating {venv} and installing {RATIO1_REQUIREMENT} (once)", file=sys.stderr, flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", RATIO1_REQUIREMENT, "paho-mqtt"], check=True)
    if not _ratio1_ok(python):
        raise RuntimeError(f"{RATIO1_REQUIREMENT} did not install into {venv}")
    return python
