"""``pye2 sim``: host simulated nodes on a real broker until interrupted.

The command-line wiring lives in ``pye2.cli``; this module provides the two
pieces it needs::

    add_sim_arguments(parser)   # the options below
    run_sim(args) -> exit code  # 0 after Ctrl-C (or SIGTERM); 1 when the broker cannot be reached; 2 for bad options

Options: ``--broker URL`` (required), ``--root TOPIC`` (a private topic root:
how people share a broker), ``--nodes N|name,name``, ``--profile``,
``--heartbeat-interval``, ``--allow ADDRESS`` (repeatable), ``--allow-file
PATH`` (one address a line, optional alias after it, ``#`` comments; re-read
when it changes, as a real node re-reads its ``authorized_addrs``; looked at
every ``--allow-file-poll`` seconds),
``--allow-any`` (anyone on the broker may command the nodes: a warning banner
says so), ``--seed N`` (deterministic keys: for tests, not secret) or
``--state DIR`` (random keys kept there, so the nodes keep their addresses
across restarts, as real nodes do), ``--eth/--no-eth`` (the nodes' signing mode).
Without ``--allow``/``--allow-file``/``--allow-any`` the nodes take commands
only from each other.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from pye2.cli_signals import sigterm_stops
from pye2.domain.urls import mask_url
from pye2.errors import ConfigError, IdentityError, Pye2Error

__all__ = ["add_sim_arguments", "load_state_keys", "run_sim"]

log = logging.getLogger(__name__)

#: seconds between looks at ``--allow-file``
ALLOW_FILE_POLL = 1.0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _nodes(text: str) -> int | list[str]:
    """A count, or comma-separated node names."""
    if text.strip().isdigit():
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError("must be at least 1")
        return value
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or any(c in n for n in names for c in "/+# "):
        raise argparse.ArgumentTypeError(f"not a count or a list of node names: {text!r}")
    return names


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sim`` options to ``parser``."""
    parser.add_argument("--broker", required=True,
                        help="broker URL the nodes connect to, e.g. mqtt://127.0.0.1:1883 or amqp://guest:guest@host/")
    parser.add_argument("--root", default=None, help="topic root (default: the profile's; use a private one "
                                                     "on a shared broker)")
    parser.add_argument("--nodes", type=_nodes, default=3, help="how many nodes, or their names a,b,c (default 3)")
    parser.add_argument("--profile", choices=("aixp", "ratio1"), default="aixp", help="wire profile (default aixp)")
    parser.add_argument("--heartbeat-interval", type=_positive_float, default=10.0, dest="heartbeat_interval",
                        help="seconds between heartbeats (default 10)")
    parser.add_argument("--allow", action="append", default=[], metavar="ADDRESS",
                        help="an address the nodes take commands from (repeatable)")
    parser.add_argument("--allow-file", type=Path, default=None, dest="allow_file", metavar="PATH",
                        help="addresses the nodes take commands from, one a line (re-read when it changes)")
    parser.add_argument("--allow-file-poll", type=_positive_float, default=ALLOW_FILE_POLL, dest="allow_file_poll",
                        metavar="SECONDS", help=f"seconds between looks at --allow-file (default {ALLOW_FILE_POLL:g})")
    parser.add_argument("--allow-any", action="store_true", dest="allow_any",
                        help="take commands from anyone on the broker (prints a warning)")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--seed", type=int, default=None,
                      help="derive the node keys from this seed (for tests: anyone can compute them)")
    keys.add_argument("--state", type=Path, default=None,
                      help="folder that keeps the nodes' random keys across restarts")
    parser.add_argument("--eth", action=argparse.BooleanOptionalAction, default=None,
                        help="the nodes' signing mode (default: the profile's; a real node's default is --no-eth)")


def load_state_keys(folder: Path, node_ids: list[str]) -> dict[str, Any]:
    """Each node's key from ``folder/<node>.pem``, created (mode 0600) the first time.

    Raises:
        ConfigError: the folder cannot be made or a key cannot be read or written.
    """
    from pye2.wire import Identity

    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"--state {folder}: {exc.strerror or exc}") from None
    keys: dict[str, Any] = {}
    for node_id in node_ids:
        path = folder / f"{node_id}.pem"
        try:
            keys[node_id] = Identity.load(path) if path.exists() else _new_key(path)
        except IdentityError as exc:
            raise ConfigError(f"--state: {exc}") from None
    return keys


def _new_key(path: Path) -> Any:
    from pye2.wire import Identity

    identity = Identity.generate()
    identity.save(path)
    return identity


