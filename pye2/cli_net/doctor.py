"""``pye2 doctor``: what is wrong between this machine and the network, and how to fix it.

Checks, in order: the broker (configured, reachable, accepts our credentials,
connect time and a publish/receive round trip), the identity file (exists, mode
0600, loads), every node heard while listening (online, takes this identity's
commands, signing mode, clock skew against this machine) and the messages the
session rejected meanwhile, with their reasons. Each check prints ``ok``, ``warn``
or ``FAIL`` and, when not ok, a ``fix:`` line. Exit 1 when any check failed.
``--json``: one object per check (``check``, ``status``, ``detail``, ``fix``), then a summary.
"""

from __future__ import annotations

import argparse
import os
import socket
import stat
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pye2.cli_net._common import FactsCollector, allows, command, listen
from pye2.cli_net._options import Connection, add_connection_options, positive_float
from pye2.cli_net._output import Output, safe
from pye2.errors import ConfigError, IdentityError, Pye2Error, TransportError

__all__ = ["REJECTION_HINTS", "Finding", "add_arguments", "run"]

HELP = "check the broker, the identity file and the nodes; say what is wrong and how to fix it"
#: clock skew (s) above which a node's confirmations are ignored (the Session's default max_clock_skew)
MAX_SKEW = 120.0
#: what a rejection reason usually means, and what to do
REJECTION_HINTS = {
    "signature": "a signature did not verify: tampered or forged traffic on the broker, or a sender whose signing "
                 "mode this session does not know; find the sender and check it",
    "replay": "copies of messages already received (a broker re-delivering, or someone replaying captures); "
              "harmless unless frequent",
    "impostor": "a sender used a node name bound to another address: a node that changed its key "
                "(pin it again: session.pin_node / forget_node) or an impostor",
    "malformed": "messages that do not parse: a client or node speaking another protocol version on this root",
    "too_large": "messages over the size limit",
    "bomb": "heartbeats whose status inflates past the size cap (a hostile or broken node)",
    "decrypt": "encrypted messages for this identity that could not be decrypted",
    "not_for_us": "encrypted messages for other receivers (normal on a shared RATIO1 network)",
    "unknown_formatter": "payloads in a format no installed formatter reads: install the plugin that provides it",
    "invalid": "messages refused as invalid",
    "internal": "messages the decoder failed on (a pye2 bug: please report it with -v output)",
}
_HARMLESS = {"not_for_us", "replay"}


@dataclass
class Finding:
    check: str
    status: str  # ok / warn / fail
    detail: str
    fix: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--wait", type=positive_float, default=12.0, metavar="SECONDS",
                        help="how long to listen for the nodes (default 12: nodes send a heartbeat every 10 s)")


class Report:
    def __init__(self, out: Output) -> None:
        self.out = out
        self.findings: list[Finding] = []

    def add(self, check: str, status: str, detail: str, fix: str | None = None) -> None:
        finding = Finding(check, status, detail, fix)
        self.findings.append(finding)
        if self.out.json:
            self.out.record({"check": check, "status": status, "detail": detail, "fix": fix})
            return
        mark = {"ok": "ok", "warn": "warn", "fail": "FAIL"}[status]
        style = {"ok": "green", "warn": "yellow", "fail": "bold red"}[status]
        self.out.line(f"{mark:<5} {check:<11} {detail}", style=style)
        if fix:
            self.out.line(f"{'':<5} {'':<11} fix: {fix}")

    def finish(self) -> int:
        counts = Counter(f.status for f in self.findings)
        problems, warnings = counts.get("fail", 0), counts.get("warn", 0)
        if self.out.json:
            self.out.record({"summary": {"problems": problems, "warnings": warnings, "checks": len(self.findings)}})
        else:
            self.out.line(f"{problems} problem(s), {warnings} warning(s) in {len(self.findings)} check(s)",
                          style="bold red" if problems else "bold green")
        return 1 if problems else 0


