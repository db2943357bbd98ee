"""``pye2 sim``: host simulated nodes on a real broker until interrupted.

The command-line wiring lives in ``pye2.cli``; this module provides the two
pieces it needs::

    add_sim_arguments(parser)   # --nodes N --broker URL [--profile aixp|ratio1] [--heartbeat-interval S] [--seed N]
    run_sim(args) -> exit code  # 0 after Ctrl-C, 1 when the broker cannot be reached
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TextIO

from pye2.errors import Pye2Error

__all__ = ["add_sim_arguments", "run_sim"]

log = logging.getLogger(__name__)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sim`` options to ``parser``."""
    parser.add_argument("--nodes", type=_positive_int, default=3, help="number of simulated nodes (default 3)")
    parser.add_argument("--broker", required=True,
                        help="broker URL the nodes connect to, e.g. mqtt://127.0.0.1:1883 or amqp://guest:guest@host/")
    parser.add_argument("--profile", choices=("aixp", "ratio1"), default="aixp", help="wire profile (default aixp)")
    parser.add_argument("--heartbeat-interval", type=_positive_float, default=10.0, dest="heartbeat_interval",
                        help="seconds between heartbeats (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the node keys (same seed, same addresses)")


def run_sim(args: argparse.Namespace, *, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Start the nodes on ``args.broker``, print their ids and addresses, run until interrupted.

    ``stop`` ends the run when set (tests, embedding); without it only Ctrl-C does.
    Returns the process exit code.
    """
    from pye2_transport_memory.network import SimulatedNetwork

    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else threading.Event()
    try:
        network = SimulatedNetwork(args.nodes, seed=args.seed, profile=args.profile.upper(), broker=args.broker,
                                   heartbeat_interval=args.heartbeat_interval)
    except Pye2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        network.start()
    except Pye2Error as exc:
        network.stop()
        print(f"error: cannot start the simulated nodes on {args.broker}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"{len(network.nodes)} simulated node(s) on {args.broker} ({network.profile.name}); Ctrl-C stops",
              file=out)
        for node_id, address in network.addresses.items():
            print(f"  {node_id}  {address}", file=out)
        out.flush()
        try:
            stop.wait()
        except KeyboardInterrupt:
            print("stopping", file=out)
        return 0
    finally:
        network.stop()
