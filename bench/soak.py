"""``python -m bench.soak``: one pye2 session under minutes of hostile traffic, beside a genuine node.

usage: python -m bench.soak [--seconds 180] [--rate 3000] [--host 127.0.0.1 --port 1883]
                            [--node-rate 200] [--mix KIND=W,...,KIND=R/s] [--sizes KIND=BYTES,...]
                            [--max-mbps 60] [--smoke] [--log FILE] [--json FILE]

Processes (every one its own, as the bench sinks; all on the local broker, under
a topic root unique to the run):

* ``bench.soak_session``: the session under test (RATIO1, ``verify="strict"``,
  logging to a file) that sorts what reaches its callbacks;
* ``bench.soak_attackers node``: the genuine node (heartbeat every 2 s, numbered
  payloads of ``soak-pipe`` at ``--node-rate``/s);
* ``bench.soak_attackers flood|replay|bulk``: the attackers, ``--rate`` hostile
  messages per second in all (see ``--mix``).

The hostile mix (``--mix``): ``KIND=WEIGHT`` shares ``--rate`` among the small
kinds (``forged_payload``, ``forged_heartbeat``, ``forged_notification``,
``replay``); ``KIND=N/s`` sends the large kinds (``huge_sender`` ~1 MB unsigned
senders with line breaks and escapes, ``big_status`` fresh keys with ~8 MB
statuses, ``big_payload`` 4 MB payloads) N times a second, out of ``--rate``;
their sizes are ``--sizes``. All hostile traffic together stays under
``--max-mbps`` (MB/s; the large kinds are throttled to fit).

Printed at the end: a table, PASS/FAIL lines (peak RSS < 200 MB, genuine lost
== 0, forged delivered == 0, duplicates delivered == 0) and, last, one JSON
line with every figure. The exit status is 0 whatever the figures (they are
for humans), 1 only when the run itself broke. Only loopback brokers;
every wait is bounded, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bench.config import DEFAULT_CACHE, REPO, parse_broker
from bench.procstat import find_pid, pid_cpu_seconds
from bench.soak_attackers import BIG_KINDS, FLOOD_KINDS, SMALL_KINDS, node_address

__all__ = ["DEFAULT_MIX", "RESULT_KEYS", "main", "parse_mix", "parse_sizes"]

DEFAULT_MIX = ("forged_payload=35,forged_heartbeat=15,forged_notification=15,replay=35,"
               "huge_sender=3/s,big_status=1.5/s,big_payload=3/s")
DEFAULT_SIZES = {"huge_sender": 1 << 20, "big_status": 8 << 20, "big_payload": 4 << 20}
SMOKE_SIZES = {"huge_sender": 16 << 10, "big_status": 128 << 10, "big_payload": 64 << 10}
#: rough signed size of one small hostile message (for the byte budget)
_SMALL_BYTES = 3000
RSS_LIMIT_MB = 200.0
#: the keys the JSON line always has (tests/test_soak_smoke.py checks them)
RESULT_KEYS = ("seconds", "rate", "mix", "sizes", "root", "peak_rss_mb", "log_bytes", "genuine_sent",
               "genuine_delivered", "genuine_lost", "latency_ms", "forged_delivered", "duplicates_delivered",
               "hostile_sent", "hostile_mb_per_s", "stats", "checks")
_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_mix(text: str, rate: float) -> dict[str, float]:
    """``KIND=WEIGHT`` / ``KIND=N/s`` pairs -> messages per second of every kind (they add up to ``rate``)."""
    weights: dict[str, float] = dict.fromkeys(SMALL_KINDS, 0.0)
    per_s: dict[str, float] = dict.fromkeys(BIG_KINDS, 0.0)
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, value = item.partition("=")
        kind = kind.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--mix item {item!r}: expected KIND=WEIGHT or KIND=N/s")
        if kind in weights:
            weights[kind] = float(value)
        elif kind in per_s:
            per_s[kind] = float(value.strip().removesuffix("/s"))
        else:
            raise ValueError(f"--mix: unknown kind {kind!r} (known: {', '.join((*SMALL_KINDS, *BIG_KINDS))})")
    if any(v < 0 for v in (*weights.values(), *per_s.values())):
        raise ValueError("--mix: negative weight or rate")
    small = max(0.0, rate - sum(per_s.values()))
    total_w = sum(weights.values())
    out = {k: (small * w / total_w if total_w else 0.0) for k, w in weights.items()}
    out.update(per_s)
    return out


def parse_sizes(text: str, base: dict[str, int]) -> dict[str, int]:
    """``KIND=BYTES`` pairs (suffix K, M or G) over ``base``."""
    sizes = dict(base)
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, value = item.partition("=")
        kind = kind.strip().replace("-", "_")
        if kind not in sizes:
            raise ValueError(f"--sizes: unknown kind {kind!r} (known: {', '.join(sizes)})")
        value = value.strip().lower().removesuffix("b")
        mult = _SUFFIX.get(value[-1:], 1)
        sizes[kind] = int(float(value[:-1] if mult > 1 else value) * mult)
    return sizes


# ------------------------------------------------------------------------------------------ child process
class _Child:
    """One soak process: JSON lines from its stdout, commands to its stdin, stderr to a file."""

    def __init__(self, name: str, args: list[str], logs: Path) -> None:
        self.name = name
        self.err_path = logs / f"{name}.stderr"
        self._err: IO[str] = self.err_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1, cwd=REPO)
        self.lines: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, name=f"soak-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_line(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        """The first line (old or new) matching ``pred``, or None after ``timeout`` s or the child's exit."""
        def found() -> dict[str, Any] | None:
            return next((ln for ln in self.lines if pred(ln)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._eof, timeout)
            return found()

    def last(self, key: str) -> dict[str, Any] | None:
        """The latest line carrying ``key``."""
        with self._cond:
            return next((ln for ln in reversed(self.lines) if key in ln), None)

    def wait_next(self, timeout: float) -> None:
        """Until one more line arrives (or ``timeout``)."""
        with self._cond:
            n = len(self.lines)
            self._cond.wait_for(lambda: len(self.lines) > n or self._eof, timeout)

    def send(self, line: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def stderr_tail(self) -> str:
        self._err.flush()
        return self.err_path.read_text("utf-8", errors="replace")[-1500:]

    def close(self, timeout: float = 15.0) -> None:
        """End the child: stdin closed, then (if it is still there) terminate, then kill: this pid only."""
        try:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        self._err.close()


class SoakBroke(RuntimeError):
    """The run itself failed (a process died or never answered)."""


# ------------------------------------------------------------------------------------------------ the run
def _scan_log(path: Path) -> dict[str, Any]:
    """Size, lines, longest line, raw ESC bytes and forged log lines (``SOAK-INJECTED`` at a line start)."""
    size = lines = longest = esc = injected = 0
    current = 0
    tail = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            esc += chunk.count(b"\x1b")
            injected += (tail + chunk).count(b"\nSOAK-INJECTED")
            tail = chunk[-1:]
            parts = chunk.split(b"\n")
            for part in parts[:-1]:
                longest = max(longest, current + len(part))
                current = 0
                lines += 1
            current += len(parts[-1])
    longest = max(longest, current)
    return {"log_bytes": size, "log_lines": lines + (1 if current else 0), "log_longest_line": longest,
            "log_escape_bytes": esc, "log_injected_lines": injected}


def run(a: argparse.Namespace) -> dict[str, Any]:
    """Start every process, run the soak, collect the figures (see the module docstring)."""
    rates = parse_mix(a.mix, a.rate)
    sizes = parse_sizes(a.sizes, SMOKE_SIZES if a.smoke else DEFAULT_SIZES)
    root = f"soak{uuid.uuid4().hex[:10]}"
    out_dir = DEFAULT_CACHE / "soak"
    logs = out_dir / root
    logs.mkdir(parents=True, exist_ok=True)
    log_path = Path(a.log) if a.log else logs / "session.log"
    small_bytes = sum(rates[k] for k in SMALL_KINDS) * _SMALL_BYTES
    big_bytes = sum(rates[k] * sizes[k] for k in BIG_KINDS)
    budget = max(1e6, a.max_mbps * 1e6 - small_bytes)
    notes = []
    if big_bytes > budget:
        notes.append(f"the large kinds ask for {big_bytes / 1e6:.1f} MB/s; the byte cap lets them "
                      f"{budget / 1e6:.1f} MB/s (they are throttled)")
    address = node_address()
    common = ["--host", a.host, "--port", str(a.port), "--root", root]
    children: dict[str, _Child] = {}
    try:
        session = children["session"] = _Child("session", [
            "bench.soak_session", *common, "--node-address", address, "--log", str(log_path),
            "--max-seconds", str(a.seconds + a.drain + 120)], logs)
        ready = session.wait_line(lambda ln: bool(ln.get("ready")), 60)
        if ready is None:
            raise SoakBroke(f"the session did not start:\n{session.stderr_tail()}")
        roles: dict[str, list[str]] = {"node": ["--node-rate", str(a.node_rate)]}
        flood = [arg for k in FLOOD_KINDS if rates[k] > 0 for arg in (f"--{k.replace('_', '-')}", str(rates[k]))]
        if flood:
            roles["flood"] = flood
        if rates["replay"] > 0:
            roles["replay"] = ["--replay", str(rates["replay"])]
        if any(rates[k] > 0 for k in BIG_KINDS):
            roles["bulk"] = [*(arg for k in BIG_KINDS for arg in (f"--{k.replace('_', '-')}", str(rates[k]))),
                             "--huge-sender-bytes", str(sizes["huge_sender"]),
                             "--big-status-bytes", str(sizes["big_status"]),
                             "--big-payload-bytes", str(sizes["big_payload"]), "--max-bytes-per-s", str(budget)]
        for role, extra in roles.items():
            children[role] = _Child(role, ["bench.soak_attackers", role, *common, *extra], logs)
        for role in roles:
            if children[role].wait_line(lambda ln: bool(ln.get("ready")), 120) is None:
                raise SoakBroke(f"{role} did not start:\n{children[role].stderr_tail()}")
        # the genuine node speaks first, so the session knows it before any forgery arrives
        broker = find_pid("mosquitto")
        broker_cpu0 = pid_cpu_seconds(broker) if broker else None
        t0 = time.time()
        children["node"].send(f"go {a.seconds}")
        if session.wait_line(lambda ln: ln.get("genuine_hb", 0) > 0, 15) is None:
            notes.append("the session had not delivered the genuine node's heartbeat when the attackers started")
        attack_seconds = max(0.5, a.seconds - (time.time() - t0))
        for role in roles:
            if role != "node":
                children[role].send(f"go {attack_seconds}")
        done: dict[str, dict[str, Any]] = {}
        for role in roles:
            line = children[role].wait_line(lambda ln: bool(ln.get("done")), a.seconds + 90)
            if line is None:
                raise SoakBroke(f"{role} did not finish:\n{children[role].stderr_tail()}")
            done[role] = line
        # drain: until nothing is in flight and the genuine count stopped moving (bounded)
        sent = int(done["node"]["payloads"])
        drain_end = time.time() + a.drain
        steady = 0
        previous = -1
        while time.time() < drain_end:
            session.wait_next(2.0)
            status = session.last("in_flight") or {}
            genuine = int(status.get("genuine", 0))
            if genuine >= sent and status.get("in_flight") == 0:
                break
            steady = steady + 1 if genuine == previous and status.get("in_flight") == 0 else 0
            previous = genuine
            if steady >= 3:
                break
        broker_cpu1 = pid_cpu_seconds(broker) if broker else None
        session.send(f"stop {sent}")
        line = session.wait_line(lambda ln: "result" in ln, 90)
        if line is None:
            raise SoakBroke(f"the session gave no result:\n{session.stderr_tail()}")
        res: dict[str, Any] = line["result"]
        session.close()
        with (logs / "session-status.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(ln) + "\n" for ln in session.lines)
    finally:
        for child in children.values():
            child.close()
    hostile_sent: dict[str, int] = {}
    hostile_bytes = 0
    for role, line in done.items():
        if role == "node":
            continue
        hostile_bytes += int(line.get("bytes", 0))
        for kind, n in line.get("sent", {}).items():
            hostile_sent[kind] = hostile_sent.get(kind, 0) + int(n)
    genuine_delivered = int(res.pop("genuine_delivered"))
    out: dict[str, Any] = {
        "seconds": a.seconds, "rate": a.rate, "node_rate": a.node_rate, "mix": {k: round(v, 2) for k, v in rates.items()},
        "sizes": sizes, "root": root, "max_mbps": a.max_mbps, "pye2": res.pop("pye2", None),
        "peak_rss_mb": res.pop("peak_rss_mb"), **_scan_log(log_path), "log_path": str(log_path),
        "genuine_sent": sent, "genuine_delivered": genuine_delivered, "genuine_lost": sent - genuine_delivered,
        "genuine_heartbeats_sent": int(done["node"].get("heartbeats", 0)),
        "hostile_sent": hostile_sent, "hostile_total": sum(hostile_sent.values()),
        "hostile_seconds": round(attack_seconds, 1),
        "hostile_per_s": round(sum(hostile_sent.values()) / attack_seconds),
        "hostile_mb_per_s": round(hostile_bytes / 1e6 / attack_seconds, 1),
        "replay_captured": done.get("replay", {}).get("captured"),
        "cpu_s": {"session": res.pop("session_cpu_s", None), **{role: line.get("cpu_s") for role, line in done.items()},
                  "broker": round(broker_cpu1 - broker_cpu0, 1) if broker_cpu0 is not None and broker_cpu1 else None},
        **res, "notes": notes,
    }
    out["checks"] = {
        f"peak RSS < {RSS_LIMIT_MB:.0f} MB": out["peak_rss_mb"] < RSS_LIMIT_MB,
        "genuine lost == 0": out["genuine_lost"] == 0,
        "forged delivered == 0": out["forged_delivered"] == 0,
        "duplicates delivered == 0": out["duplicates_delivered"] == 0,
    }
    return out


def _fmt(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def render(res: dict[str, Any]) -> str:
    """The human table and the PASS/FAIL lines."""
    lat = res["latency_ms"]
    stats = res["stats"]
    rejected = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(stats["rejected"].items(), key=lambda kv: -kv[1]))
    delivered = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(stats["delivered"].items()))
    sent = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(res["hostile_sent"].items()))
    rows = [
        ("run", (f"{res['seconds']} s, hostile {res['rate']:,.0f} msg/s requested, genuine "
                 f"{res['node_rate']:,.0f} payloads/s, root {res['root']}, pye2 {res['pye2']}")),
        ("hostile sent", (f"{_fmt(res['hostile_total'])} ({res['hostile_per_s']:,}/s, "
                          f"{res['hostile_mb_per_s']} MB/s): {sent}")),
        ("peak RSS of the session", f"{res['peak_rss_mb']} MB (at the end {res.get('rss_end_mb')} MB)"),
        ("timeline (s: RSS MB / in flight / dropped)",
         "  ".join(f"{p['t']:g}: {p['rss_mb']:g}/{p['in_flight']}/{p['dropped']}" for p in res.get("timeline", []))),
        ("log bytes written", (f"{_fmt(res['log_bytes'])} ({_fmt(res['log_lines'])} lines, longest "
                               f"{_fmt(res['log_longest_line'])} B, {_fmt(res['log_escape_bytes'])} ESC bytes, "
                               f"{_fmt(res['log_injected_lines'])} injected lines) {res['log_path']}")),
        ("genuine payloads sent / delivered / lost",
         f"{_fmt(res['genuine_sent'])} / {_fmt(res['genuine_delivered'])} / {_fmt(res['genuine_lost'])}"
         + (f" (first missing {res['genuine_missing_first'][:8]})" if res["genuine_lost"] else "")),
        ("genuine latency median / p99 / max", (f"{lat['median']} / {lat['p99']} / {lat['max']} ms "
                                                f"({_fmt(res['genuine_out_of_order'])} delivered out of order)")),
        ("genuine heartbeats sent / delivered",
         f"{_fmt(res['genuine_heartbeats_sent'])} / {_fmt(res['genuine_heartbeats_delivered'])}"),
        ("** FORGED DELIVERED **", f"{_fmt(res['forged_delivered'])} {res['forged_delivered_by_kind']}"),
        ("** DUPLICATES DELIVERED **", (f"{_fmt(res['duplicates_delivered'])} (replays captured: "
                                        f"{_fmt(res.get('replay_captured'))})")),
        ("unsigned / 4 MB bulk / bloat heartbeats delivered",
         (f"{_fmt(res['unsigned_delivered'])} / {_fmt(res['bulk_payloads_delivered'])} / "
          f"{_fmt(res['bloat_heartbeats_delivered'])} (other {_fmt(res['other_delivered'])})")),
        ("session received", f"{_fmt(stats['received'])}; delivered {delivered}"),
        ("session rejected", rejected or "nothing"),
        ("session dropped / filtered / in flight",
         (f"{_fmt(stats['dropped'])} / {_fmt(stats['filtered'])} / {_fmt(stats['in_flight'])}; "
          f"missed payloads {_fmt(stats.get('missed_payloads'))}, duplicate payloads "
          f"{_fmt(stats.get('duplicate_payloads'))}, callback errors {_fmt(stats['callback_errors'])}")),
        ("CPU seconds", ", ".join(f"{k} {v}" for k, v in res["cpu_s"].items())),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"note: {n}" for n in res.get("notes", [])]
    lines += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in res["checks"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print the table, the PASS/FAIL lines and the JSON line. 0 unless the run broke."""
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="how long the traffic lasts")
    ap.add_argument("--rate", type=float, default=3000.0, help="hostile messages per second, all kinds")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--node-rate", type=float, default=200.0, help="genuine payloads per second")
    ap.add_argument("--mix", default=DEFAULT_MIX, help=f"hostile mix (default {DEFAULT_MIX})")
    ap.add_argument("--sizes", default="", help="KIND=BYTES of the large kinds (default huge_sender=1M,"
                                                "big_status=8M,big_payload=4M; --smoke: 16K,128K,64K)")
    ap.add_argument("--max-mbps", type=float, default=60.0, help="cap on hostile bytes, MB/s")
    ap.add_argument("--drain", type=float, default=30.0, help="at most this many s for the session to catch up")
    ap.add_argument("--smoke", action="store_true", help="small hostile sizes: a quick check of the harness")
    ap.add_argument("--log", default=None, help="the session's log file (default under bench/.cache/soak/)")
    ap.add_argument("--json", default=None, help="also write the result JSON to this file")
    a = ap.parse_args(argv)
    try:
        a.host, a.port = parse_broker(f"mqtt://{a.host}:{a.port}")
        parse_mix(a.mix, a.rate)
        parse_sizes(a.sizes, DEFAULT_SIZES)
    except ValueError as exc:
        ap.error(str(exc))
    if not 0 < a.seconds <= 24 * 3600:
        ap.error("--seconds must be in (0, 86400]")
    try:
        res = run(a)
    except SoakBroke as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(res, default=str)
    (DEFAULT_CACHE / "soak" / "result-latest.json").write_text(text + "\n", encoding="utf-8")
    if a.json:
        Path(a.json).write_text(text + "\n", encoding="utf-8")
    print(render(res))
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
