"""pye2_transport_memory: the in-memory transport and the simulator's building blocks.

``plugin.py`` registers the ``memory`` URL scheme. Nothing here imports a driver.
Every name is imported on first use, so importing a submodule (the pytest
plugin, ``plugin.py``) does not load pye2 or the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pye2_transport_memory.clock import VirtualClock
    from pye2_transport_memory.faults import FaultPlan
    from pye2_transport_memory.hub import Hub
    from pye2_transport_memory.network import SimulatedNetwork
    from pye2_transport_memory.node.node import SimulatedNode
    from pye2_transport_memory.transport import HubRegistry, MemoryTransport

_LAZY = {
    # the transport
    "Hub": "pye2_transport_memory.hub",
    "HubRegistry": "pye2_transport_memory.transport",
    "MemoryTransport": "pye2_transport_memory.transport",
    "VirtualClock": "pye2_transport_memory.clock",
    # the simulator (node engineer)
    "SimulatedNetwork": "pye2_transport_memory.network",
    "SimulatedNode": "pye2_transport_memory.node.node",
    "FaultPlan": "pye2_transport_memory.faults",
}

__all__ = [
    "FaultPlan",
    "Hub",
    "HubRegistry",
    "MemoryTransport",
    "SimulatedNetwork",
    "SimulatedNode",
    "VirtualClock",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
