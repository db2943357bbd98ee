"""Memory figures: resident memory of an idle session, and per known node.

* **idle**: the sink's RSS after importing the SDK and connecting a session
  that receives nothing, after a short idle period and ``gc.collect()``
  (also reported: the bare interpreter + bench runtime, after import, right
  after connect).
* **per node**: a fresh consumer, RSS after ``gc.collect()`` before and
  after every node of the corpus (10,000 nodes) sent one heartbeat and one
  payload (at a rate both SDKs sustain); ``(after - before) / nodes``. The
  number of nodes the SDK reports as known (``get_active_nodes()``) is
  recorded as a check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.loadgen import run_loadgen
from bench.sinkproc import SinkProcess, accounted

__all__ = ["mem_idle", "mem_per_node"]


def mem_idle(cfg: BenchConfig, sdk: str, idle_lines: int = 8) -> dict[str, Any]:
    """RSS of a connected, idle session (bytes)."""
    with SinkProcess(cfg, sdk) as sink:
        ready = sink.wait_ready()
        sink.wait_status_lines(idle_lines, idle_lines * 2.0)
        snap = sink.gc_snapshot()
    return {"rss_start": ready["rss_start"], "rss_import": ready["rss_import"],
            "rss_connected": ready["rss_connected"], "rss_idle": snap["rss"]}


def mem_per_node(cfg: BenchConfig, sdk: str, corpus: Path, nodes: int, rate: float) -> dict[str, Any]:
    """RSS growth per distinct node after each node's heartbeat + payload (bytes per node)."""
    with SinkProcess(cfg, sdk) as sink:
        sink.wait_ready()
        sink.wait_status_lines(4, 8.0)
        base = sink.gc_snapshot()
        g = run_loadgen(corpus, "mix", host=cfg.host, port=cfg.port, rate=rate, once=True, client_id="bench-mem")
        complete = sink.wait_settled(accounted(base) + g["sent"], idle=5.0, max_wait=600.0)
        after = sink.gc_snapshot()
    growth = after["rss"] - base["rss"]
    return {"nodes": nodes, "sent": g["sent"], "accounted": accounted(after) - accounted(base),
            "complete": complete, "nodes_known": after.get("nodes"), "rss_base": base["rss"],
            "rss_after": after["rss"], "peak_rss": after["maxrss"], "growth": growth,
            "bytes_per_node": round(growth / nodes) if nodes else None}
