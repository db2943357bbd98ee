"""pye2 plugin: the in-memory ``memory`` transport, the ``sim`` network, and the simulator's commands."""

from __future__ import annotations

from pye2.plugins.hookspecs import Register, hookimpl
from pye2.plugins.lazy import lazy


@hookimpl
def pye2_register_transports(register: Register) -> None:
    register("memory", lazy("pye2_transport_memory.transport", "MemoryTransport.from_url"))
    register("sim", lazy("pye2_transport_memory.sim_transport", "SimTransport.from_url"))


@hookimpl
def pye2_register_commands(register: Register) -> None:
    register("demo", lazy("pye2_transport_memory.commands", "demo_command"))
    register("sim", lazy("pye2_transport_memory.commands", "sim_command"))
