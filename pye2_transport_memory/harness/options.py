"""The options of a test network: marker keywords, fixture parameters, the broker setting.

``@pytest.mark.pye2_network(nodes=3, profile="RATIO1", seed=7)`` (on a test,
class or module; the closest one wins key by key) and an indirect
parametrisation of ``pye2_network`` (a dict per case, winning over markers)
become one frozen :class:`NetworkOptions`. An unknown keyword is an error
that names the closest valid one.

The broker comes from ``--pye2-broker URL``, else ``PYE2_TEST_BROKER``, else
the ``pye2_broker`` ini setting; empty means the in-memory hub on virtual time.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from pye2.domain.urls import mask_url
from pye2.errors import ConfigError

__all__ = ["NetworkOptions", "mask_url", "merge_options", "private_root"]

#: heartbeat interval on a broker when the test sets none: wall seconds are expensive
BROKER_HEARTBEAT = 2.0


@dataclass(frozen=True)
class NetworkOptions:
    """How ``pye2_network`` builds its :class:`~pye2_transport_memory.network.SimulatedNetwork`.

    Attributes:
        nodes: a count (ids ``sim-node-1`` ...) or the node ids.
        seed: seeds the node keys, figures and faults (same seed, same addresses).
        profile: ``"AIXP"`` or ``"RATIO1"`` (or a ``WireProfile``).
        heartbeat_interval: seconds between heartbeats; None: 10 on virtual time,
            2 on a broker (where every second is a real one).
        heartbeat_version: ``"v1"`` or ``"v2"``.
        secured: nodes drop commands whose signature does not verify.
        allow_any: nodes take commands from any validly signed sender.
        allow_list: who may command the nodes (None: the network's own sessions).
        supervisor: ``"first"``, True, False or node ids.
        eth_enabled: the nodes' signing mode (None: the profile's).
        plugins / sources: extra simulated plugin and data source classes.
        virtual: keep the in-memory hub and virtual time even when a broker is
            configured (for a test that depends on exact virtual time).
        start: start the nodes before the test (False: call ``network.start()``).
    """

    nodes: int | tuple[str, ...] = 3
    seed: int = 0
    profile: Any = "AIXP"
    heartbeat_interval: float | None = None
    heartbeat_version: str = "v2"
    secured: bool = True
    allow_any: bool = False
    allow_list: Any = None
    supervisor: Any = "first"
    eth_enabled: Any = None
    plugins: tuple[type, ...] = ()
    sources: tuple[type, ...] = ()
    virtual: bool = False
    start: bool = True

    def network_kwargs(self, broker: str | None) -> dict[str, Any]:
        """Keyword arguments of ``SimulatedNetwork`` (the profile is resolved by the caller)."""
        interval = self.heartbeat_interval
        if interval is None:
            interval = BROKER_HEARTBEAT if broker else 10.0
        return {
            "nodes": list(self.nodes) if isinstance(self.nodes, tuple) else self.nodes,
            "seed": self.seed, "broker": broker, "heartbeat_interval": interval,
            "heartbeat_version": self.heartbeat_version, "secured": self.secured, "allow_any": self.allow_any,
            "allow_list": self.allow_list, "supervisor": self.supervisor, "eth_enabled": self.eth_enabled,
            "plugins": self.plugins, "sources": self.sources,
        }


_NAMES = tuple(f.name for f in fields(NetworkOptions))


def _check(key: str, value: Any) -> Any:
    """One option, checked and normalised; raises ConfigError naming it."""
    if key == "nodes":
        if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
            raise ConfigError(f"nodes must be a count or a list of node ids, not {value!r}")
        return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else value
    if key == "seed" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"seed must be an int, not {value!r}")
    if key == "heartbeat_interval" and value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"heartbeat_interval must be a positive number of seconds, not {value!r}")
        return float(value)
    if key in ("secured", "allow_any", "virtual", "start") and not isinstance(value, bool):
        raise ConfigError(f"{key} must be True or False, not {value!r}")
    if key in ("plugins", "sources"):
        return tuple(value)
    return value


def _unknown(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, _NAMES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown option {key!r}{hint} (known: {', '.join(_NAMES)})")


def merge_options(layers: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
                  base: NetworkOptions | None = None) -> NetworkOptions:
    """Options from ``(args, kwargs)`` layers over ``base``, farthest first (later layers win key by key).

    One positional argument is the node count or ids.

    Raises:
        ConfigError: an unknown option (with the closest valid name), a bad value, or extra positionals.
    """
    options = base if base is not None else NetworkOptions()
    for args, kwargs in layers:
        if len(args) > 1:
            raise ConfigError(f"pye2_network takes at most one positional argument (nodes), got {len(args)}")
        values = dict(kwargs)
        if args:
            if "nodes" in values:
                raise ConfigError("pye2_network: nodes given both as positional and as keyword")
            values["nodes"] = args[0]
        for key in values:
            if key not in _NAMES:
                raise _unknown(key)
        options = replace(options, **{k: _check(k, v) for k, v in values.items()})
    return options


def private_root() -> str:
    """A topic root no one else uses (``pye2t`` and 12 random hex digits)."""
    return f"pye2t{uuid.uuid4().hex[:12]}"
