"""Sustained ingest: the highest rate a consumer keeps up with (rate search).

A *step* offers rate R for T seconds (the load generator replays the corpus
of 1,000 nodes, payloads or v2 heartbeats only). The step is **sustained**
when, as in the shared ratio1 harness:

* the generator achieved >= 95 % of R (the machine could offer the load);
* >= 99.9 % of the messages sent reached the user callbacks (after letting
  the consumer drain for up to max(10 s, T), stopping after 2 s without progress);
* the SDK rejected or dropped none of them (pye2: ``session.stats``
  ``rejected``/``dropped``; ratio1: callback-queue ``rejected_full``);
* the backlog when the generator stopped was <= 0.3 s of traffic (+50
  messages): the consumer is not falling behind.

Search: start at ``start``; multiply by 1.5 while sustained (divide while
not, if the very first step fails); then bisect between the best sustained
and the first failing rate until they are within 8 %. Each repetition uses a
fresh consumer, warmed with every corpus message once at 1,000 msg/s.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.loadgen import run_loadgen
from bench.procstat import find_pid, pid_cpu_seconds
from bench.sinkproc import SinkProcess, accounted
from bench.stats import spread

__all__ = ["SearchPlan", "rate_search", "run_step", "warm"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchPlan:
    """How one rate search runs."""

    kind: str
    corpus: Path
    start: float
    seconds: float
    factor: float = 1.5
    resolution: float = 0.08
    max_rate: float = 60_000.0
    min_rate: float = 20.0
    max_steps: int = 30


class Tracker:
    """Keeps the running total of messages a sink should account for."""

    def __init__(self, sink: SinkProcess) -> None:
        self.sink = sink
        self.expected = accounted(sink.snap())
        #: where the next step starts in each selection of the corpus: every step goes on where the last one
        #: stopped, so a message comes again only a whole loop later (pye2 refuses a copy it still remembers)
        self.offsets: dict[str, int] = {}

    def drain(self, max_wait: float = 60.0) -> bool:
        """Let the sink catch up with everything sent so far (or stop making progress)."""
        return self.sink.wait_settled(self.expected, idle=2.0, max_wait=max_wait)


def _rounds_and_nodes(corpus: Path) -> tuple[int, int]:
    with corpus.open(encoding="utf-8") as f:
        header = json.loads(f.readline())
    return int(header.get("rounds", 1)), int(header["nodes"])


def warm(cfg: BenchConfig, tracker: Tracker, corpus: Path) -> None:
    """The corpus's last round once at a low rate: the consumer learns every node before timing.

    The last round, so that the timed steps (which start at the first) meet
    it again only a whole loop later.
    """
    rounds, nodes = _rounds_and_nodes(corpus)
    g = run_loadgen(corpus, "mix", host=cfg.host, port=cfg.port, rate=1000, count=2 * nodes,
                    skip=2 * nodes * (rounds - 1))
    tracker.expected += g["sent"]
    tracker.drain(max_wait=120)


def run_step(cfg: BenchConfig, tracker: Tracker, plan: SearchPlan, rate: float) -> dict[str, Any]:
    """Offer ``rate`` for ``plan.seconds``; the step's measurements and verdict."""
    sink = tracker.sink
    tracker.drain()
    # whatever never arrived (lost before the sink) must not make every later step wait
    tracker.expected = accounted(sink.snap())
    broker = find_pid("mosquitto")
    b0 = pid_cpu_seconds(broker) if broker else None
    s0 = sink.snap()
    t0 = time.time()
    g = run_loadgen(plan.corpus, plan.kind, host=cfg.host, port=cfg.port, rate=rate, duration=plan.seconds,
                    skip=tracker.offsets.get(plan.kind, 0))
    tracker.offsets[plan.kind] = tracker.offsets.get(plan.kind, 0) + g["sent"]
    t1 = time.time()
    s_end = sink.snap()
    b1 = pid_cpu_seconds(broker) if broker else None
    tracker.expected += g["sent"]
    drained = sink.wait_settled(accounted(s0) + g["sent"], idle=2.0, max_wait=max(10.0, plan.seconds))
    s1 = sink.snap()
    delivered = (s1["hb"] + s1["pl"]) - (s0["hb"] + s0["pl"])
    counted = s1.get("counted", 0) - s0.get("counted", 0)
    backlog = accounted(s0) + g["sent"] - accounted(s_end)
    window = [h["rss"] for h in sink.history if t0 <= h["t"] <= t1]
    cpu_pct = 100 * (s_end["cpu_s"] - s0["cpu_s"]) / max(1e-6, s_end["t"] - s0["t"])
    res: dict[str, Any] = {
        "rate": rate, "achieved": g["rate"], "sent": g["sent"], "delivered": delivered, "counted": counted,
        "delivered_frac": round(delivered / g["sent"], 5) if g["sent"] else None,
        "backlog_at_end": backlog, "backlog_s": round(backlog / rate, 3), "drained": drained,
        "sink_cpu_pct": round(cpu_pct, 1), "sink_rss_max": max(window + [s1["rss"]]),
        "broker_cpu_pct": round(100 * (b1 - b0) / (t1 - t0), 1) if b0 is not None and b1 is not None else None,
        "gen_cpu_pct": g["cpu_pct"],
    }
    res["ok"] = bool(g["rate"] >= 0.95 * rate and delivered >= 0.999 * g["sent"] and counted == 0
                     and backlog <= 0.3 * rate + 50)
    log.info("%s %s step %s", sink.sdk, plan.kind, res)
    return res


