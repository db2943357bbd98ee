"""pye2 plugin: registers the in-memory ``memory`` transport and the ``sim`` network."""

from __future__ import annotations

from pye2.adapters._lazy import lazy
from pye2.plugins.hookspecs import Register, hookimpl


@hookimpl
def pye2_register_transports(register: Register) -> None:
    register("memory", lazy("pye2_transport_memory.transport", "MemoryTransport.from_url"))
    register("sim", lazy("pye2_transport_memory.sim_transport", "SimTransport.from_url"))
