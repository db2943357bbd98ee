"""pye2 plugin: registers the ``mqtt`` and ``mqtts`` transports. Imports no paho."""

from __future__ import annotations

from pye2.plugins.hookspecs import Register, hookimpl
from pye2.plugins.lazy import lazy


@hookimpl
def pye2_register_transports(register: Register) -> None:
    factory = lazy("pye2_transport_mqtt.transport", "MqttTransport.from_url")
    register("mqtt", factory, requires=("paho.mqtt",), extra="mqtt")
    register("mqtts", factory, requires=("paho.mqtt",), extra="mqtt")
