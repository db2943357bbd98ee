"""``pye2 pipelines NODE``: the node's pipelines and their plugin instances, from its heartbeats.

Text: one row per instance (a pipeline without instances has one row of its own).
``--json``: one object per pipeline: ``node``, ``pipeline``, ``type``, ``instances``
(``signature`` and ``instance_id`` each).
"""

from __future__ import annotations

import argparse
from typing import Any

from pye2.cli_net._common import command, connect, wait_for_heartbeat
from pye2.cli_net._options import CliFailure, Connection, add_connection_options
from pye2.cli_net._output import Output, safe

__all__ = ["add_arguments", "pipeline_records", "run"]

HELP = "list a node's pipelines and plugin instances (from its heartbeats)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="node name or address")
    add_connection_options(parser, timeout=30.0, timeout_help="seconds to wait for the node's heartbeat")


def pipeline_records(node: str, pipelines: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON form of a node's pipelines (sorted by name)."""
    records = []
    for name in sorted(pipelines):
        config = pipelines[name]
        instances = []
        plugins = config.get("PLUGINS")
        for plugin in plugins if isinstance(plugins, list) else []:
            if not isinstance(plugin, dict):
                continue
            signature = plugin.get("SIGNATURE")
            items = plugin.get("INSTANCES")
            for inst in items if isinstance(items, list) else []:
                if isinstance(inst, dict):
                    instances.append({"signature": signature, "instance_id": inst.get("INSTANCE_ID")})
        records.append({"node": node, "pipeline": name, "type": config.get("TYPE"), "instances": instances})
    return records


@command
def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    session = conn.session()
    try:
        connect(session, conn, out)
        record = wait_for_heartbeat(session, args.node, args.timeout, out, conn)
        if record.status_error:
            raise CliFailure(f"node {args.node}'s last heartbeat could not be read: {safe(record.status_error)}")
        records = pipeline_records(record.alias, record.pipelines or {})
        if out.json:
            for item in records:
                out.record(item)
            return 0
        rows = []
        for item in records:
            name, kind = safe(item["pipeline"], 60), safe(item["type"] or "?", 30)
            if not item["instances"]:
                rows.append([name, kind, "-", "-"])
            for inst in item["instances"]:
                rows.append([name, kind, safe(inst["signature"], 40), safe(inst["instance_id"], 60)])
        title = (f"node {safe(record.alias, 60)} ({record.address}): {len(records)} pipeline(s), "
                 f"{sum(len(i['instances']) for i in records)} instance(s)")
        out.table(("PIPELINE", "TYPE", "SIGNATURE", "INSTANCE"), rows, title=title)
        return 0
    finally:
        session.close()
