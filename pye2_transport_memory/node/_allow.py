"""Who may command a simulated node: its allow-list, as a real node's ``authorized_addrs``.

A real node accepts a command only from an address in its ``authorized_addrs``
file, or from itself (node.md section 5, step 5); it publishes the list,
prefixed, as ``EE_WHITELIST``. A simulated node does the same with an
:class:`AllowList`, which holds:

* explicit addresses (prefix-insensitive: kept as address bodies);
* optionally the network's own sessions: a set of bodies the
  :class:`~pye2_transport_memory.network.SimulatedNetwork` fills as the
  sessions it created send commands (shared by its nodes, so it grows in one
  place);
* or nothing at all: ``allow_any`` opens the node to every signed sender
  (an explicit opt-in, said in its heartbeats: ``SECURED: false`` and the
  ``EE_NT_ALLOW_ANY`` tag).

Thread-safety: replaced or grown under the network's lock or atomically (a
set's ``add`` and a reference swap); read without locks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pye2.domain.keys import address_body
from pye2.errors import ConfigError, DecodeError

__all__ = ["AllowList", "parse_allow_text"]


def _body(address: str) -> str:
    try:
        return address_body(address)
    except DecodeError as exc:
        raise ConfigError(f"not a node address: {address!r} ({exc})") from exc


def parse_allow_text(text: str) -> list[str]:
    """Addresses in an ``authorized_addrs``-style text: one a line, optional alias after a space, ``#`` comments.

    Raises:
        ConfigError: a line whose first word is not an address (names the line).
    """
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        address = line.split()[0]
        try:
            address_body(address)
        except DecodeError as exc:
            raise ConfigError(f"line {number}: not a node address: {address[:80]!r} ({exc})") from exc
        out.append(address)
    return out


class AllowList:
    """The senders a node accepts commands from (besides itself).

    Args:
        addresses: explicit addresses (any prefix).
        clients: a shared set of address bodies that grows (the network's own sessions), or None.
        allow_any: accept every signed sender.
    """

    __slots__ = ("_bodies", "_clients", "_written", "allow_any")

    def __init__(self, addresses: Iterable[str] = (), *, clients: set[str] | None = None,
                 allow_any: bool = False) -> None:
        self._bodies: tuple[str, ...] = tuple(dict.fromkeys(_body(a) for a in addresses))
        self._clients = clients
        self.allow_any = bool(allow_any)
        # entries_json's last answer: (prefix, bodies, a copy of the clients, entries, JSON)
        self._written: tuple[str, tuple[str, ...], frozenset[str], tuple[str, ...], str] | None = None

    def __repr__(self) -> str:
        if self.allow_any:
            return "<AllowList any>"
        clients = "" if self._clients is None else f" + {len(self._clients)} session(s) of the network"
        return f"<AllowList {len(self._bodies)} address(es){clients}>"

    def replace(self, addresses: Iterable[str]) -> None:
        """Allow exactly ``addresses`` from now on (besides the network's sessions, if it tracks them)."""
        self._bodies = tuple(dict.fromkeys(_body(a) for a in addresses))

    def allows(self, sender_body: str | None, own_body: str | None) -> bool:
        """True for the node itself, a listed address, one of the network's sessions, or anyone if open."""
        if self.allow_any:
            return True
        if sender_body is None:
            return False
        return (sender_body == own_body or sender_body in self._bodies
                or (self._clients is not None and sender_body in self._clients))

    def entries(self, prefix: str) -> list[str]:
        """``EE_WHITELIST``: every allowed address with ``prefix`` (empty when open), listed ones first."""
        return list(self.entries_json(prefix)[0])

    def entries_json(self, prefix: str) -> tuple[tuple[str, ...], str]:
        """:meth:`entries` (as a tuple) and its JSON as ``json.dumps`` writes the list.

        Remembered while the prefix, the listed addresses and the network's
        sessions are the same (compared by value: a heartbeat every 10 s
        then costs a set comparison instead of a sort and a JSON dump).
        """
        if self.allow_any:
            return (), "[]"
        written, bodies, clients = self._written, self._bodies, self._clients
        if written is not None and written[0] == prefix and written[1] is bodies \
                and (written[2] == clients if clients is not None else not written[2]):
            return written[3], written[4]
        snapshot = frozenset(clients) if clients is not None else frozenset()
        extra = sorted(snapshot - set(bodies)) if snapshot else []
        entries = tuple(prefix + body for body in (*bodies, *extra))
        text = json.dumps(list(entries))
        self._written = (prefix, bodies, snapshot, entries, text)
        return entries, text
