"""The session under test of the soak (its own process): one pye2 ``Session``, public API only.

``Session(profile="RATIO1", transport="mqtt://HOST:PORT", verify="strict",
identity=Identity.generate(), root_topic=ROOT, silent=False, on_payload=...,
on_heartbeat=..., on_notification=...)`` with Python logging written to
``--log`` (a ``FileHandler`` at INFO on the root logger): the file's size at the
end is the "log bytes written".

What reaches the callbacks is sorted as follows (under RATIO1 the ``e2id``
handed to a callback is the verified sender's address):

* a payload from the genuine node's address carrying ``SOAK_N``: genuine;
  its latency is ``time.time() - SOAK_SENT_AT`` (same host clock), a second
  delivery of the same ``SOAK_N`` is a *duplicate delivered* (a replay that
  got through), one numbered below an earlier one is *out of order*;
* anything whose envelope carries ``SOAK_FORGED`` (the flood attacker marks
  every forgery), or that claims ``EE_ID`` ``soak-node`` from another address:
  *forged delivered*, by kind;
* ``SOAK_UNSIGNED`` (the unsigned huge senders), ``SOAK_BULK`` (4 MB payloads
  legitimately signed under the attacker's own name), ``soak-bloat-*``
  heartbeats (fresh keys with huge statuses): counted apart, for information.

Heartbeats are classified from their envelope alone (``data.envelope`` when
the session hands a lazy view), so a callback never inflates a status.

Protocol: ``{"ready": true, ...}`` once connected; a status line
``{"t", "genuine", "genuine_hb", "received", "in_flight", "rss_mb"}`` every
``--interval`` s; on ``stop N`` (N: the genuine payloads the node sent; or end of stdin,
or ``--max-seconds``) the session is closed and one ``{"result": {...}}``
line is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from typing import Any

from bench.procstat import cpu_seconds, max_rss_bytes, rss_bytes

__all__ = ["main", "peak_rss_bytes"]

NODE = "soak-node"
_MB = 1024 * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (``VmHWM``, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max_rss_bytes()


class Tally:
    """What reached the callbacks (written by the session's dispatcher thread, read by the status loop)."""

    def __init__(self, genuine_address: str) -> None:
        self.genuine = genuine_address
        self.first: dict[int, float] = {}
        self.latencies: list[float] = []
        self.duplicates = 0
        self.max_n = 0
        self.out_of_order = 0
        self.genuine_hb = 0
        self.forged = {"payload": 0, "heartbeat": 0, "notification": 0}
        self.unsigned = 0
        self.bulk = 0
        self.bloat = 0
        self.other = 0

    def _hostile(self, kind: str, e2id: str, env: Any) -> bool:
        if env.get("SOAK_UNSIGNED"):
            self.unsigned += 1
            return True
        if env.get("SOAK_FORGED") or (env.get("EE_ID") == NODE and e2id != self.genuine):
            self.forged[kind] += 1
            return True
        return False

    def on_payload(self, _session: Any, e2id: str, _pipeline: Any, _signature: Any, _instance: Any,
                   data: Any) -> None:
        now = time.time()
        if self._hostile("payload", e2id, data):
            return
        n = data.get("SOAK_N")
        if e2id == self.genuine and isinstance(n, int):
            if n in self.first:
                self.duplicates += 1
                return
            self.first[n] = now
            if n < self.max_n:
                self.out_of_order += 1
            else:
                self.max_n = n
            sent = data.get("SOAK_SENT_AT")
            if isinstance(sent, (int, float)):
                self.latencies.append(now - float(sent))
        elif data.get("SOAK_BULK"):
            self.bulk += 1
        else:
            self.other += 1

    def on_heartbeat(self, _session: Any, e2id: str, data: Any) -> None:
        env = getattr(data, "envelope", data)  # never inflate a status to classify it
        if self._hostile("heartbeat", e2id, env):
            return
        if e2id == self.genuine:
            self.genuine_hb += 1
        elif str(env.get("EE_ID", "")).startswith("soak-bloat-"):
            self.bloat += 1
        else:
            self.other += 1

    def on_notification(self, _session: Any, e2id: str, data: Any) -> None:
        if not self._hostile("notification", e2id, data):
            self.other += 1

    def result(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def ms(x: float) -> float:
            return round(1000.0 * x, 2)

        return {
            "genuine_delivered": len(self.first),
            "genuine_out_of_order": self.out_of_order,
            "duplicates_delivered": self.duplicates,
            "genuine_heartbeats_delivered": self.genuine_hb,
            "forged_delivered": sum(self.forged.values()),
            "forged_delivered_by_kind": dict(self.forged),
            "unsigned_delivered": self.unsigned,
            "bulk_payloads_delivered": self.bulk,
            "bloat_heartbeats_delivered": self.bloat,
            "other_delivered": self.other,
            "latency_ms": {
                "median": ms(statistics.median(lat)) if lat else None,
                "p99": ms(lat[min(len(lat) - 1, int(0.99 * len(lat)))]) if lat else None,
                "max": ms(lat[-1]) if lat else None,
            },
        }

    def missing(self, sent: int, limit: int = 20) -> list[int]:
        """The first ``limit`` numbers in 1..sent never delivered."""
        out = []
        for n in range(1, sent + 1):
            if n not in self.first:
                out.append(n)
                if len(out) >= limit:
                    break
        return out


def main(argv: list[str] | None = None) -> None:
    """Run the session until ``stop`` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m bench.soak_session")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--root", required=True)
    ap.add_argument("--node-address", required=True)
    ap.add_argument("--log", required=True, help="the file the session's logging writes to")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="hard bound on the session's life")
    a = ap.parse_args(argv)

    handler = logging.FileHandler(a.log, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)

    import pye2
    from pye2 import Identity, Session

    tally = Tally(a.node_address)
    session = Session(profile="RATIO1", transport=f"mqtt://{a.host}:{a.port}", verify="strict",
                      identity=Identity.generate(), root_topic=a.root, silent=False, name="soak",
                      on_payload=tally.on_payload, on_heartbeat=tally.on_heartbeat,
                      on_notification=tally.on_notification)
    session.connect()
    out = threading.Lock()

    def emit(obj: dict[str, Any]) -> None:
        with out:
            sys.stdout.write(json.dumps(obj, default=str) + "\n")
            sys.stdout.flush()

    stop = threading.Event()
    sent = [0]

    def read_stdin() -> None:
        for raw in sys.stdin:
            parts = raw.split()
            if parts and parts[0] == "stop":
                sent[0] = int(parts[1]) if len(parts) > 1 else 0
                break
        stop.set()

    threading.Thread(target=read_stdin, name="soak-stdin", daemon=True).start()
    started = time.time()
    emit({"ready": True, "pid": os.getpid(), "pye2": pye2.__version__, "pye2_path": os.path.dirname(pye2.__file__),
          "address": session.identity.address(session.profile), "topics": [session.profile.ctrl,
                                                                           session.profile.payloads]})
    timeline: list[dict[str, Any]] = []
    next_mark = 0.0
    deadline = started + a.max_seconds
    while not stop.wait(a.interval) and time.time() < deadline:
        stats = session.stats.as_dict()
        line = {"t": round(time.time() - started, 1), "genuine": len(tally.first), "genuine_hb": tally.genuine_hb,
                "received": stats["received"], "in_flight": stats["in_flight"], "dropped": stats["dropped"],
                "rss_mb": round(rss_bytes() / _MB, 1)}
        if line["t"] >= next_mark:  # a coarse timeline (every 10 s) for the report
            timeline.append(line)
            next_mark = line["t"] + 10.0
        emit(line)
    final_stats = session.stats.as_dict()
    rss_end = rss_bytes() / _MB
    session.close()
    handler.flush()
    result = tally.result()
    result.update(peak_rss_mb=round(peak_rss_bytes() / _MB, 1), rss_end_mb=round(rss_end, 1),
                  timeline=timeline, stats=final_stats, session_seconds=round(time.time() - started, 1),
                  session_cpu_s=round(cpu_seconds(), 1),
                  pye2=pye2.__version__)
    result["genuine_missing_first"] = tally.missing(sent[0])
    emit({"result": result})


if __name__ == "__main__":
    main()