def _read_allow_file(path: Path) -> list[str]:
    from pye2_transport_memory.node._allow import parse_allow_text

    try:
        return parse_allow_text(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"--allow-file {path}: {exc.strerror or exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"--allow-file {path}: {exc}") from None


def _watch_allow_file(network: Any, path: Path, fixed: list[str], stop: threading.Event, out: TextIO,
                      poll: float = ALLOW_FILE_POLL) -> None:
    """Re-read ``path`` when its size or modification time changes; apply it with the fixed ``--allow`` ones."""
    def stamp() -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    last = stamp()
    while not stop.wait(poll):
        now = stamp()
        if now == last:
            continue
        last = now
        try:
            addresses = _read_allow_file(path)
            network.set_allow_list([*fixed, *addresses])
        except (ConfigError, Pye2Error) as exc:
            print(f"warning: {exc} (the allow-list is unchanged)", file=out, flush=True)
            continue
        print(f"allow-list reloaded from {path}: {len(fixed) + len(addresses)} address(es)", file=out, flush=True)


def run_sim(args: argparse.Namespace, *, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Start the nodes on ``args.broker``, print who they are and who may command them, run until interrupted.

    ``stop`` ends the run when set (tests, embedding); without it only Ctrl-C does.
    Returns the process exit code.
    """
    from pye2.domain.profiles import get_profile
    from pye2_transport_memory.network import SimulatedNetwork, node_ids

    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else threading.Event()
    allow_file: Path | None = getattr(args, "allow_file", None)
    fixed: list[str] = list(getattr(args, "allow", []) or [])
    allow_any = bool(getattr(args, "allow_any", False))
    seed, state = getattr(args, "seed", None), getattr(args, "state", None)
    try:
        profile = get_profile(args.profile.upper())
        root = getattr(args, "root", None)
        if root:
            profile = profile.with_root(root)
        ids = node_ids(args.nodes)
        identities = load_state_keys(state, ids) if state is not None else (
            None if seed is not None else {i: _fresh() for i in ids})
        allowed = [*fixed, *(_read_allow_file(allow_file) if allow_file is not None else [])]
        if allow_any and allowed:
            raise ConfigError("--allow-any opens the nodes to everyone: it does not go with --allow/--allow-file")
        network = SimulatedNetwork(ids, seed=seed if seed is not None else 0, profile=profile, broker=args.broker,
                                   heartbeat_interval=args.heartbeat_interval, identities=identities,
                                   allow_any=allow_any, eth_enabled=getattr(args, "eth", None))
        if allowed:
            network.set_allow_list(allowed)
    except ConfigError as exc:  # a bad option, file or key
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Pye2Error as exc:  # no transport for that broker URL
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with sigterm_stops():
            try:
                network.start()
            except Pye2Error as exc:
                print(f"error: cannot start the simulated nodes on {mask_url(args.broker)}: {exc}", file=sys.stderr)
                return 1
            _print_summary(network, args, profile.root, allowed, allow_any, seed, state, out)
            if allow_file is not None:
                poll = float(getattr(args, "allow_file_poll", ALLOW_FILE_POLL))
                threading.Thread(target=_watch_allow_file, args=(network, allow_file, fixed, stop, out, poll),
                                 name="pye2-sim-allow-file", daemon=True).start()
            stop.wait()
            print("stopping", file=out, flush=True)
    except KeyboardInterrupt:  # Ctrl-C, while running or still connecting
        print("stopping", file=out, flush=True)
    finally:
        stop.set()
        network.stop()
    return 0


def _fresh() -> Any:
    from pye2.wire import Identity

    return Identity.generate()


def _print_summary(network: Any, args: argparse.Namespace, root: str, allowed: list[str], allow_any: bool,
                   seed: int | None, state: Path | None, out: TextIO) -> None:
    if allow_any:
        print("!" * 78 + "\n!! --allow-any: ANYONE on this broker can command these nodes and run code on this\n"
              "!! machine (inside the simulator's sandbox). Use --allow ADDRESS on a shared broker.\n" + "!" * 78,
              file=out)
    keys = (f"derived from --seed {seed} (for tests: not secret)" if seed is not None else
            f"kept in {state}" if state is not None else "random, new at every start (--state DIR keeps them)")
    print(f"{len(network.nodes)} simulated node(s) on {mask_url(args.broker)}, root topic {root!r} "
          f"({network.profile.name}); keys {keys}; Ctrl-C stops", file=out)
    for node_id, address in network.addresses.items():
        print(f"  {node_id}  {address}", file=out)
    if allow_any:
        print("allow-list: anyone (--allow-any)", file=out)
    elif allowed:
        print(f"allow-list ({len(allowed)}): " + ", ".join(allowed), file=out)
    else:
        print("allow-list: only these nodes themselves (add clients with --allow ADDRESS or --allow-file PATH)",
              file=out)
    allow_file: Path | None = getattr(args, "allow_file", None)
    if allow_file is not None:
        print(f"allow-file: {allow_file} (re-read when it changes)", file=out)
    out.flush()

