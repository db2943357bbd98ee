"""Scale out on the broker: payload ingest of 2 sessions in one share group against 1 (``ingest-share``).

The payload rate search of :mod:`bench.ingest`, with the consumer being a
group of pye2 sink processes that all run with the same ``PYE2_SHARE_GROUP``
(the Session option ``share_group``): Mosquitto hands each payload to one of
them (MQTT 5 shared subscription ``$share/<group>/naeural/payloads``), each
verifies what it gets. First one session in the group, then two, on the same
stream, in the same run; the figure is their maximum sustained rates and
the ratio. A step counts what reached the callbacks of all members together
(a payload is delivered once, to one member); CPU is the members' sum.

pye2 only: ratio1 has no share groups.
"""

from __future__ import annotations

import dataclasses
import os
import time
from types import TracebackType
from typing import Any

from bench.config import BenchConfig
from bench.ingest import SearchPlan, _search_one
from bench.sinkproc import SinkProcess, accounted
from bench.stats import spread

__all__ = ["SESSIONS", "SinkGroup", "share_figure"]

#: sessions in the share group of the figure's second search
SESSIONS = 2
#: status-line fields that add up over the members (payloads are split among them; heartbeats are not:
#: every member gets each one, so the group's ``hb`` is the most any member got, not the sum)
_SUMMED = ("pl", "counted", "cpu_s", "rss", "maxrss")


class SinkGroup:
    """Several pye2 sinks in one share group, seen by the rate search as one consumer."""

    def __init__(self, members: list[SinkProcess]) -> None:
        self.members = members
        self.sdk = f"pye2 x{len(members)}"

    def wait_ready(self) -> None:
        """Every member connected (and so subscribed in the group) and reporting."""
        for member in self.members:
            member.wait_ready()

    def snap(self) -> dict[str, Any]:
        """The members' latest status lines, added up (``t``: the latest)."""
        lines = [m.snap() for m in self.members]
        out: dict[str, Any] = {key: sum(int(line.get(key, 0)) if key != "cpu_s" else float(line.get(key, 0.0))
                                        for line in lines) for key in _SUMMED}
        out["hb"] = max(int(line.get("hb", 0)) for line in lines)
        out["t"] = max(line["t"] for line in lines)
        return out

    @property
    def history(self) -> list[dict[str, Any]]:
        """Status lines of the group: the members' n-th lines added up (they report on the same interval)."""
        rows = zip(*(m.history for m in self.members))
        return [{"t": row[0]["t"], "rss": sum(int(line["rss"]) for line in row)} for row in rows]

    def wait_settled(self, target: int, *, idle: float = 2.0, max_wait: float = 30.0) -> bool:
        """As :meth:`SinkProcess.wait_settled`, on the members' total."""
        deadline = time.monotonic() + max_wait
        last_n, last_change = -1, time.monotonic()
        while True:
            now = time.monotonic()
            n = accounted(self.snap())
            if n >= target:
                return True
            if n != last_n:
                last_n, last_change = n, now
            if now - last_change > idle or now > deadline:
                return False
            self.members[0].wait_status_lines(1, 5.0)  # the next status line is the next chance for progress

    def close(self) -> None:
        """Stop every member."""
        for member in self.members:
            member.close()

    def __enter__(self) -> SinkGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _search(cfg: BenchConfig, plan: SearchPlan, sessions: int) -> dict[str, Any]:
    """``cfg.reps`` rate searches of ``sessions`` sinks in one (fresh) share group."""
    runs = []
    for rep in range(cfg.reps):
        group = f"bench{os.getpid()}r{rep}n{sessions}"  # never joins a group left by another run
        env = {**cfg.pye2_env, "PYE2_SHARE_GROUP": group}
        if "PYE2_BENCH_REPLAY_MEMORY" in env:
            # each member sees 1/sessions of the stream: its replay memory must span the same part of
            # the stream as a lone session's, or a message comes back while its member still remembers it
            env["PYE2_BENCH_REPLAY_MEMORY"] = str(max(1, int(env["PYE2_BENCH_REPLAY_MEMORY"]) // sessions))
        member_cfg = dataclasses.replace(cfg, pye2_env=env)
        with SinkGroup([SinkProcess(member_cfg, "pye2") for _ in range(sessions)]) as sinks:
            sinks.wait_ready()
            run = _search_one(member_cfg, sinks, plan)  # a duck-typed consumer: the group
            run["rep"] = rep
            runs.append(run)
    return {"sessions": sessions, "max_sustained": spread([r["max_sustained"] for r in runs]),
            "sink_cpu_pct_at_max": spread([r["at_max"]["sink_cpu_pct"] for r in runs if r["at_max"]]),
            "runs": runs}


def share_figure(cfg: BenchConfig, plan: SearchPlan) -> dict[str, Any]:
    """1 session in a share group, then :data:`SESSIONS`, on the same payload stream; rates and ratio."""
    one = _search(cfg, plan, 1)
    best_one = one["max_sustained"]["median"] or 0
    # the group of two starts where one session stopped: fewer steps to its own limit
    two = _search(cfg, dataclasses.replace(plan, start=max(plan.start, float(best_one))), SESSIONS)
    best_two = two["max_sustained"]["median"] or 0
    return {"kind": plan.kind, "seconds_per_step": plan.seconds, "one": one, "two": two,
            "ratio": round(best_two / best_one, 2) if best_one else None}
