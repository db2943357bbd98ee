"""The memory transport passes the shipped conformance kit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from pye2.errors import ConfigError, QueueFull, TransportClosed, TransportConnectError
from pye2.ports.transport import ConnectionEvent, SupportsConnectionEvents, Transport
from pye2.testing import Collector, EventRecorder, SupportsForcedReconnect, TransportTests
from pye2_transport_memory import Hub, HubRegistry, MemoryTransport
from pye2_transport_memory.smoke import start_smoke_node


class TestMemoryTransport(TransportTests):
    machine_max_examples = 200
    machine_step_count = 30
    delivery_timeout = 5.0
    reconnect_timeout = 5.0

    @pytest.fixture
    def make_transport(self) -> Callable[[], Transport]:
        hub = Hub()
        return lambda: MemoryTransport(hub)

    @pytest.fixture
    def unreachable_transport(self) -> Transport:
        hub = Hub()
        hub.refuse_connections()
        return MemoryTransport(hub)

    @pytest.fixture
    def connect_timeout(self) -> float:
        return 1.0

    @pytest.fixture
    def make_node(self) -> Callable[..., Any]:
        return start_smoke_node


class TestMemoryTransportWithSizeLimit(TransportTests):
    """Same kit through the URL factory, with a size cap so the oversize check runs."""

    machine_max_examples = 25

    @pytest.fixture
    def make_transport(self) -> Callable[[], Transport]:
        hubs = HubRegistry()
        return lambda: MemoryTransport.from_url("memory://kit?max_message_bytes=4096", hubs=hubs)


# -- memory-specific behaviour beyond the kit ----------------------------------------


def test_from_url_resolves_names_in_the_given_registry() -> None:
    hubs = HubRegistry()
    first = MemoryTransport.from_url("memory://net", hubs=hubs)
    second = MemoryTransport.from_url("memory://net", hubs=hubs)
    other = MemoryTransport.from_url("memory://elsewhere", hubs=hubs)
    assert first.hub is second.hub is hubs.get("net")
    assert other.hub is not first.hub
    assert MemoryTransport.from_url("memory://net?max_message_bytes=10", hubs=hubs).capabilities.max_message_bytes == 10


def test_from_url_default_uses_the_process_registry() -> None:
    from pye2_transport_memory.transport import default_registry

    assert MemoryTransport.from_url("memory://").hub is default_registry().get("default")
    assert MemoryTransport.from_url("memory://default").hub is default_registry().get("default")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("mqtt://net", {}),
        ("memory://net", {}),  # a named hub needs an explicit registry
        ("memory://net/path", {"hubs": HubRegistry()}),
        ("memory://net?max_message_bytes=x", {"hubs": HubRegistry()}),
        ("memory://net?max_message_bytes=-1", {"hubs": HubRegistry()}),
        ("memory://net?colour=red", {"hubs": HubRegistry()}),
        ("memory://net", {"hubs": {}}),
        ("memory://net", {"hubs": HubRegistry(), "create": False}),
        ("memory://default", {"unknown": 1}),
        (None, {}),
    ],
)
def test_from_url_rejects_bad_input_with_config_error(url: object, options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MemoryTransport.from_url(url, **options)  # type: ignore[arg-type]


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        MemoryTransport("hub")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        MemoryTransport(Hub(), max_message_bytes=-1)


def test_refused_connection_then_accepted() -> None:
    hub = Hub()
    hub.refuse_connections()
    transport = MemoryTransport(hub)
    with pytest.raises(TransportConnectError):
        transport.connect()
    assert not transport.is_connected
    hub.refuse_connections(False)
    transport.connect()
    assert transport.is_connected


def test_simulated_outage_queues_publishes_and_misses_deliveries() -> None:
    hub = Hub()
    client, peer = MemoryTransport(hub), MemoryTransport(hub)
    client.connect()
    peer.connect()
    events = EventRecorder()
    client.add_connection_listener(events)
    at_client, at_peer = Collector(), Collector()
    client.subscribe("to/client", at_client)
    peer.subscribe("to/peer", at_peer)

    client.simulate_disconnect()
    assert not client.is_connected
    client.publish("to/peer", b"queued-1")
    client.publish("to/peer", b"queued-2")
    peer.publish("to/client", b"missed")
    assert at_peer.bodies == [] and at_client.bodies == []

    client.simulate_reconnect()
    assert client.is_connected
    assert at_peer.bodies == [b"queued-1", b"queued-2"]
    peer.publish("to/client", b"after")
    assert at_client.bodies == [b"after"]
    assert events.states == ["disconnected", "connected"]


def test_offline_queue_is_bounded() -> None:
    transport = MemoryTransport(Hub(), offline_queue_limit=2)
    transport.connect()
    transport.simulate_disconnect()
    transport.publish("a", b"1")
    transport.publish("a", b"2")
    with pytest.raises(QueueFull):
        transport.publish("a", b"3")


def test_close_drops_the_offline_queue_and_is_final() -> None:
    hub = Hub()
    transport, peer = MemoryTransport(hub), MemoryTransport(hub)
    transport.connect()
    peer.connect()
    got = Collector()
    peer.subscribe("a", got)
    transport.simulate_disconnect()
    transport.publish("a", b"never")
    transport.close()
    transport.simulate_reconnect()  # no effect once closed
    with pytest.raises(TransportClosed):
        transport.connect()
    assert got.bodies == [] and hub.subscription_count == 1


def test_failing_connection_listener_does_not_break_connect(caplog: pytest.LogCaptureFixture) -> None:
    transport = MemoryTransport(Hub())

    def broken(event: ConnectionEvent) -> None:
        raise RuntimeError("listener bug")

    transport.add_connection_listener(broken)
    with caplog.at_level(logging.ERROR, logger="pye2_transport_memory.transport"):
        transport.connect()
    assert transport.is_connected
    assert any(r.exc_info for r in caplog.records)


def test_resolves_through_the_plugin_host(plugin_host: Any) -> None:
    hubs = HubRegistry()
    transport = plugin_host.make_transport("memory://plugged", hubs=hubs)
    assert isinstance(transport, MemoryTransport)
    assert transport.hub is hubs.get("plugged")


def test_implements_the_port_and_the_optional_protocols() -> None:
    transport = MemoryTransport(Hub())
    assert isinstance(transport, Transport)
    assert isinstance(transport, SupportsConnectionEvents)
    assert isinstance(transport, SupportsForcedReconnect)
    assert transport.capabilities.reconnects and transport.capabilities.wildcards
