"""pye2 plugin: registers the ``amqp`` and ``amqps`` transports. Imports no pika."""

from __future__ import annotations

from pye2.plugins.hookspecs import Register, hookimpl
from pye2.plugins.lazy import lazy


@hookimpl
def pye2_register_transports(register: Register) -> None:
    factory = lazy("pye2_transport_amqp.transport", "AmqpTransport.from_url")
    register("amqp", factory, requires=("pika",), extra="amqp")
    register("amqps", factory, requires=("pika",), extra="amqp")
