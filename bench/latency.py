"""Command on the wire: from the API call to a raw subscriber receiving it.

A fake node (``bench.fakenode``, its own process) heartbeats and listens on
``naeural/<address>/config``. The SDK's sink waits for the node, creates a
pipeline on it (``create_pipeline(node=..., name="bench_lat",
data_source="Void")``), then on ``go`` calls ``pipeline.send_pipeline_command``
N times, 20 ms apart, stamping ``time.time()`` just before each call.
latency_i = arrival_i at the fake node - call_i (same host clock). Reported:
median / p90 / p99 / max, and the duration of the API call itself.
Commands are sent in clear (pye2's RATIO1 default) unless ``encrypt``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from bench.config import REPO, BenchConfig
from bench.sinkproc import SinkProcess
from bench.stats import percentile

__all__ = ["FakeNode", "cmd_latency", "wire_floor"]


class FakeNode:
    """The fake node process and the arrivals it reports."""

    def __init__(self, cfg: BenchConfig, seed: int = 7) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fakenode", "--host", cfg.host, "--port", str(cfg.port), "--seed", str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=REPO, env=cfg.env_for("pye2"))
        self.arrivals: list[float] = []
        self.sizes: list[int] = []
        self.ready: dict[str, Any] | None = None
        self.done: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._eof = False
        threading.Thread(target=self._read, name="fake-node-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                if "arr" in line:
                    self.arrivals.append(float(line["arr"]))
                    self.sizes.append(int(line["bytes"]))
                elif line.get("ready"):
                    self.ready = line
                elif line.get("done"):
                    self.done = line
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        """Wait on the arrivals condition until ``predicate()`` (or the process ended)."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate() or self._eof, timeout)) and bool(predicate())

    def address(self, timeout: float = 30.0) -> str:
        """The node's address, once it is subscribed and heartbeating."""
        if not self.wait(lambda: self.ready is not None, timeout):
            raise RuntimeError("fake node did not start")
        assert self.ready is not None
        return str(self.ready["address"])

    def quiet(self, period: float, max_wait: float) -> int:
        """Wait until no command arrived for ``period`` seconds; the number received so far."""
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline and self._more_within(len(self.arrivals), period):
            pass
        return len(self.arrivals)

    def _more_within(self, seen: int, period: float) -> bool:
        return self.wait(lambda: len(self.arrivals) > seen, period)

    def finish(self) -> dict[str, Any]:
        """Close the node's stdin; its signature check of what it received."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.wait(lambda: self.done is not None, 60.0)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.done or {}


def cmd_latency(cfg: BenchConfig, sdk: str, n: int, gap: float = 0.02, encrypt: bool = False) -> dict[str, Any]:
    """``n`` pipeline commands from ``sdk``'s API to the wire; latency figures in milliseconds."""
    node = FakeNode(cfg)
    try:
        address = node.address()
        args = ["--node", address, "--n", str(n), "--gap", str(gap)] + (["--encrypt"] if encrypt else [])
        with SinkProcess(cfg, sdk, "cmd", args) as sink:
            sink.wait_ready()
            sink.wait_event("ready_cmd", 90.0)
            # pye2 sends the create_pipeline command at once (ratio1 sends none): it must be in before timing
            node.wait(lambda: len(node.arrivals) > 0, 3.0)
            base = node.quiet(0.5, 10.0)
            sink.send("go")
            calls = sink.wait_event("calls", n * (gap + 0.5) + 60.0)
            node.wait(lambda: len(node.arrivals) >= base + n, 10.0)
            node.quiet(1.0, 5.0)
    finally:
        check = node.finish()
    starts: list[float] = calls["calls"]
    arrivals = node.arrivals[base:base + len(starts)]
    lat = [(arr - t0) * 1000 for arr, t0 in zip(arrivals, starts)]
    api = [d * 1000 for d in calls["api_s"]]
    sizes = node.sizes[base:base + len(starts)]

    return {
        "encrypt": encrypt, "calls": len(starts), "received": len(node.arrivals) - base,
        "latency_ms": {"median": _ms(percentile(lat, 50)), "p90": _ms(percentile(lat, 90)),
                       "p99": _ms(percentile(lat, 99)), "min": _ms(min(lat, default=None)),
                       "max": _ms(max(lat, default=None))},
        "api_call_ms": {"median": _ms(percentile(api, 50)), "p99": _ms(percentile(api, 99))},
        "cmd_bytes": round(sum(sizes) / len(sizes)) if sizes else None,
        "signatures_valid": check.get("valid"), "signatures_checked": check.get("received"),
        "invalid_reason": check.get("invalid_reason"),
    }


def wire_floor(cfg: BenchConfig, n: int, gap: float = 0.02, size: int = 1000) -> dict[str, Any]:
    """The same path with no SDK: a pre-built packet of ``size`` bytes written to a raw socket, ``n`` times.

    What no client can go below on this machine and broker: the broker's hop
    and both processes waking up after ``gap`` of idleness (the same gap as the
    SDKs' commands). The orchestrator publishes; the fake node stamps arrivals
    as for the SDKs.
    """
    from bench.mqttwire import connect, publish_packet
    from pye2.wire import RATIO1

    node = FakeNode(cfg)
    starts: list[float] = []
    try:
        address = node.address()
        base = node.quiet(0.5, 10.0)
        packet = publish_packet(RATIO1.config(address), b'{"BENCH_FLOOR": "' + b"x" * max(0, size - 20) + b'"}')
        pub = connect(cfg.host, cfg.port, "bench-wire-floor")
        try:
            for _ in range(n):
                time.sleep(gap)  # pacing, as the sinks' command loops
                starts.append(time.time())
                pub.sendall(packet)
        finally:
            pub.close()
        node.wait(lambda: len(node.arrivals) >= base + n, 10.0)
    finally:
        node.finish()
    lat = [(arr - t0) * 1000 for arr, t0 in zip(node.arrivals[base:base + n], starts)]
    return {"calls": n, "received": len(lat), "bytes": len(packet),
            "latency_ms": {"median": _ms(percentile(lat, 50)), "p99": _ms(percentile(lat, 99))}}


def _ms(v: float | None) -> float | None:
    return round(v, 3) if v is not None else None
