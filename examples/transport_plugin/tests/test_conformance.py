"""tcpbus passes pye2's shipped conformance kit: all a transport's CI needs to start with."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pye2.testing import TransportTests
from pye2_example_tcp.broker import Broker, start_broker
from pye2_example_tcp.transport import TcpBusTransport
from pye2_transport_memory.smoke import start_smoke_node


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with start_broker(port=0) as running:  # port 0: any free port
        yield running


class TestTcpBus(TransportTests):
    machine_max_examples = 5  # a real network: few, slower examples

    @pytest.fixture
    def make_transport(self, broker: Broker) -> Callable[[], TcpBusTransport]:
        return lambda: TcpBusTransport.from_url(broker.url)  # new and unconnected at each call

    @pytest.fixture
    def unreachable_transport(self) -> TcpBusTransport:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return TcpBusTransport.from_url(f"tcpbus://127.0.0.1:{port}", connect_timeout=2.0)

    @pytest.fixture
    def make_node(self) -> Callable[..., Any]:
        return start_smoke_node  # runs the kit's Session smoke test over tcpbus
