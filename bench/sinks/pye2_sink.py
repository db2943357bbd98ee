"""The pye2 consumer: a real ``pye2.Session`` on MQTT, through the public API only.

``Session(profile="RATIO1", transport="mqtt://HOST:PORT", verify="strict",
on_payload=..., on_heartbeat=...)``: every heartbeat and payload signature is
verified; what fails is dropped and counted in ``session.stats``. Loss
accounting comes from ``session.stats.as_dict()`` (``received``,
``delivered``, ``rejected`` by reason, ``filtered``, ``dropped``).

usage: python -m bench.sinks.pye2_sink ingest [--interval 0.25]
       python -m bench.sinks.pye2_sink cmd --node ADDR --n 300 [--gap 0.02] [--encrypt]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from bench.procstat import rss_bytes
from bench.sinks._runtime import SinkRuntime

SDK = "pye2"


def _stats_line(session: Any, detail: bool) -> dict[str, Any]:
    stats = session.stats.as_dict()
    delivered = sum(stats["delivered"].values())
    counted = sum(stats["rejected"].values()) + stats["dropped"] + stats["filtered"]
    line: dict[str, Any] = {"counted": counted, "received": stats["received"], "delivered": delivered,
                            "rejected": stats["rejected"], "dropped": stats["dropped"],
                            "queued": stats["received"] - delivered - counted,
                            "callback_errors": stats["callback_errors"],
                            # EE_MESSAGE_SEQ accounting (pye2 >= fbe60e4); absent in older sessions
                            "missed": stats.get("missed_payloads"), "duplicates": stats.get("duplicate_payloads")}
    if detail:
        line["nodes"] = len(session.get_active_nodes())
    return line


def _has_replay_memory() -> bool:
    import importlib.util

    return importlib.util.find_spec("pye2.domain.replay") is not None


def main(argv: list[str] | None = None) -> None:
    """Run the sink (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m bench.sinks.pye2_sink")
    ap.add_argument("mode", choices=["ingest", "cmd"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--node", default=None, help="cmd mode: the fake node's address")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--encrypt", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    rt = SinkRuntime(SDK)
    src = os.environ.get("PYE2_BENCH_SRC")
    if src:  # --pye2-src: that tree's pye2 and transports, before the bench's own folder and the venv's
        sys.path.insert(0, src)
    import pye2
    from pye2 import Identity, Session

    rss_import = rss_bytes()
    # a throw-away key: the bench must not create or read ~/.pye2
    # the load generator loops over its corpus: see bench/__main__.py (replays); a pye2 without replay
    # memory has no such option
    replay = os.environ.get("PYE2_BENCH_REPLAY_MEMORY")
    options = {"replay_memory": int(replay)} if replay and _has_replay_memory() else {}
    session = Session(profile="RATIO1", transport=f"mqtt://{a.host}:{a.port}", verify="strict",
                      identity=Identity.generate(), name=f"bench-{SDK}", on_heartbeat=rt.on_heartbeat,
                      on_payload=rt.on_payload, online_timeout=3600.0, encrypt_comms=a.encrypt, **options)
    session.connect()
    rt.start_stdin_reader()
    rt.emit({"ready": True, "sdk": SDK, "version": pye2.__version__, "pye2_path": os.path.dirname(pye2.__file__),
             "address": session.identity.address(session.profile),
             "rss_start": rt.rss_start, "rss_import": rss_import,
             "rss_connected": rss_bytes()})
    try:
        if a.mode == "ingest":
            rt.status_loop(lambda detail: _stats_line(session, detail), a.interval)
        else:
            if not a.node:
                raise SystemExit("cmd mode needs --node")
            if not session.wait_for_node(a.node, timeout=30):
                rt.emit({"error": f"node {a.node} never came online"})
                return
            pipe = session.create_pipeline(node=a.node, name="bench_lat", data_source="Void")
            rt.emit({"ready_cmd": True})
            rt.command_loop(lambda i: pipe.send_pipeline_command({"BENCH_PING": True}, I=i), a.n, a.gap)
    finally:
        session.close()


if __name__ == "__main__":
    main()
