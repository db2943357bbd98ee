"""Simulated network: wall seconds for N nodes over a simulated period (pye2 only).

``SimulatedNetwork(nodes=100, seed=0)``, started, then ``advance(3600)`` on
its virtual clock, timed with ``time.perf_counter``. Runs in its own process
(``python -m bench.simnet``) so the orchestrator's threads do not share its
interpreter.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.config import REPO, BenchConfig

__all__ = ["measure", "simnet_figure"]


def measure(nodes: int, seconds: float, seed: int = 0) -> dict[str, Any]:
    """Build, start and advance a simulated network; timings in wall seconds."""
    from pye2_transport_memory.network import SimulatedNetwork

    t0 = time.perf_counter()
    net = SimulatedNetwork(nodes=nodes, seed=seed)
    t1 = time.perf_counter()
    with net:
        t2 = time.perf_counter()
        events = net.advance(seconds)
        t3 = time.perf_counter()
    return {"nodes": nodes, "simulated_s": seconds, "build_s": round(t1 - t0, 3), "start_s": round(t2 - t1, 3),
            "advance_s": round(t3 - t2, 3), "events": events,
            "speedup": round(seconds / (t3 - t2), 1) if t3 > t2 else None}


def simnet_figure(cfg: BenchConfig, nodes: int, seconds: float) -> dict[str, Any]:
    """Run :func:`measure` in a child process of our venv."""
    out = subprocess.run([sys.executable, "-m", "bench.simnet", "--nodes", str(nodes), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True, cwd=REPO, env=cfg.env_for("pye2"))
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: prints one JSON line."""
    ap = argparse.ArgumentParser(prog="python -m bench.simnet")
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.nodes, a.seconds, a.seed)), flush=True)


if __name__ == "__main__":
    main()