def _check_identity(conn: Connection, report: Report) -> Any:
    """The identity to use (the file's, else a throw-away one)."""
    from pye2.wire import Identity

    path = conn.identity_path
    if not path.exists():
        if conn.identity_explicit:
            report.add("identity", "fail", f"{path} does not exist", f"pye2 keys new --out {path}")
        else:
            report.add("identity", "warn", f"{path} does not exist yet: the first command makes it",
                       "or choose one: pye2 keys new --out PATH, then --identity PATH (or PYE2_IDENTITY)")
        return Identity.generate()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        report.add("identity", "fail", f"{path}: {exc.strerror or exc}", "check the path and its folder's permissions")
        return Identity.generate()
    if os.name == "posix" and mode & 0o077:
        report.add("identity", "fail", f"{path} can be read by other users (mode {mode:04o})", f"chmod 600 {path}")
        return Identity.generate()
    try:
        identity = Identity.load(path)
    except IdentityError as exc:
        report.add("identity", "fail", f"{path}: {exc}", f"make a new one: pye2 keys new --out {path}")
        return Identity.generate()
    report.add("identity", "ok", f"{path} (mode {mode:04o}) loads")
    return identity


def _tcp(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    defaults = {"mqtt": 1883, "mqtts": 8883, "amqp": 5672, "amqps": 5671}
    if parts.scheme not in defaults or not parts.hostname:
        return None
    try:
        port = parts.port or defaults[parts.scheme]
    except ValueError:
        return None
    return parts.hostname, port


def _check_reachable(conn: Connection, report: Report) -> bool:
    try:
        url = conn.settings.transport_url()
    except ConfigError as exc:
        report.add("broker", "fail", str(exc), "pass --broker URL, or set PYE2_TRANSPORT (environment or .env)")
        return False
    if url is None:
        report.add("broker", "fail", "no broker configured",
                   "pass --broker mqtt://HOST:1883, or set PYE2_TRANSPORT / PYE2_HOST (environment or .env)")
        return False
    target = _tcp(url)
    if target is None:
        return True
    started = time.monotonic()
    try:
        with socket.create_connection(target, timeout=5):
            pass
    except OSError as exc:
        report.add("broker", "fail", f"cannot reach {target[0]}:{target[1]} ({conn.broker}): {exc.strerror or exc}",
                   "start the broker, or fix the host and port (--broker, PYE2_TRANSPORT / PYE2_HOST / PYE2_PORT)")
        return False
    report.add("broker", "ok", f"{target[0]}:{target[1]} reachable (TCP connect {_ms(time.monotonic() - started)})")
    return True


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _round_trip(session: Any) -> float | None:
    """Seconds for a message of ours to come back through the broker (None if it did not in 5 s)."""
    transport = session.transport
    address = f"{session.profile.root}/pye2-doctor/{uuid.uuid4().hex[:12]}"
    arrived = threading.Event()
    try:
        sub = transport.subscribe(address, lambda _delivery: arrived.set())
        try:
            started = time.monotonic()
            transport.publish(address, b"{}")
            if not arrived.wait(5.0):
                return None
            return time.monotonic() - started
        finally:
            sub.cancel()
    except Pye2Error:
        return None


def _check_nodes(session: Any, facts: FactsCollector, report: Report, wait: float, conn: Connection) -> None:
    records = sorted(session.network.records(), key=lambda r: r.alias)
    if not records:
        report.add("nodes", "fail", f"no node heard in {wait:g} s on root {session.profile.root!r} "
                                    f"({session.profile.name} profile)",
                   "check --root and --profile (PYE2_ROOT / PYE2_PROFILE) against the nodes' settings; "
                   "listen longer with --wait")
        return
    me = session.address
    now = session.clock.time()
    for rec in records:
        name = f"{safe(rec.alias, 40)} ({rec.address})"
        age = now - rec.last_seen
        if age >= session.online_timeout:
            report.add("node", "fail", f"{name}: offline, last heard {age:.0f} s ago", "check that the node runs")
            continue
        problems: list[tuple[str, str]] = []
        parts = ["online"]
        allowed = allows(session, rec)
        if allowed is None:
            parts.append("no heartbeat yet")
        elif rec.secured is not True:
            parts.append("takes commands from anyone (not SECURED)")
        elif allowed:
            parts.append("allow-lists this identity")
        else:
            problems.append((f"does not allow-list this identity {me}",
                             f"ask its operator to add {me} to the node's authorized_addrs (pye2 sim: --allow {me})"))
        if rec.eth is not None:
            parts.append("signs in ETH mode" if rec.eth else "signs without ETH")
            if session.eth is not None and session.eth != rec.eth:
                mine = "for" if session.eth else "without"
                theirs = "uses" if rec.eth else "does not use"
                problems.append((f"this session signs {mine} ETH mode (PYE2_ETH) but the node {theirs} it",
                                 "unset PYE2_ETH (auto follows each node)"))
        skew = facts.of(rec).skew
        if skew is not None:
            parts.append(f"clock skew {skew:+.1f} s")
            if abs(skew) > MAX_SKEW:
                problems.append((f"its clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} this machine",
                                 f"sync the clocks (NTP): answers older than {MAX_SKEW:g} s are ignored"))
        if rec.status_error:
            problems.append((f"its heartbeat status does not read: {safe(rec.status_error)}",
                             "a broken or hostile node: check its version"))
        detail = f"{name}: " + ", ".join(parts)
        if problems:
            report.add("node", "fail", detail + "; " + "; ".join(p for p, _ in problems),
                       "; ".join(f for _, f in problems))
        else:
            report.add("node", "ok", detail)


def _check_rejections(session: Any, report: Report) -> None:
    counts = session.stats.as_dict()["rejected"]
    if not counts:
        report.add("rejections", "ok", f"none among {session.stats.received} message(s) received")
        return
    recent = list(session.stats.recent_rejections)
    for reason, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        samples = [r for r in recent if r.reason == reason]
        senders = Counter(r.sender or "unknown sender" for r in samples)
        last = samples[-1] if samples else None
        detail = f"{count} {reason}"
        if senders:
            detail += " from " + ", ".join(f"{safe(s, 60)} ({n})" for s, n in senders.most_common(3))
        if last is not None and last.detail:
            detail += f"; last: {safe(last.detail, 120)}"
        status = "ok" if reason in _HARMLESS else "warn"
        report.add("rejections", status, detail, None if status == "ok" else REJECTION_HINTS.get(reason))


@command
def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    report = Report(out)
    identity = _check_identity(conn, report)
    if not _check_reachable(conn, report):
        return report.finish()
    facts = FactsCollector()
    session = conn.session(identity=identity, on_heartbeat=facts)
    try:
        started = time.monotonic()
        try:
            with out.progress(f"connecting to {conn.broker}"):
                session.connect()
        except TransportError as exc:
            report.add("broker", "fail", f"{conn.broker} refused us: {conn.scrub(' '.join(str(exc).split()))}",
                       "check the user name and password (--broker scheme://USER:PASS@host, PYE2_USER / PYE2_PASS)"
                       " and that this user may read and write the root topic")
            return report.finish()
        took = time.monotonic() - started
        trip = _round_trip(session)
        report.add("broker", "ok" if trip is not None else "warn",
                   f"{conn.broker}: connected in {_ms(took)}; "
                   + (f"round trip {_ms(trip)}" if trip is not None else "a test message did not come back in 5 s"),
                   None if trip is not None else "check the user's permissions on the root topic")
        report.add("address", "ok", f"this session's address (what nodes allow-list): {session.address}")
        listen(session, args.wait, out)
        _check_nodes(session, facts, report, args.wait, conn)
        _check_rejections(session, report)
        return report.finish()
    finally:
        session.close()
