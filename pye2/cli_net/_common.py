"""What every network command shares: the error wrapper, connecting, waiting for a node, node facts."""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pye2.cli_net._options import CliFailure, Connection, connection, explain
from pye2.cli_net._output import Output, safe
from pye2.cli_signals import sigterm_stops
from pye2.domain.keys import same_address
from pye2.domain.messages import node_time
from pye2.errors import ConfigError, Pye2Error, TransportError

__all__ = ["FactsCollector", "NodeFacts", "allows", "check_allowed", "command", "connect", "heard", "listen", "sigterm_stops", "wait_for_heartbeat", "wait_for_node"]

log = logging.getLogger(__name__)

Body = Callable[[argparse.Namespace, Connection, Output], int]


def command(body: Body) -> Callable[[argparse.Namespace], int]:
    """Run ``body`` with its connection and printer; any failure becomes one ``error:`` line and exit 1
    (2 for bad settings, 130 for Ctrl-C). A password never shows."""
    @functools.wraps(body)
    def run(args: argparse.Namespace) -> int:
        out = Output(bool(getattr(args, "json", False)))
        conn: Connection | None = None
        verbose = bool(getattr(args, "verbose", False))
        if not verbose:  # the command reports what matters itself; the SDK's warnings would be noise on stderr
            quiet = logging.getLogger("pye2")
            if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
                quiet.addHandler(logging.NullHandler())
        try:
            conn = connection(args)
            conn.verbose = verbose
            return body(args, conn, out)
        except CliFailure as exc:
            out.error(explain(exc, conn))
            return exc.code
        except ConfigError as exc:
            out.error(explain(exc, conn))
            return 2
        except Pye2Error as exc:
            out.error(explain(exc, conn))
            return 1
        except KeyboardInterrupt:
            return 130
        except Exception as exc:  # a bug: still one line (the traceback with -v)
            log.debug("unexpected failure", exc_info=True)
            out.error(explain(exc, conn) + f" ({type(exc).__name__}; run with -v for details)")
            return 1

    return run


def connect(session: Any, conn: Connection, out: Output) -> None:
    """Connect ``session`` (with a spinner).

    Raises:
        CliFailure: the broker cannot be reached or refuses us.
    """
    try:
        configured = conn.settings.transport_url() is not None
    except ConfigError as exc:
        raise CliFailure(str(exc), 2) from None
    if not configured:
        raise CliFailure("no broker configured: pass --broker URL, or set PYE2_TRANSPORT (or PYE2_HOST) in the "
                         "environment or .env", 2)
    with out.progress(f"connecting to {conn.broker}"):
        try:
            session.connect()
        except TransportError as exc:
            text = conn.scrub(str(exc))
            raise CliFailure(text if conn.broker in text else f"cannot connect to the broker at {conn.broker}: {text}"
                             ) from None


def heard(session: Any) -> list[str]:
    """Names of the nodes heard so far."""
    return sorted({rec.alias for rec in session.network.records()})


def wait_for_node(session: Any, node: str, timeout: float, out: Output, conn: Connection) -> None:
    """Wait until ``node`` (a name or an address) is heard.

    Raises:
        CliFailure: not heard within ``timeout`` (the message names the nodes that were).
    """
    with out.progress(f"waiting for node {node} (up to {timeout:g} s)"):
        if session.wait_for_node(node, timeout):
            return
    names = heard(session)
    where = f"root topic {session.profile.root!r}, {session.profile.name} profile"
    others = (f"nodes heard: {', '.join(safe(n, 60) for n in names)}" if names else
              f"no node heard at all on {conn.broker} ({where}): check --broker, --root and --profile")
    raise CliFailure(f"node {node} not heard within {timeout:g} s ({others})")


def allows(session: Any, record: Any) -> bool | None:
    """Whether a node takes this session's commands: True (listed, or open to anyone), False (SECURED and
    not listed), None (no heartbeat yet). A real node writes its allow-list without the address prefix."""
    if record.heartbeats == 0:
        return None
    if record.secured is not True:
        return True
    mine = session.address
    body = session.profile.strip_prefix(mine) or mine
    return any(entry == body or same_address(entry, mine) for entry in record.whitelist)


@dataclass
class NodeFacts:
    """What a node's last heartbeat said beyond what the session's record keeps."""

    version: str | None = None
    cpu: float | None = None
    memory_total: float | None = None
    memory_free: float | None = None
    skew: float | None = None  # local time minus the node's time, seconds


class FactsCollector:
    """A heartbeat callback keeping :class:`NodeFacts` per node address (or name)."""

    def __init__(self) -> None:
        self.facts: dict[str, NodeFacts] = {}

    def __call__(self, _session: Any, e2id: str, data: Any) -> None:
        received = time.time()
        key = data.get("EE_SENDER") if isinstance(data.get("EE_SENDER"), str) else e2id
        stamp = node_time(data.get("EE_TIMESTAMP"), data.get("EE_TIMEZONE"))
        version = data.get("VERSION") or data.get("EE_VERSION")
        self.facts[str(key)] = NodeFacts(
            version=str(version).split(" | ")[0] if version is not None else None,
            cpu=_number(data.get("CPU_USED")),
            memory_total=_number(data.get("MACHINE_MEMORY")),
            memory_free=_number(data.get("AVAILABLE_MEMORY")),
            skew=None if stamp is None else received - stamp,
        )

    def of(self, record: Any) -> NodeFacts:
        return self.facts.get(record.address or "") or self.facts.get(record.alias) or NodeFacts()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def listen(session: Any, seconds: float, out: Output, what: str = "listening for heartbeats") -> None:
    """Let ``seconds`` pass while messages arrive, the spinner counting the nodes heard."""
    deadline = time.monotonic() + seconds
    with out.progress(f"{what} ({seconds:g} s)") as bar:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            count = len(session.network.records())
            bar.update(f"{what}: {count} node(s) heard, {left:.0f} s left")
            session.wait(lambda known=count: len(session.network.records()) != known, min(left, 1.0))


def check_allowed(session: Any, node: str) -> None:
    """Refuse at once to command a node whose last heartbeat says it ignores this identity.

    Raises:
        NotAllowed: the node is SECURED and does not list this session's address.
    """
    from pye2.errors import NotAllowed

    record = session.directory.find(node)
    if record is None or allows(session, record) is not False:
        return
    me = session.address
    raise NotAllowed(f"node {safe(record.alias, 60)} ({record.address}) is SECURED and its allow-list does not "
                     f"list this identity {me}: it ignores our commands. Its operator adds the address to the "
                     f"node's authorized_addrs file (pye2 sim: --allow {me})", node=record.address, address=me)


def wait_for_heartbeat(session: Any, node: str, timeout: float, out: Output, conn: Connection) -> Any:
    """Wait until ``node`` is heard and has sent a heartbeat (its pipelines and allow-list); its record.

    Raises:
        CliFailure: not heard within ``timeout``.
    """
    started = time.monotonic()
    wait_for_node(session, node, timeout, out, conn)
    record = session.directory.find(node)
    left = max(0.0, timeout - (time.monotonic() - started))
    with out.progress(f"waiting for a heartbeat of {node}"):
        if record is None or not session.wait(lambda: record.heartbeats > 0, left):
            raise CliFailure(f"node {node} sent no heartbeat within {timeout:g} s")
    return record
