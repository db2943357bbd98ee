"""The ``sim://`` transport: a whole simulated network behind one URL.

``Session(transport="sim://")`` (or ``PYE2_TRANSPORT=sim://``) starts a
:class:`~pye2_transport_memory.network.SimulatedNetwork` in-process and
connects the session to it, so scripts written for a real broker run offline
unchanged. The session adopts the network's clock (virtual by default).

URL form: ``sim://[?nodes=3&seed=0&profile=aixp&realtime=0&heartbeat_interval=10]``
or ``sim://node-a,node-b?...`` to name the nodes. ``profile`` defaults to
``PYE2_PROFILE`` or AIXP and must match the session's profile.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pye2.errors import ConfigError
from pye2.ports.transport import Handler, Subscription, SupportsSharedSubscriptions, Transport, TransportCapabilities

__all__ = ["SimTransport", "parse_sim_url"]

_TRUE = {"1", "true", "yes", "on"}


def parse_sim_url(url: str) -> dict[str, Any]:
    """``sim://...`` -> keyword arguments of ``SimulatedNetwork``."""
    parts = urlsplit(url)
    if parts.scheme != "sim":
        raise ConfigError(f"not a sim:// URL: {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = {"nodes", "seed", "profile", "realtime", "heartbeat_interval"}
    unknown = set(query) - known
    if unknown:
        raise ConfigError(f"unknown sim:// option(s) {sorted(unknown)}; known: {sorted(known)}")
    try:
        nodes: int | list[str] = int(query.get("nodes", 3))
        if parts.netloc:
            nodes = [n for n in parts.netloc.split(",") if n]
        return {
            "nodes": nodes,
            "seed": int(query.get("seed", 0)),
            "profile": query.get("profile") or os.environ.get("PYE2_PROFILE") or "AIXP",
            "realtime": query.get("realtime", "0").lower() in _TRUE,
            "heartbeat_interval": float(query.get("heartbeat_interval", 10)),
        }
    except ValueError as exc:
        raise ConfigError(f"bad sim:// option in {url!r}: {exc}") from None


class SimTransport:
    """A client transport on its own simulated network (which it starts and stops)."""

    def __init__(self, **network_options: Any) -> None:
        from pye2_transport_memory.network import SimulatedNetwork

        self.network = SimulatedNetwork(**network_options)
        self.clock = self.network.clock
        self._inner: Transport = self.network.transport()
        self.name = "sim"
        self.capabilities: TransportCapabilities = self._inner.capabilities
        self._started = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SimTransport:
        return cls(**{**parse_sim_url(url), **options})

    def connect(self) -> None:
        if not self._started:
            self.network.start()
            self._started = True
        self._inner.connect()

    def subscribe(self, address: str, handler: Handler) -> Subscription:
        return self._inner.subscribe(address, handler)

    def subscribe_shared(self, address: str, group: str, handler: Handler) -> Subscription:
        inner = self._inner
        if not isinstance(inner, SupportsSharedSubscriptions):  # pragma: no cover - the network's own are
            raise ConfigError("this simulated network's transport has no shared subscriptions")
        return inner.subscribe_shared(address, group, handler)

    def publish(self, address: str, body: bytes) -> None:
        self._inner.publish(address, body)

    def close(self) -> None:
        self._inner.close()
        if self._started:
            self.network.stop()
            self._started = False

    @property
    def is_connected(self) -> bool:
        return self._inner.is_connected
