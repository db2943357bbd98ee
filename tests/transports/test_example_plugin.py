"""The example third-party transport (``examples/transport_plugin``), installed for real.

pip builds and installs the ``pye2-example-tcp`` distribution into a temporary
folder, which is then put on ``sys.path``. From there on nothing refers to the
example's source: pye2's :class:`PluginHost` must find the ``tcpbus`` scheme
through the ``pye2`` entry point and name the distribution, and the installed
transport, built through the host, must pass the shipped conformance kit
(Session smoke test included) against the example's broker on a free port.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import socket
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pye2.errors import ConfigError, PluginNotFound, TransportConnectError, TransportError
from pye2.plugins import PluginHost
from pye2.ports.transport import Transport
from pye2.testing import Collector, EventRecorder, TransportTests
from pye2_transport_memory.smoke import start_smoke_node

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transport_plugin"
DIST = "pye2-example-tcp"
PACKAGE = "pye2_example_tcp"
WAIT = 10.0


def _pip_install(source: Path, target: Path, *, isolated: bool) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
               "--target", str(target)]
    # Offline: build with the setuptools of this venv. Isolated: pip fetches setuptools from the index.
    command += ["--retries", "1", "--timeout", "30"] if isolated else ["--no-index", "--no-build-isolation"]
    return subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=240, check=False)


def _forget_example_modules() -> None:
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder pip installed the example distribution into, prepended to ``sys.path``."""
    work = tmp_path_factory.mktemp("example_plugin")
    source = work / "source"  # a copy: an in-tree build would leave build/ and *.egg-info in the repo
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache"))
    target = work / "site-packages"
    result = _pip_install(source, target, isolated=False)
    if result.returncode != 0:
        offline_error = result.stderr[-1500:]
        shutil.rmtree(target, ignore_errors=True)
        result = _pip_install(source, target, isolated=True)
        assert result.returncode == 0, f"pip failed.\noffline:\n{offline_error}\nisolated:\n{result.stderr[-1500:]}"
        warnings.warn("built the example with build isolation (setuptools from the package index): this venv "
                      "cannot build offline; it needs setuptools>=70.1 (or the wheel package)", stacklevel=1)
    _forget_example_modules()
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(target))  # also invalidates importlib's caches
        yield target
    _forget_example_modules()
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def host(installed: Path) -> PluginHost:
    """A plugin host loaded while the example is installed (entry points on)."""
    return PluginHost().load()


@pytest.fixture(scope="module")
def broker(installed: Path) -> Iterator[Any]:
    """The installed example's broker, in-process on a free port."""
    module = importlib.import_module(f"{PACKAGE}.broker")
    running = module.start_broker(port=0)
    try:
        yield running
    finally:
        running.close()


def test_pip_installed_the_distribution_with_its_entry_point(installed: Path) -> None:
    dist = importlib.metadata.distribution(DIST)
    assert dist.version == "0.1.0"
    assert Path(str(dist.locate_file(""))).resolve() == installed.resolve()
    entry_points = {(ep.name, ep.value) for ep in dist.entry_points if ep.group == "pye2"}
    assert entry_points == {("tcp", f"{PACKAGE}.plugin")}
    assert (installed / PACKAGE / "transport.py").is_file()


def test_plugin_host_finds_tcpbus_through_the_entry_point(installed: Path) -> None:
    _forget_example_modules()
    host = PluginHost().load()
    assert "tcpbus" in host.transports.names()
    assert "from distribution pye2-example-tcp 0.1.0" in host.transports.entry("tcpbus").source
    assert host.transports.entry("tcpbus").source.startswith("plugin 'tcp'")
    # Loading imported the plugin module only: the transport is imported on first use.
    assert f"{PACKAGE}.plugin" in sys.modules and f"{PACKAGE}.transport" not in sys.modules
    transport = host.make_transport(f"tcpbus://127.0.0.1:{_free_port()}")
    try:
        assert isinstance(transport, Transport)
        assert type(transport).__module__ == f"{PACKAGE}.transport"
        assert Path(sys.modules[f"{PACKAGE}.transport"].__file__ or "").is_relative_to(installed)
        assert not transport.is_connected  # the factory does not touch the network
    finally:
        transport.close()


