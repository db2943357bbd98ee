"""Where the pye2 sink spends its time at its maximum sustained rate (``--profile``).

py-spy samples every thread of the sink process (paho's network thread and
the dispatcher included) while one more step runs at the measured maximum.
py-spy is a tool of the bench, not of pye2: it is installed on first use
into ``bench/.cache/tools-venv``. The raw (collapsed-stack) output is kept
next to the results; the summary lists the functions with the most samples
on top of the stack (self) and anywhere on it (inclusive).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.sinkproc import SinkProcess

__all__ = ["make_profiler", "summarize_collapsed"]

_LINE = re.compile(r":\d+\)$")


def _py_spy(cache: Path) -> Path:
    found = shutil.which("py-spy")
    if found:
        return Path(found)
    venv = cache / "tools-venv"
    exe = venv / "bin" / "py-spy"
    if not exe.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "py-spy"], check=True)
    return exe


def summarize_collapsed(path: Path, top: int = 15) -> dict[str, Any]:
    """Top frames of a py-spy ``--format raw`` file: ``{"samples", "self", "inclusive"}`` (percent)."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text("utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # "func (file.py:123)" -> "func (file.py)": one entry per function, whatever the line
        frames = [_LINE.sub(")", f.strip()) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl_counts[frame] += count

    def pct(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[frame, round(100 * n / total, 1)] for frame, n in counter.most_common(top)] if total else []

    return {"samples": total, "self": pct(self_counts), "inclusive": pct(incl_counts)}


def make_profiler(cfg: BenchConfig, seconds: float) -> Callable[[SinkProcess, Callable[[], dict[str, Any]]], Any]:
    """A callable ``(sink, run_step) -> summary`` recording py-spy while ``run_step()`` runs."""
    exe = _py_spy(cfg.cache)

    def profile(sink: SinkProcess, run_step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        out = cfg.cache / f"profile-{sink.sdk}.txt"
        spy = subprocess.Popen([str(exe), "record", "--pid", str(sink.pid), "--duration", str(int(seconds) + 1),
                                "--rate", "250", "--format", "raw", "--threads", "--output", str(out),
                                "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            step = run_step()
        finally:
            spy.wait(seconds + 60)
        summary: dict[str, Any] = summarize_collapsed(out) if out.exists() else {"error": "py-spy wrote nothing"}
        summary["step"] = step
        summary["raw"] = str(out)
        return summary

    return profile
