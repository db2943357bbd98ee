"""Simulated network: wall and CPU seconds for N nodes over a simulated period (pye2 only).

``SimulatedNetwork(nodes=N, seed=0)``, started, then ``advance(3600)`` on
its virtual clock, timed with ``time.perf_counter`` (wall) and
``time.process_time`` (CPU). The figure runs several sizes (10, 100 and
1,000 nodes by default) so the growth with the network's size shows; each
size runs in its own process (``python -m bench.simnet``) so the
orchestrator's threads do not share its interpreter, and a size that fails
or overruns its time limit is reported as such without losing the others.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.config import REPO, BenchConfig

__all__ = ["HOUR", "SIZE_TIMEOUT", "measure", "sim_note", "simnet_figure"]

#: wall seconds one size may take before it is reported as overrun
SIZE_TIMEOUT = 1800.0
#: the span the figure reports: one simulated hour
HOUR = 3600.0


def sim_note(simulated: float) -> str:
    """What the table says of a size simulated for less than an hour (its hour is extrapolated)."""
    return "" if simulated >= HOUR else f" (at the pace of {simulated:g} s x {HOUR / simulated:g})"


def measure(nodes: int, seconds: float, seed: int = 0) -> dict[str, Any]:
    """Build, start and advance a simulated network; timings in wall seconds, plus the process's CPU seconds."""
    from pye2_transport_memory.network import SimulatedNetwork

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    net = SimulatedNetwork(nodes=nodes, seed=seed)
    t1 = time.perf_counter()
    with net:
        t2 = time.perf_counter()
        events = net.advance(seconds)
        t3 = time.perf_counter()
        cpu = time.process_time() - cpu0
    return {"nodes": nodes, "simulated_s": seconds, "build_s": round(t1 - t0, 3), "start_s": round(t2 - t1, 3),
            "advance_s": round(t3 - t2, 3), "hour_s": round((t3 - t2) * HOUR / seconds, 3) if seconds > 0 else None,
            "cpu_s": round(cpu, 3), "events": events,
            "speedup": round(seconds / (t3 - t2), 1) if t3 > t2 else None}


def _one_size(cfg: BenchConfig, nodes: int, seconds: float, timeout: float) -> dict[str, Any]:
    try:
        out = subprocess.run([sys.executable, "-m", "bench.simnet", "--nodes", str(nodes), "--seconds", str(seconds)],
                             capture_output=True, text=True, check=True, cwd=REPO, env=cfg.env_for("pye2"),
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"nodes": nodes, "simulated_s": seconds, "error": f"overran {timeout:g} s"}
    except subprocess.CalledProcessError as exc:
        return {"nodes": nodes, "simulated_s": seconds, "error": f"exit {exc.returncode}: {exc.stderr[-500:]}"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def simnet_figure(cfg: BenchConfig, nodes: int | Sequence[int], seconds: float | Sequence[float],
                  timeout: float = SIZE_TIMEOUT) -> dict[str, Any]:
    """:func:`measure` for each size in a child process of our venv.

    The result: ``runs`` (one per size, in order), ``by_nodes`` (size -> run)
    and, for the figure's headline, the ``advance_s`` of the middle size
    (100 nodes by default). A size that failed holds an ``error``.

    Raises:
        RuntimeError: no size produced a figure.
    """
    sizes = [nodes] if isinstance(nodes, int) else list(nodes)
    spans = [float(seconds)] * len(sizes) if isinstance(seconds, (int, float)) else [float(x) for x in seconds]
    if len(spans) != len(sizes):
        raise ValueError(f"{len(sizes)} sizes but {len(spans)} simulated spans")
    runs = [_one_size(cfg, n, span, timeout) for n, span in zip(sizes, spans)]
    if all("error" in r for r in runs):
        raise RuntimeError("; ".join(f"{r['nodes']} nodes: {r['error']}" for r in runs))
    headline = runs[len(runs) // 2]
    out: dict[str, Any] = {"runs": runs, "by_nodes": {str(r["nodes"]): r for r in runs}}
    if "advance_s" in headline:
        out["advance_s"] = headline["advance_s"]
    return out


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
