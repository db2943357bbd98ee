"""``python -m bench``: every figure for ratio1 (baseline) and pye2, one at a time, then the table.

Options: ``--only pye2|ratio1``, ``--quick`` (tiny sizes, seconds: a smoke
run, not figures), ``--figures ingest-pl,ingest-pl-w,ingest-share,ingest-hb,loss,
mem-node,mem-idle,cmd-latency,simnet``, ``--json out.json``, ``--reps N`` (rate-search
repetitions), ``--profile`` (py-spy of the pye2 sink at its max payload rate),
``--broker mqtt://127.0.0.1:1883`` (loopback only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.config import RATIO1_VERSION, REPO, SDKS, BenchConfig, parse_broker
from bench.corpus import ensure_corpus

#: distinct messages per node in the ingest corpus (each heartbeat and payload numbered and signed anew)
INGEST_ROUNDS = 40
from bench.ingest import SearchPlan, rate_search
from bench.latency import cmd_latency, wire_floor
from bench.loss import loss_figure, rounds_needed
from bench.memory import mem_idle, mem_per_node
from bench.report import machine, render
from bench.share import share_figure
from bench.simnet import sim_note, simnet_figure

log = logging.getLogger("bench")

FIGURES = ("ingest-pl", "ingest-pl-w", "ingest-share", "ingest-hb", "loss", "mem-node", "mem-idle", "cmd-latency",
           "simnet")
PYE2_ONLY = ("ingest-pl-w", "ingest-share", "simnet")
#: worker processes verifying signatures in the ``ingest-pl-w`` figure (Session option ``verify_workers``)
VERIFY_WORKERS = 0
Profiler = Callable[..., Any]


class Plan:
    """Sizes of every figure: the real ones, or tiny ones for ``--quick``."""

    def __init__(self, quick: bool, step_seconds: float | None) -> None:
        self.quick = quick
        self.ingest_nodes = 100 if quick else 1000
        self.mem_nodes = 100 if quick else 10_000
        self.step_seconds = step_seconds or (1.0 if quick else 8.0)
        self.max_steps = 2 if quick else 30
        self.start_pl = 200.0 if quick else 1500.0
        self.start_hb = 100.0 if quick else 600.0
        self.loss_ladder = [(500.0, 200), (0.0, 400)] if quick else [(2000.0, 10_000), (8000.0, 20_000), (0.0, 20_000)]
        self.mem_rate = 1000.0
        self.idle_lines = 2 if quick else 8
        self.cmd_n = 20 if quick else 300
        self.cmd_gap = 0.01 if quick else 0.02
        self.cmd_encrypted = not quick
        #: simulated network sizes, small to large (the growth with size shows); the middle one is the headline
        self.sim_nodes = [2, 3, 5] if quick else [10, 100, 1000]
        #: simulated seconds per size: an hour, but 120 s for 1,000 nodes (its hour would take ~27 min of
        #: wall time here; the table shows the hour at that pace, and says so)
        self.sim_seconds = [60.0, 60.0, 60.0] if quick else [3600.0, 3600.0, 120.0]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=SDKS, default=None, help="run one SDK only (the other is 'skipped')")
    ap.add_argument("--quick", action="store_true", help="tiny rates and sizes: a smoke run of seconds")
    ap.add_argument("--figures", default=",".join(FIGURES), help="comma-separated subset of: " + ",".join(FIGURES))
    ap.add_argument("--json", type=Path, default=None, help="also write every raw result here")
    ap.add_argument("--reps", type=int, default=None, help="rate-search repetitions (default 3, quick 1)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per rate-search step (default 8)")
    ap.add_argument("--profile", action="store_true", help="py-spy the pye2 sink at its max payload rate")
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="loopback MQTT broker URL")
    ap.add_argument("--cache", type=Path, default=None, help="corpora, venvs, logs (default bench/.cache)")
    ap.add_argument("--pye2-src", type=Path, default=None,
                    help="run the pye2 sinks on the pye2 in this source tree (e.g. a git worktree of an older commit)")
    ap.add_argument("--update-readme", action="store_true",
                    help="write the table into README.md and docs/performance.md (between bench markers)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    unknown = set(a.figures.split(",")) - set(FIGURES)
    if unknown:
        ap.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    return a


def _check_corpus_with_ratio1(cfg: BenchConfig, corpus: Path) -> dict[str, Any]:
    """ratio1's own ``verify`` on a sample of the corpus: the format is one both SDKs accept."""
    out = subprocess.run([str(cfg.python_for("ratio1")), str(REPO / "bench" / "sinks" / "ratio1_sink.py"),
                          "verify-corpus", "--corpus", str(corpus)], capture_output=True, text=True,
                         env=cfg.env_for("ratio1"), cwd=REPO, check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _code_state() -> str:
    """The pye2 code measured: commit, plus "+local changes" when the working tree differs (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pye2", "pye2_transport_memory",
                                "pye2_transport_mqtt"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (" + local changes" if dirty else "")


def _active_paths() -> dict[str, Any]:
    """What pye2 uses on this install (the sinks run in this venv): signature and JSON backends, workers."""
    from pye2.adapters.json_serializer import JsonSerializer
    from pye2.adapters.select import best_parser, best_verifier
    from pye2.service.verify_workers import default_verify_workers, usable_cores

    parser = best_parser(JsonSerializer())
    return {"verifier": type(best_verifier()).__name__,
            "json": getattr(parser, "__module__", None) or type(parser).__name__,
            "verify_workers": default_verify_workers(), "cores": usable_cores()}


def _run(name: str, sdk: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    log.info("%s: %s ...", name, sdk)
    t0 = time.monotonic()
    try:
        res = fn()
    except Exception as exc:  # one failing figure must not lose the others' results
        log.exception("%s (%s) failed", name, sdk)
        res = {"error": f"{type(exc).__name__}: {exc}"}
    res["wall_s"] = round(time.monotonic() - t0, 1)
    log.info("%s: %s done in %.0f s", name, sdk, res["wall_s"])
    return res


def _figure(cfg: BenchConfig, plan: Plan, fig: str, sdk: str, corpus: Path,
            profiler: Profiler | None) -> Callable[[], dict[str, Any]]:
    """The measurement of one figure for one SDK, ready to call."""
    if fig == "ingest-pl-w":
        workers = dataclasses.replace(cfg, pye2_env={**cfg.pye2_env, "PYE2_VERIFY_WORKERS": str(VERIFY_WORKERS)})
        sp = SearchPlan(kind="pl", corpus=corpus, start=plan.start_pl, seconds=plan.step_seconds,
                        max_steps=plan.max_steps)
        return lambda: {**rate_search(workers, sdk, sp, None), "verify_workers": VERIFY_WORKERS}
    if fig == "ingest-share":
        sp = SearchPlan(kind="pl", corpus=corpus, start=plan.start_pl, seconds=plan.step_seconds,
                        max_steps=plan.max_steps)
        return lambda: share_figure(cfg, sp)
    if fig in ("ingest-pl", "ingest-hb"):
        kind = fig[-2:]
        sp = SearchPlan(kind=kind, corpus=corpus, start=plan.start_pl if kind == "pl" else plan.start_hb,
                        seconds=plan.step_seconds, max_steps=plan.max_steps)
        prof = profiler if (sdk == "pye2" and kind == "pl") else None
        return lambda: rate_search(cfg, sdk, sp, prof)
    if fig == "loss":
        rounds = rounds_needed(plan.loss_ladder, plan.ingest_nodes)
        return lambda: loss_figure(cfg, sdk, ensure_corpus(cfg.cache, plan.ingest_nodes, rounds=rounds),
                                   plan.loss_ladder)
    if fig == "mem-node":
        return lambda: mem_per_node(cfg, sdk, ensure_corpus(cfg.cache, plan.mem_nodes), plan.mem_nodes,
                                    plan.mem_rate)
    if fig == "mem-idle":
        return lambda: mem_idle(cfg, sdk, plan.idle_lines)
    if fig == "cmd-latency":
        def latency() -> dict[str, Any]:
            out = {"plain": cmd_latency(cfg, sdk, plan.cmd_n, plan.cmd_gap, encrypt=False)}
            if plan.cmd_encrypted:
                out["encrypted"] = cmd_latency(cfg, sdk, plan.cmd_n, plan.cmd_gap, encrypt=True)
            # the same path with no SDK, in the same conditions: what bounds both from below
            out["floor"] = wire_floor(cfg, plan.cmd_n, plan.cmd_gap, size=int(out["plain"].get("cmd_bytes") or 1000))
            return out
        return latency
    if fig == "simnet":
        return lambda: simnet_figure(cfg, plan.sim_nodes, plan.sim_seconds)
    raise ValueError(f"unknown figure {fig!r}")


def run(cfg: BenchConfig, figures: list[str], plan: Plan) -> dict[str, Any]:
    """Every requested figure for every requested SDK (ratio1 first: the baseline of the same session)."""
    results: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {**machine(), "quick": plan.quick, "sdks": list(cfg.sdks), "reps": cfg.reps,
                            "ratio1_version": RATIO1_VERSION}
    from pye2 import __version__ as pye2_version

    meta["pye2_version"] = pye2_version
    meta["pye2_code"] = _code_state()
    meta["pye2_verifier_env"] = os.environ.get("PYE2_VERIFIER") or None
    meta["pye2_paths"] = _active_paths()
    meta["sizes"] = {"ingest_nodes": plan.ingest_nodes, "mem_nodes": plan.mem_nodes, "sim_nodes": plan.sim_nodes,
                     "sim_seconds": plan.sim_seconds, "sim_note": [sim_note(span) for span in plan.sim_seconds], "step_seconds": plan.step_seconds,
                     "loss_ladder": plan.loss_ladder, "cmd_n": plan.cmd_n}
    corpus = ensure_corpus(cfg.cache, plan.ingest_nodes, rounds=INGEST_ROUNDS)
    # The load generator loops over the corpus: a message comes again one loop (nodes x rounds of its
    # kind) later. pye2 refuses a copy of a message it still remembers (a replay), so its sink remembers
    # fewer than a loop, and each comes back as a user's session would take it after that time. The check
    # costs the same per message whatever the bound (a hash and an ordered-dict step). A quarter loop: the
    # memory counts accepted messages, so while an overloaded step drops some, it spans more of the stream.
    cfg.pye2_env.setdefault("PYE2_BENCH_REPLAY_MEMORY", str(plan.ingest_nodes * INGEST_ROUNDS // 4))
    meta["sizes"]["ingest_rounds"] = INGEST_ROUNDS
    meta["sizes"]["pye2_replay_memory"] = int(cfg.pye2_env["PYE2_BENCH_REPLAY_MEMORY"])
    if "ratio1" in cfg.sdks:
        meta["corpus_check_ratio1"] = _check_corpus_with_ratio1(cfg, corpus)
    profiler = None
    if cfg.profile and "pye2" in cfg.sdks:
        from bench.profile import make_profiler

        profiler = make_profiler(cfg, plan.step_seconds)
    for fig in figures:
        results[fig] = {}
        for sdk in [s for s in cfg.sdks if s == "pye2" or fig not in PYE2_ONLY]:
            results[fig][sdk] = _run(fig, sdk, _figure(cfg, plan, fig, sdk, corpus, profiler))
    meta["pye2_code_at_end"] = _code_state()
    return {"meta": meta, "figures": results}


def main(argv: list[str] | None = None) -> int:
    """Run the bench; prints the table; 0 unless a figure failed to produce its result."""
    a = _parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO, stream=sys.stderr,
                        format="bench %(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pye2").setLevel(logging.WARNING)
    host, port = parse_broker(a.broker)
    plan = Plan(a.quick, a.seconds)
    cfg = BenchConfig(host=host, port=port, quick=a.quick, reps=a.reps or (1 if a.quick else 3),
                      sdks=(a.only,) if a.only else SDKS, profile=a.profile)
    if a.cache is not None:
        cfg.cache = a.cache
    if a.pye2_src is not None:
        cfg.pye2_src = a.pye2_src.resolve()
    figures = [f for f in FIGURES if f in a.figures.split(",")]
    out = run(cfg, figures, plan)
    table = render(out["figures"], out["meta"])
    out["table"] = table
    cfg.cache.mkdir(parents=True, exist_ok=True)
    for path in [cfg.cache / "results-latest.json"] + ([a.json] if a.json else []):
        path.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    print(table, flush=True)
    if a.update_readme and not a.quick:
        from bench.readme import update_files

        for path in update_files(out):
            log.info("updated %s", path)
    failed = [f"{fig}/{sdk}" for fig, per in out["figures"].items() for sdk, res in per.items() if "error" in res]
    if failed:
        print(f"bench: figures that failed: {', '.join(failed)} (see bench/.cache/logs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
