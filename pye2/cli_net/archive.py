"""``pye2 archive NODE PIPELINE``: close a pipeline on a node and wait for the node to confirm it.

Refused before sending when the node's heartbeat does not list the pipeline, or
says it does not take this identity's commands (not allow-listed).
"""

from __future__ import annotations

import argparse
import time

from pye2.cli_net._common import check_allowed, command, connect, wait_for_heartbeat
from pye2.cli_net._options import CliFailure, Connection, add_connection_options
from pye2.cli_net._output import Output, safe

__all__ = ["add_arguments", "run"]

HELP = "archive (close) a pipeline on a node and wait for the confirmation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="node name or address")
    parser.add_argument("pipeline", help="pipeline name")
    add_connection_options(parser, timeout=30.0, timeout_help="seconds to wait for the node and its confirmation")


@command
def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    session = conn.session()
    try:
        connect(session, conn, out)
        record = wait_for_heartbeat(session, args.node, args.timeout, out, conn)
        pipelines = record.pipelines or {}
        if args.pipeline not in pipelines:
            names = ", ".join(safe(n, 60) for n in sorted(pipelines)) or "none"
            raise CliFailure(f"node {args.node} has no pipeline {args.pipeline!r} (it has: {names})")
        check_allowed(session, args.node)
        started = time.monotonic()
        with out.progress(f"archiving {args.pipeline} on {args.node}"):
            session.send_command_delete_pipeline(args.node, args.pipeline).result(args.timeout)
        took = time.monotonic() - started
        if out.json:
            out.record({"node": record.alias, "address": record.address, "pipeline": args.pipeline,
                        "archived": True, "seconds": round(took, 3)})
        else:
            out.line(f"archived pipeline {args.pipeline} on {safe(record.alias, 60)} (confirmed in {took:.1f} s)")
        return 0
    finally:
        session.close()
