"""Fixtures of the network commands' tests: one ``pye2 sim`` per module (see ``_cli_rig``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from _cli_rig import Sim, start_sim, stop


@pytest.fixture(scope="module")
def sim(mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """``pye2 sim`` on Mosquitto under a private root for the module; interrupted at its end (exit 0)."""
    running = start_sim(mqtt_url, tmp_path_factory.mktemp("cli"))
    try:
        yield running
    finally:
        code, _, err = stop(running.proc)
    assert code == 0, err


@pytest.fixture()
def unused_broker() -> str:
    """An MQTT URL (with a password) nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"mqtt://user:s3cret-pw@127.0.0.1:{port}"
