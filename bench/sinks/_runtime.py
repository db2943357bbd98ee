"""What both sinks share: JSON status lines on stdout, commands on stdin.

Standard library only: ``ratio1_sink.py`` imports it from the ratio1 venv.

Protocol (one JSON object per line):

* the sink prints ``{"ready": true, ...}`` once its session is connected;
* then, every ``interval`` seconds, a status line ``{"t", "hb", "pl",
  "counted", "cpu_s", "rss", "maxrss", ...}`` where ``hb``/``pl`` count user
  callbacks and ``counted`` the messages the SDK itself reports as rejected
  or dropped (its own loss accounting);
* stdin lines: ``gc`` (collect garbage, then print a status line with
  ``"gc": true`` and the number of known ``nodes``), ``go`` (start the
  command-latency loop), ``stop`` or end of file (close and exit).
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.procstat import cpu_seconds, max_rss_bytes, rss_bytes

__all__ = ["SinkRuntime"]

Snapshot = Callable[[bool], dict[str, Any]]


class SinkRuntime:
    """Counters, the stdout writer and the stdin command reader of one sink process."""

    def __init__(self, sdk: str) -> None:
        self.sdk = sdk
        self.hb = 0
        self.pl = 0
        self.stop = threading.Event()
        self.go = threading.Event()
        self._wake = threading.Event()
        self._gc_requested = False
        self._out = threading.Lock()
        self.rss_start = rss_bytes()

    # callbacks run on one SDK thread each; a plain += is enough for a counter read by the status loop
    def on_heartbeat(self, *_args: Any) -> None:
        """Count one heartbeat callback."""
        self.hb += 1

    def on_payload(self, *_args: Any) -> None:
        """Count one payload callback."""
        self.pl += 1

    def emit(self, obj: dict[str, Any]) -> None:
        """Print one JSON line (flushed: the orchestrator reads it live)."""
        line = json.dumps(obj, default=str)
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def start_stdin_reader(self) -> None:
        """Read commands from stdin on a daemon thread."""
        threading.Thread(target=self._read_stdin, name="sink-stdin", daemon=True).start()

    def _read_stdin(self) -> None:
        for raw in sys.stdin:
            cmd = raw.strip()
            if cmd == "gc":
                self._gc_requested = True
                self._wake.set()
            elif cmd == "go":
                self.go.set()
            elif cmd == "stop":
                break
        self.stop.set()
        self._wake.set()

    def status_loop(self, snapshot: Snapshot, interval: float) -> None:
        """Print status lines until stopped; ``snapshot(detail)`` adds the SDK's own figures."""
        while not self.stop.is_set():
            detail = self._gc_requested
            if detail:
                self._gc_requested = False
                gc.collect()
            line: dict[str, Any] = {"t": time.time(), "hb": self.hb, "pl": self.pl, "cpu_s": cpu_seconds(),
                                    "rss": rss_bytes(), "maxrss": max_rss_bytes()}
            line.update(snapshot(detail))
            if detail:
                line["gc"] = True
            self.emit(line)
            self._wake.wait(interval)
            self._wake.clear()

    def command_loop(self, call: Callable[[int], object], n: int, gap: float) -> None:
        """After ``go``: ``n`` API calls ``gap`` seconds apart, stamped; prints the stamps."""
        self.go.wait()
        starts: list[float] = []
        durations: list[float] = []
        for i in range(n):
            if self.stop.is_set():
                break
            t0 = time.time()
            call(i)
            t1 = time.time()
            starts.append(t0)
            durations.append(t1 - t0)
            # fixed pacing between calls, not a wait for a condition
            time.sleep(gap)
        self.emit({"calls": starts, "api_s": durations})
        self.stop.wait()