def test_typed_errors_through_the_host(host: PluginHost) -> None:
    with pytest.raises(PluginNotFound, match="did you mean 'tcpbus'"):
        host.make_transport("tcpbsu://127.0.0.1:1")
    for bad in ("tcpbus://127.0.0.1", "tcpbus://127.0.0.1:99999", "tcpbus://127.0.0.1:1/path"):
        with pytest.raises(ConfigError):
            host.make_transport(bad)
    with pytest.raises(ConfigError, match="unknown tcpbus option"):
        host.make_transport("tcpbus://127.0.0.1:1", colour="red")


def test_session_connects_by_url(host: PluginHost, broker: Any) -> None:
    from pye2 import AIXP, Session
    from pye2.wire import Identity

    profile = AIXP.with_root(f"pye2tcp{uuid.uuid4().hex[:10]}")
    node = start_smoke_node(host.make_transport(broker.url), profile)
    session = Session(transport=broker.url, profile=profile, clock=node.clock, identity=Identity.generate(),
                      name="tcpbus-url", env_file=None, plugin_host=host, connect_timeout=5.0)
    try:
        session.connect()
        assert type(session.transport).__module__ == f"{PACKAGE}.transport"
        assert session.wait_for_node(node.alias, WAIT), "no heartbeat over tcpbus"
    finally:
        session.close()
        node.stop()


def test_a_server_that_never_answers_is_a_connect_error(host: PluginHost) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        transport = host.make_transport(f"tcpbus://127.0.0.1:{silent.getsockname()[1]}", connect_timeout=0.5)
        with pytest.raises(TransportConnectError, match="handshake"):
            transport.connect()
        assert not transport.is_connected
        transport.close()


def test_lost_connection_is_reported_and_connect_starts_over(host: PluginHost) -> None:
    brokers = importlib.import_module(f"{PACKAGE}.broker")
    first = brokers.start_broker(port=0)
    transport = host.make_transport(first.url)
    events, got = EventRecorder(), Collector()
    transport.add_connection_listener(events)
    transport.subscribe("lost/x", got)
    transport.connect()
    first.close()
    second = None
    try:
        assert events.wait_for_state("disconnected", WAIT)
        assert isinstance(events.events[-1].error, TransportError) and not transport.is_connected
        with pytest.raises(TransportError, match="connection lost"):
            transport.publish("lost/x", b"while down")
        second = brokers.start_broker(port=first.port)  # same URL, a broker that knows nothing of us
        transport.connect()  # no automatic reconnect: connect() again re-sends the subscriptions
        transport.publish("lost/x", b"again")
        assert got.wait_for_body(b"again", WAIT)
        assert got.bodies == [b"again"] and events.states == ["connected", "disconnected", "connected"]
    finally:
        transport.close()
        if second is not None:
            second.close()


class TestInstalledTcpBus(TransportTests):
    """The conformance kit against the installed plugin, every transport built by the plugin host."""

    machine_max_examples = 5
    delivery_timeout = WAIT
    reconnect_timeout = 20.0

    @pytest.fixture
    def make_transport(self, host: PluginHost, broker: Any) -> Callable[[], Transport]:
        url = f"tcpbus://127.0.0.1:{broker.port}"
        return lambda: host.make_transport(url)

    @pytest.fixture
    def unreachable_transport(self, host: PluginHost) -> Transport:
        transport: Transport = host.make_transport(f"tcpbus://127.0.0.1:{_free_port()}", connect_timeout=2.0)
        return transport

    @pytest.fixture
    def connect_timeout(self) -> float:
        return 2.0

    @pytest.fixture
    def make_node(self) -> Callable[..., Any]:
        return start_smoke_node
