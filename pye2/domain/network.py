"""NetworkView: which nodes exist, which are online, what pipelines they hold.

Pure: fed decoded events with an explicit ``now`` (seconds, the session's
clock). A node is known by its alias (``EE_ID``) and, when the message was
signed, its address (``EE_SENDER``); either finds it. Memory per node is kept
small on purpose (no full heartbeat is stored; callers that want it get it in
the heartbeat callback).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ONLINE_TIMEOUT", "NetworkView", "NodeRecord"]

#: seconds without any message after which a node counts as offline (spec 3)
DEFAULT_ONLINE_TIMEOUT = 60.0


@dataclass(slots=True)
class NodeRecord:
    """What the session remembers of one node."""

    alias: str
    address: str | None = None
    last_seen: float = float("-inf")
    last_heartbeat: float = float("-inf")
    pipelines: dict[str, dict[str, Any]] | None = None
    """Pipeline name -> stored config from the last heartbeat that listed them (None: never listed)."""
    whitelist: tuple[str, ...] = ()
    secured: bool | None = None
    status: str | None = None
    heartbeats: int = 0
    messages: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class NetworkView:
    """Online tracking per spec section 3, from the session's clock.

    Args:
        online_timeout: seconds after the last message before a node is offline.
    """

    def __init__(self, online_timeout: float = DEFAULT_ONLINE_TIMEOUT) -> None:
        if online_timeout <= 0:
            raise ValueError("online_timeout must be positive")
        self.online_timeout = float(online_timeout)
        self._by_alias: dict[str, NodeRecord] = {}
        self._by_address: dict[str, NodeRecord] = {}

    # -- feeding ---------------------------------------------------------------
    def _record(self, alias: str, address: str | None) -> NodeRecord:
        rec = self._by_alias.get(alias)
        if rec is None and address is not None:
            rec = self._by_address.get(address)
            if rec is not None and rec.alias != alias:  # node renamed itself: re-key the alias
                self._by_alias.pop(rec.alias, None)
                rec.alias = alias
                self._by_alias[alias] = rec
        if rec is None:
            rec = NodeRecord(alias=alias, address=address)
            self._by_alias[alias] = rec
        if address is not None and rec.address != address:
            if rec.address is not None:
                self._by_address.pop(rec.address, None)
            rec.address = address
        if address is not None:
            self._by_address[address] = rec
        return rec

    def seen(self, alias: str, address: str | None, now: float) -> NodeRecord:
        """Any accepted message from the node (heartbeat, payload, notification)."""
        rec = self._record(alias, address)
        rec.last_seen = max(rec.last_seen, now)
        rec.messages += 1
        return rec

    def heartbeat(
        self,
        alias: str,
        address: str | None,
        now: float,
        *,
        pipelines: Iterable[Mapping[str, Any]] | None,
        whitelist: Iterable[str] = (),
        secured: bool | None = None,
        status: str | None = None,
    ) -> NodeRecord:
        """An accepted heartbeat; ``pipelines`` is its CONFIG_STREAMS (None if absent)."""
        rec = self.seen(alias, address, now)
        rec.last_heartbeat = now
        rec.heartbeats += 1
        if pipelines is not None:
            rec.pipelines = {str(cfg.get("NAME")): dict(cfg) for cfg in pipelines if isinstance(cfg, Mapping)}
        rec.whitelist = tuple(whitelist)
        rec.secured = secured
        rec.status = status
        return rec

    def forget(self, node: str) -> None:
        """Drop everything known about a node (by alias or address)."""
        rec = self.find(node)
        if rec is not None:
            self._by_alias.pop(rec.alias, None)
            if rec.address is not None:
                self._by_address.pop(rec.address, None)

    # -- queries ---------------------------------------------------------------
    def find(self, node: str) -> NodeRecord | None:
        """The record for an alias or an address."""
        return self._by_alias.get(node) or self._by_address.get(node)

    def is_online(self, node: str, now: float) -> bool:
        rec = self.find(node)
        return rec is not None and now - rec.last_seen < self.online_timeout

    def online(self, now: float) -> list[str]:
        """Aliases of the nodes seen less than ``online_timeout`` ago, sorted."""
        return sorted(a for a, rec in self._by_alias.items() if now - rec.last_seen < self.online_timeout)

    def known(self) -> list[str]:
        return sorted(self._by_alias)

    def pipelines(self, node: str, now: float) -> dict[str, dict[str, Any]] | None:
        """The node's pipelines from its last listing, or None if offline/unknown."""
        rec = self.find(node)
        if rec is None or now - rec.last_seen >= self.online_timeout:
            return None
        return rec.pipelines

    def __len__(self) -> int:
        return len(self._by_alias)
