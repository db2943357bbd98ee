"""Rate-controlled QoS 0 publisher replaying the corpus over a raw socket.

Run as its own process (``python -m bench.loadgen ...``); prints one JSON
line: ``sent``, ``seconds``, achieved ``rate``, ``cpu_s`` / ``cpu_pct`` of the
generator. Packets are built before the timed window, so the generator only
writes to the socket: at 10k msg/s it costs a few percent of a core, which
leaves the 2-core machine to the broker and the SDK under test.

Pacing: at time ``t`` after the start, ``floor(rate * t) + 1`` messages are
due; whatever is due is written in one ``sendall``, otherwise the generator
sleeps a tick. ``--rate 0`` writes as fast as the socket takes it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.corpus import read_corpus
from bench.mqttwire import DISCONNECT, connect, publish_packet
from bench.procstat import cpu_seconds

__all__ = ["load_packets", "publish", "run_loadgen"]

_MIX = ("hb", "pl")


def load_packets(corpus: Path, kind: str, topic: str | None = None) -> list[bytes]:
    """PUBLISH packets of the corpus records of ``kind`` (``hb``, ``pl``, ``mix`` or ``bad``)."""
    kinds = _MIX if kind == "mix" else (kind,)
    return [publish_packet(topic or rec["t"], rec["m"]) for rec in read_corpus(corpus, kinds)]


def publish(packets: list[bytes], *, host: str, port: int, rate: float, duration: float | None = None,
            count: int | None = None, skip: int = 0, client_id: str = "bench-loadgen",
            tick: float = 0.002) -> dict[str, Any]:
    """Replay ``packets`` from index ``skip`` (cycling) at ``rate`` msg/s for ``duration`` s or ``count`` messages."""
    if not packets:
        raise ValueError("no packets to publish")
    # the process id keeps two bench runs on one machine from taking over each other's connection
    sock = connect(host, port, f"{client_id}-{os.getpid()}", sndbuf=4 << 20)
    limit = count if count is not None else sys.maxsize
    n_packets, sent = len(packets), 0
    index = skip % n_packets
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    try:
        while sent < limit:
            elapsed = time.perf_counter() - t0
            if duration is not None and elapsed >= duration:
                break
            if rate > 0:
                batch = min(int(rate * elapsed) + 1 - sent, limit - sent)
                if batch <= 0:
                    time.sleep(tick)
                    continue
            else:
                batch = min(256, limit - sent)
            end = index + batch
            if end <= n_packets:
                sock.sendall(b"".join(packets[index:end]))
            else:
                sock.sendall(b"".join(packets[i % n_packets] for i in range(index, end)))
            index = end % n_packets
            sent += batch
        elapsed = time.perf_counter() - t0
        sock.sendall(DISCONNECT)
    finally:
        sock.close()
    cpu = cpu_seconds() - cpu0
    return {
        "sent": sent, "seconds": round(elapsed, 3), "rate": round(sent / elapsed, 1) if elapsed > 0 else None,
        "target_rate": rate, "cpu_s": round(cpu, 3), "cpu_pct": round(100 * cpu / elapsed, 1) if elapsed > 0 else None,
        "bytes_avg": round(sum(map(len, packets)) / n_packets),
    }


def run_loadgen(corpus: Path, kind: str, *, host: str, port: int, rate: float, duration: float | None = None,
                count: int | None = None, once: bool = False, skip: int = 0,
                client_id: str = "bench-loadgen") -> dict[str, Any]:
    """Run the generator in a child process (our venv's Python) and return its result line."""
    cmd = [sys.executable, "-m", "bench.loadgen", "--corpus", str(corpus), "--kind", kind, "--rate", str(rate),
           "--host", host, "--port", str(port), "--client-id", client_id]
    if duration is not None:
        cmd += ["--duration", str(duration)]
    if count is not None:
        cmd += ["--count", str(count)]
    if once:
        cmd.append("--once")
    if skip:
        cmd += ["--skip", str(skip)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--kind", default="mix", choices=["hb", "pl", "mix", "bad"])
    ap.add_argument("--rate", type=float, default=1000.0, help="msg/s; 0 = as fast as possible")
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--once", action="store_true", help="every selected corpus message exactly once")
    ap.add_argument("--skip", type=int, default=0, help="start at this message of the selection")
    ap.add_argument("--topic", default=None, help="publish everything on this topic instead")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--client-id", default="bench-loadgen")
    a = ap.parse_args(argv)
    packets = load_packets(a.corpus, a.kind, a.topic)
    count = len(packets) if a.once else a.count
    duration = 10.0 if a.duration is None and count is None else a.duration
    res = publish(packets, host=a.host, port=a.port, rate=a.rate, duration=duration, count=count, skip=a.skip,
                  client_id=a.client_id)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
