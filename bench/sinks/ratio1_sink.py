"""The ratio1 3.5.60 consumer (the incumbent): a real ``ratio1.Session`` on MQTT.

Runs with the ratio1 venv's Python (``bench/.cache/ratio1-venv``), started by
the bench with ``HOME`` pointing into ``bench/.cache`` (ratio1 writes its key
and state under ``~/.ratio1``). Standard library + ratio1 only; our own
``bench`` package is put on ``sys.path`` for the stdlib-only helpers.

How ratio1 is pointed at a plain local broker: ``host``/``port``/``user``/
``pwd`` with ``secured=False`` (no TLS), ``run_dauth=False`` (no dAuth HTTP
call), ``auto_configuration=False``; no ``filter_workers`` and the default
``heartbeat_observation_mode`` (``full_network``), in which ratio1 3.5.60
does not verify the signatures of received messages. Start-up would block
30 s (``START_TIMEOUT``) waiting for an oracle's NET_MON_01 payload, so the
sink lowers it to 1 s. Loss accounting: the callback queues'
``rejected_full`` counters of ``get_callback_queue_status()``.

usage: python bench/sinks/ratio1_sink.py ingest [--interval 0.25]
       python bench/sinks/ratio1_sink.py cmd --node ADDR --n 300 [--gap 0.02] [--encrypt]
       python bench/sinks/ratio1_sink.py verify-corpus --corpus FILE [--sample 40]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.procstat import rss_bytes
from bench.sinks._runtime import SinkRuntime

SDK = "ratio1"


def _stats_line(session: Any, detail: bool) -> dict[str, Any]:
    queues = session.get_callback_queue_status()
    rejected = {name: int(q.get("rejected_full", 0)) for name, q in queues.items()}
    line: dict[str, Any] = {"counted": sum(rejected.values()), "rejected": rejected,
                            "queued": sum(int(q.get("depth", 0)) for q in queues.values())}
    if detail:
        line["nodes"] = len(session.get_active_nodes())
    return line


def _verify_corpus(corpus: Path, sample: int) -> None:
    """Check a sample of the corpus with ratio1's own ``verify`` (proves the format is shared).

    ``eth_enabled=True`` as in a ratio1 Session: the ``EE_ETH_*`` fields are then left out of
    the hash, as pye2's RATIO1 profile does (with ``eth_enabled=False`` ratio1 hashes them too).
    """
    from ratio1 import Logger  # type: ignore[import-not-found]
    from ratio1.bc import DefaultBlockEngine  # type: ignore[import-not-found]

    cache = Path(os.environ.get("HOME", "."))
    log = Logger("BENCH", base_folder=str(cache), app_folder="_bench", silent=True)
    engine = DefaultBlockEngine(name="bench_checker", log=log,
                                config={"PEM_FILE": "bench_checker.pem", "PEM_LOCATION": "data"},
                                verbosity=0, eth_enabled=True)
    checked = valid = tampered_valid = tampered = 0
    with corpus.open(encoding="utf-8") as f:
        f.readline()
        for line in f:
            rec = json.loads(line)
            is_bad = rec["k"] == "bad"
            if not is_bad and checked >= sample:
                continue
            ok = bool(engine.verify(json.loads(rec["m"]))["valid"])
            if is_bad:
                tampered += 1
                tampered_valid += ok
            else:
                checked += 1
                valid += ok
    print(json.dumps({"checked": checked, "valid": valid, "tampered": tampered, "tampered_valid": tampered_valid}),
          flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the sink (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="ratio1_sink.py")
    ap.add_argument("mode", choices=["ingest", "cmd", "verify-corpus"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--node", default=None)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--encrypt", action="store_true")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--sample", type=int, default=40)
    a = ap.parse_args(argv)
    if a.mode == "verify-corpus":
        if a.corpus is None:
            raise SystemExit("verify-corpus needs --corpus")
        _verify_corpus(a.corpus, a.sample)
        return

    rt = SinkRuntime(SDK)
    import ratio1
    from ratio1 import Session

    class BenchSession(Session):  # type: ignore[misc]
        START_TIMEOUT = 1

    rss_import = rss_bytes()
    session = BenchSession(host=a.host, port=a.port, user="bench", pwd="bench", secured=False, run_dauth=False,
                           auto_configuration=False, name=f"bench-{SDK}", silent=True,
                           on_heartbeat=rt.on_heartbeat, on_payload=rt.on_payload,
                           encrypt_comms=a.encrypt, use_home_folder=True)
    rt.start_stdin_reader()
    rt.emit({"ready": True, "sdk": SDK, "version": getattr(ratio1, "__version__", "?"),
             "address": session.get_client_address(), "rss_start": rt.rss_start, "rss_import": rss_import,
             "rss_connected": rss_bytes()})
    try:
        if a.mode == "ingest":
            rt.status_loop(lambda detail: _stats_line(session, detail), a.interval)
        else:
            if not a.node:
                raise SystemExit("cmd mode needs --node")
            if not session.wait_for_node(a.node, timeout=30, verbose=False):
                rt.emit({"error": f"node {a.node} never came online"})
                return
            pipe = session.create_pipeline(node=a.node, name="bench_lat", data_source="Void")
            rt.emit({"ready_cmd": True})
            rt.command_loop(lambda i: pipe.send_pipeline_command("BENCH_PING", payload={"I": i},
                                                                 wait_confirmation=False), a.n, a.gap)
    finally:
        session.close()


if __name__ == "__main__":
    main()
