"""``pye2 demo`` and ``pye2 sim``: command-line entry points of the simulator."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["demo_command", "sim_command"]

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("pye2-output"),
                        help="folder for what the demo produces (default: ./pye2-output)")
    parser.add_argument("--nodes", type=int, default=3, help="simulated nodes (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated network (default 0)")


def _demo_run(args: argparse.Namespace) -> int:
    from pye2_transport_memory.demo import run_demo

    if args.nodes < 3:
        print("the demo needs at least 3 nodes (one initiator, two workers)")
        return 2
    summary = run_demo(args.out, nodes=args.nodes, seed=args.seed)
    ok = bool(summary["nodes"]) and bool(summary["primes"]) and bool(summary["frames"])
    return 0 if ok else 1


def demo_command() -> Command:
    """The main job: the requirements document's three scenarios on a simulated network."""
    return ("run the three tutorial scenarios on an in-process simulated network", _demo_arguments, _demo_run)


def sim_command() -> Command:
    """Host simulated nodes on a real broker until interrupted."""
    from pye2_transport_memory.cli import add_sim_arguments, run_sim

    return ("host simulated nodes on a broker (mqtt://, amqp://) until interrupted", add_sim_arguments, run_sim)