def _search_one(cfg: BenchConfig, sink: SinkProcess, plan: SearchPlan) -> dict[str, Any]:
    tracker = Tracker(sink)
    warm(cfg, tracker, plan.corpus)
    steps: list[dict[str, Any]] = []

    def step(rate: float) -> bool:
        s = run_step(cfg, tracker, plan, round(rate))
        steps.append(s)
        return bool(s["ok"])

    best: float | None = None
    fail: float | None = None
    rate = plan.start
    if step(rate):
        best = rate
        while fail is None and len(steps) < plan.max_steps:
            rate = rate * plan.factor
            if rate > plan.max_rate:
                break
            if step(rate):
                best = rate
            else:
                fail = rate
    else:
        fail = rate
        while best is None and len(steps) < plan.max_steps:
            rate = rate / plan.factor
            if rate < plan.min_rate:
                break
            if step(rate):
                best = rate
            else:
                fail = rate
    while best is not None and fail is not None and fail - best > plan.resolution * fail \
            and len(steps) < plan.max_steps:
        mid = (best + fail) / 2
        if step(mid):
            best = mid
        else:
            fail = mid
    at_max = next((s for s in reversed(steps) if s["ok"] and best is not None and s["rate"] == round(best)), None)
    final = sink.snap()
    return {"max_sustained": round(best) if best is not None else 0, "first_fail": round(fail) if fail else None,
            "at_max": at_max, "steps": steps, "peak_rss": final["maxrss"]}


def rate_search(cfg: BenchConfig, sdk: str, plan: SearchPlan, profiler: Any = None) -> dict[str, Any]:
    """``cfg.reps`` searches, each on a fresh consumer; median and spread of the maximum sustained rate."""
    runs = []
    for rep in range(cfg.reps):
        with SinkProcess(cfg, sdk) as sink:
            sink.wait_ready()
            run = _search_one(cfg, sink, plan)
            run["rep"] = rep
            best = run["max_sustained"]
            if profiler is not None and rep == cfg.reps - 1 and best:
                run["profile"] = profiler(sink, lambda sink=sink, best=best: run_step(cfg, Tracker(sink), plan, best))
            runs.append(run)
            log.info("%s %s rep %d: max sustained %s msg/s", sdk, plan.kind, rep, run["max_sustained"])
    at_max = [r["at_max"] for r in runs if r["at_max"]]
    return {
        "kind": plan.kind, "seconds_per_step": plan.seconds,
        "max_sustained": spread([r["max_sustained"] for r in runs]),
        "sink_cpu_pct_at_max": spread([s["sink_cpu_pct"] for s in at_max]),
        "broker_cpu_pct_at_max": spread([s["broker_cpu_pct"] for s in at_max if s["broker_cpu_pct"] is not None]),
        "peak_rss": spread([r["peak_rss"] for r in runs]),
        "runs": runs,
    }
