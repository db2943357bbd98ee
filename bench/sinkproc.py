"""Orchestrator side of a sink: start it, follow its status lines, wait on its counters.

A reader thread parses the child's stdout; every line notifies a condition,
so waits (``wait_ready``, ``wait_settled``, ``gc_snapshot``) block on it
instead of polling. The child's stderr goes to ``bench/.cache/logs/``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from bench.config import REPO, BenchConfig

log = logging.getLogger(__name__)

__all__ = ["SinkError", "SinkProcess", "accounted"]


class SinkError(RuntimeError):
    """A sink died, or never became ready."""


def accounted(status: dict[str, Any]) -> int:
    """Messages a status line accounts for: delivered to callbacks plus counted as rejected/dropped."""
    return int(status["hb"]) + int(status["pl"]) + int(status.get("counted", 0))


class SinkProcess:
    """One SDK consumer in its own process (see ``bench/sinks``)."""

    def __init__(self, cfg: BenchConfig, sdk: str, mode: str = "ingest", args: list[str] | None = None) -> None:
        self.sdk = sdk
        python = cfg.python_for(sdk)
        script = ["-m", "bench.sinks.pye2_sink"] if sdk == "pye2" else [str(REPO / "bench" / "sinks" / "ratio1_sink.py")]
        cmd = [str(python), *script, mode, "--host", cfg.host, "--port", str(cfg.port), *(args or [])]
        logs = cfg.cache / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{sdk}-{mode}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self._stderr: IO[str] = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1, cwd=REPO, env=cfg.env_for(sdk))
        self.ready: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, name=f"sink-{sdk}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.startswith("{"):
                continue  # ratio1's logger may print plain lines
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                if line.get("ready"):
                    self.ready = line
                    if "pye2_path" in line:
                        log.info("pye2 sink runs %s %s from %s", line.get("sdk"), line.get("version"),
                                 line["pye2_path"])
                elif "t" in line and "hb" in line:
                    self.last = line
                    self.history.append(line)
                else:
                    self.events.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate() or self._eof, timeout) and predicate()

    def _died(self, what: str) -> SinkError:
        tail = self.log_path.read_text("utf-8", errors="replace")[-2000:]
        return SinkError(f"{self.sdk} sink {what} (exit {self.proc.poll()}); stderr tail:\n{tail}")

    def wait_ready(self, timeout: float = 120.0) -> dict[str, Any]:
        """The ready line, once the first status line has also arrived."""
        if not self._wait(lambda: self.ready is not None and (self.last is not None or bool(self.events)), timeout):
            raise self._died("did not become ready")
        assert self.ready is not None
        return self.ready

    def wait_event(self, key: str, timeout: float) -> dict[str, Any]:
        """The first non-status line carrying ``key`` (e.g. ``ready_cmd``, ``calls``)."""
        def found() -> bool:
            return any(key in e or "error" in e for e in self.events)
        if not self._wait(found, timeout):
            raise self._died(f"sent no {key!r} line")
        event = next(e for e in self.events if key in e or "error" in e)
        if "error" in event:
            raise SinkError(f"{self.sdk} sink: {event['error']}")
        return event

    def snap(self) -> dict[str, Any]:
        """The latest status line."""
        with self._cond:
            if self.last is None:
                raise self._died("has no status yet")
            return dict(self.last)

    def wait_settled(self, target: int, *, idle: float = 2.0, max_wait: float = 30.0) -> bool:
        """Wait until ``accounted >= target``; give up after ``idle`` s without progress or ``max_wait``."""
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
            # the next status line (every interval) is the next chance for progress
            self._wait_next_status(len(self.history))

    def _wait_next_status(self, seen: int) -> None:
        if not self._wait(lambda: len(self.history) > seen, 5.0) and self._eof:
            raise self._died("exited")

    def wait_status_lines(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` more status lines arrived (the sink prints one per interval)."""
        target = len(self.history) + count
        return self._wait(lambda: len(self.history) >= target, timeout)

    def send(self, command: str) -> None:
        """Write one command line to the sink's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def gc_snapshot(self, timeout: float = 60.0) -> dict[str, Any]:
        """Ask the sink to collect garbage and count known nodes; the resulting status line."""
        seen = len(self.history)
        self.send("gc")
        if not self._wait(lambda: any(h.get("gc") for h in self.history[seen:]), timeout):
            raise self._died("did not answer gc")
        return next(h for h in self.history[seen:] if h.get("gc"))

    def close(self) -> None:
        """Stop the sink (stdin EOF), kill it if it does not exit."""
        try:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        self._stderr.close()

    def __enter__(self) -> SinkProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

