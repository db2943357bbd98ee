"""``pye2 nodes [--watch]``: a table of the nodes heard.

Columns: name, address, online or last seen, version, CPU and memory, pipeline count,
whether the node takes this identity's commands (``yes``: allow-listed; ``open``: not
SECURED, takes anyone's; ``no``), its signing mode (``eth``: ETH mode; ``plain``).
``--json``: one object per node (per refresh with ``--watch``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pye2.cli_net._common import FactsCollector, allows, command, connect, listen, sigterm_stops
from pye2.cli_net._options import Connection, add_connection_options, positive_float
from pye2.cli_net._output import Output, safe

__all__ = ["add_arguments", "node_rows", "run"]

HELP = "a table of the nodes heard (--watch refreshes it)"
COLUMNS = ("NODE", "ADDRESS", "STATUS", "VERSION", "CPU", "MEMORY", "PIPELINES", "ALLOWS ME", "SIGNING")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--wait", type=positive_float, default=12.0, metavar="SECONDS",
                        help="how long to listen for heartbeats first (default 12: nodes send one every 10 s)")
    parser.add_argument("--watch", action="store_true", help="keep listening and refresh the table (Ctrl-C stops)")
    parser.add_argument("--interval", type=positive_float, default=2.0, metavar="SECONDS",
                        help="seconds between refreshes with --watch (default 2)")


def allow_text(value: bool | None, secured: bool | None) -> str:
    if value is None:
        return "?"
    if secured is not True:
        return "open"
    return "yes" if value else "no"


def node_rows(session: Any, facts: FactsCollector) -> list[dict[str, Any]]:
    """One dict per node heard (sorted by name), the JSON form of a table row."""
    now = session.clock.time()
    rows = []
    for rec in sorted(session.network.records(), key=lambda r: (r.alias, r.address or "")):
        fact = facts.of(rec)
        age = max(0.0, now - rec.last_seen)
        pipelines = rec.pipelines
        rows.append({
            "node": rec.alias, "address": rec.address, "online": age < session.online_timeout,
            "last_seen_s": round(age, 1), "version": fact.version, "cpu": fact.cpu,
            "memory_total_gb": fact.memory_total, "memory_free_gb": fact.memory_free,
            "pipelines": len(pipelines) if pipelines is not None else 0,
            "secured": rec.secured, "allows_me": allows(session, rec),
            "signing": None if rec.eth is None else ("eth" if rec.eth else "plain"),
            "clock_skew_s": None if fact.skew is None else round(fact.skew, 1),
        })
    return rows


def _cells(row: dict[str, Any]) -> list[str]:
    status = "online" if row["online"] else f"last seen {row['last_seen_s']:.0f} s ago"
    total, free = row["memory_total_gb"], row["memory_free_gb"]
    memory = f"{total - free:.1f}/{total:.1f} GB" if total is not None and free is not None else "?"
    return [safe(row["node"], 40), safe(row["address"] or "?", 60), status, safe(row["version"] or "?", 20),
            "?" if row["cpu"] is None else f"{row['cpu']:.0f}%", memory, str(row["pipelines"]),
            allow_text(row["allows_me"], row["secured"]), row["signing"] or "?"]


def _table(out: Output, session: Any, rows: list[dict[str, Any]]) -> Any:
    online = sum(1 for r in rows if r["online"])
    title = (f"{len(rows)} node(s) heard, {online} online; root {session.profile.root!r}; "
             f"this identity: {session.address}")
    styles = [None if r["online"] else "dim" for r in rows]
    for i, r in enumerate(rows):
        if r["online"] and r["allows_me"] is False:
            styles[i] = "yellow"
    return out.make_table(COLUMNS, [_cells(r) for r in rows], title=title, styles=styles)


@command
def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    facts = FactsCollector()
    session = conn.session(on_heartbeat=facts)
    try:
        connect(session, conn, out)
        if not args.watch:
            listen(session, args.wait, out)
            rows = node_rows(session, facts)
            if out.json:
                for row in rows:
                    out.record(row)
            elif rows:
                out.render(_table(out, session, rows))
            else:
                out.line(f"no node heard in {args.wait:g} s on {conn.broker} (root {session.profile.root!r}, "
                         f"{session.profile.name} profile)")
            return 0
        with sigterm_stops():
            try:
                _watch(args, session, facts, out)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        session.close()


def _watch(args: argparse.Namespace, session: Any, facts: FactsCollector, out: Output) -> None:
    with out.live() as show:
        while True:
            rows = node_rows(session, facts)
            if out.json:
                stamp = round(time.time(), 3)
                for row in rows:
                    out.record({"time": stamp, **row})
            else:
                show(_table(out, session, rows))
            session.wait(lambda: False, args.interval)
