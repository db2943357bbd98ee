"""pye2_transport_memory: the in-memory transport and the simulator's building blocks.

``plugin.py`` registers the ``memory`` URL scheme. Nothing here imports a driver.
"""

from __future__ import annotations

from pye2_transport_memory.clock import VirtualClock
from pye2_transport_memory.hub import Hub
from pye2_transport_memory.transport import HubRegistry, MemoryTransport

__all__ = [
    "Hub",
    "HubRegistry",
    "MemoryTransport",
    "VirtualClock",
]

# -- simulator (node engineer): imported on first use, so the transport alone stays light --
_SIMULATOR = {
    "SimulatedNetwork": "pye2_transport_memory.network",
    "SimulatedNode": "pye2_transport_memory.node.node",
    "FaultPlan": "pye2_transport_memory.faults",
}
__all__ += list(_SIMULATOR)


def __getattr__(name: str) -> object:
    module = _SIMULATOR.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
