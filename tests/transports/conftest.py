"""Fixtures shared by the MQTT transport tests (test_mqtt.py, test_mqtt_writer.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from pye2_transport_mqtt import MqttTransport

#: quick connects and reconnects for tests against the local broker
MQTT_FAST = {"connect_timeout": 5, "reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.5}


@pytest.fixture
def open_mqtt(mqtt_url: str) -> Iterator[Callable[..., MqttTransport]]:
    """``open_mqtt(connect=True, url=None, **options)``: a transport on the test broker (or ``url``), closed at
    teardown."""
    made: list[MqttTransport] = []

    def open_(connect: bool = True, url: str | None = None, **options: object) -> MqttTransport:
        transport = MqttTransport.from_url(url or mqtt_url, **{**MQTT_FAST, **options})
        made.append(transport)
        if connect:
            transport.connect()
        return transport

    yield open_
    for transport in reversed(made):
        transport.close()


@pytest.fixture
def prefix() -> str:
    """A fresh topic prefix, so concurrent runs on one broker never collide."""
    return f"pye2test/{uuid.uuid4().hex}"
