"""A real broker outage: our own RabbitMQ node is stopped (or killed) and started again.

The shared broker on 5672 must not be disturbed, so this module starts a second RabbitMQ
node of its own: node name ``pye2test<random>@localhost``, free loopback ports for AMQP
and Erlang distribution, data, logs, config, enabled-plugins file (empty: no management
plugin) and Erlang cookie in a pytest temporary directory. ``RUNNING_UNDER_SYSTEMD=1``
makes the start script ``exec`` the Erlang VM, so the process we start *is* the broker:
SIGTERM stops it gracefully (clients get ``connection.close`` 320), SIGKILL is an abrupt
loss (clients see the socket close). Readiness is the "completed with N plugins" line on
its stdout, read by a thread, not a polling loop.

If rabbitmq-server is missing or the node cannot start, the tests skip with the reason;
under PYE2_REQUIRE_BROKERS=1 they fail instead, because that is a machine problem CI
must catch (CI installs RabbitMQ for the shared broker anyway, so the binary is there).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pye2.errors import QueueFull, TransportError
from pye2.ports.transport import ConnectionEvent
from pye2.testing import Collector, EventRecorder
from pye2_transport_amqp import AmqpTransport

pytestmark = [pytest.mark.amqp, pytest.mark.slow]

BACKOFF: dict[str, Any] = {"reconnect_initial_delay": 0.1, "reconnect_max_delay": 1.0, "connect_timeout": 5.0}
WAIT = 30.0  # bound of every wait on events and deliveries
NODE_START_TIMEOUT = 90.0


class NodeFailed(RuntimeError):
    """The test's RabbitMQ node did not start or stop as asked."""


def _require_brokers() -> bool:
    return os.environ.get("PYE2_REQUIRE_BROKERS", "") not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _require_brokers():
        pytest.fail(reason + " [PYE2_REQUIRE_BROKERS=1: this is a failure, not a skip]")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find_server() -> str | None:
    """The real start script (not Debian's /usr/sbin wrapper, which su's to the rabbitmq user)."""
    candidates = [os.environ.get("PYE2_RABBITMQ_SERVER", ""), "/usr/lib/rabbitmq/bin/rabbitmq-server",
                  *sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server")),
                  shutil.which("rabbitmq-server") or ""]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class RabbitNode:
    """A RabbitMQ node on free loopback ports with all its state under ``base``."""

    def __init__(self, base: Path, server: str) -> None:
        self.base = base
        self.server = server
        self.port = _free_port()
        self.dist_port = _free_port()
        self.name = f"pye2test{uuid.uuid4().hex[:8]}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")  # not the system's (it names the main node)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return dict(
            os.environ,
            HOME=str(self.base),  # the Erlang cookie goes here, not into the real home
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RUNNING_UNDER_SYSTEMD="1",  # exec the VM: our child is the broker itself
        )

    def start(self, timeout: float = NODE_START_TIMEOUT) -> None:
        """Start the node and return once it accepts AMQP connections."""
        ready = threading.Event()
        proc = subprocess.Popen([self.server], env=self._env(), cwd=self.base, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.proc = proc

        def read() -> None:  # drains stdout for the node's whole life, so it can never block on it
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                self.output.append(line)
                if "completed with" in line:
                    ready.set()
            ready.set()  # EOF: the node died

        threading.Thread(target=read, name=f"rabbit-output-{self.port}", daemon=True).start()
        if not ready.wait(timeout) or proc.poll() is not None:
            raise NodeFailed(f"node {self.name} did not start within {timeout}s: " + " | ".join(self.output[-8:]))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        except OSError as exc:
            raise NodeFailed(f"node {self.name} started but port {self.port} refuses: {exc}") from exc

    def stop(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        """Stop the node: SIGTERM (graceful shutdown) or SIGKILL (abrupt loss)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
            raise NodeFailed(f"node {self.name} ignored SIGTERM for {timeout}s; killed") from None


@pytest.fixture(scope="module")
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    server = _find_server()
    if server is None:
        _unavailable("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    assert server is not None
    node = RabbitNode(tmp_path_factory.mktemp("rabbit"), server)
    try:
        node.start()
    except (NodeFailed, OSError) as exc:
        node.stop(kill=True)
        _unavailable(f"could not start a second RabbitMQ node for the outage test: {exc}")
    yield node
    node.stop()


@pytest.fixture
def node(rabbit_node: RabbitNode) -> RabbitNode:
    """The module's node, running (a previous test may have left it stopped on failure)."""
    if rabbit_node.proc is None:
        rabbit_node.start()
    return rabbit_node


@pytest.fixture
def transports() -> Iterator[list[AmqpTransport]]:
    made: list[AmqpTransport] = []
    yield made
    for transport in made:
        transport.close()


def _open(node: RabbitNode, made: list[AmqpTransport], **options: Any) -> tuple[AmqpTransport, EventRecorder]:
    transport = AmqpTransport.from_url(node.url, **{**BACKOFF, **options})
    made.append(transport)
    recorder = EventRecorder()
    transport.add_connection_listener(recorder)
    transport.connect()
    return transport, recorder


def _assert_outage_events(events: list[ConnectionEvent]) -> None:
    """connected, disconnected, reconnecting 1..n with jittered delays under the cap, connected."""
    states = [e.state for e in events]
    assert states[:2] == ["connected", "disconnected"] and states[-1] == "connected", states
    assert isinstance(events[1].error, TransportError)
    retries = events[2:-1]
    assert retries and all(e.state == "reconnecting" for e in retries), states
    assert [e.attempt for e in retries] == list(range(1, len(retries) + 1))
    for e in retries:
        cap = min(BACKOFF["reconnect_max_delay"], BACKOFF["reconnect_initial_delay"] * 2 ** (e.attempt - 1))
        assert 0.0 <= e.delay <= cap and isinstance(e.error, TransportError)


def test_graceful_broker_restart(node: RabbitNode, transports: list[AmqpTransport]) -> None:
    root = f"outage{uuid.uuid4().hex[:8]}"
    loop_transport, loop_events = _open(node, transports, offline_queue_max=40)
    watcher, watcher_events = _open(node, transports)
    quitter, quitter_events = _open(node, transports, reconnect_max_attempts=2, reconnect_max_delay=0.2)
    own, seen = Collector(), Collector()
    loop_transport.subscribe(f"{root}/+/data", own)
    watcher.subscribe(f"{root}/#", seen)
    loop_transport.publish(f"{root}/n1/data", b"before")
    assert own.wait_for_body(b"before", WAIT) and seen.wait_for_body(b"before", WAIT)

    node.stop()
    for recorder in (loop_events, watcher_events, quitter_events):
        assert recorder.wait_for_state("disconnected", WAIT)
    assert not loop_transport.is_connected and not watcher.is_connected

    # Published while the broker is down: queued up to the bound, then refused loudly.
    during = [b"during-%02d" % i for i in range(40)]
    for body in during:
        loop_transport.publish(f"{root}/n1/data", body)
    with pytest.raises(QueueFull):
        loop_transport.publish(f"{root}/n1/data", b"overflow")
    assert loop_transport.stats()["outbox"] == 40

    # A transport allowed two attempts gives up while the broker is down.
    assert quitter_events.wait_for_state("gave_up", WAIT)
    assert quitter_events.states[-3:] == ["reconnecting", "reconnecting", "gave_up"]
    with pytest.raises(TransportError, match="gave up"):
        quitter.publish(f"{root}/n1/data", b"to nowhere")

    node.start()
    assert loop_events.wait_for_state("connected", WAIT, after=1)
    assert watcher_events.wait_for_state("connected", WAIT, after=1)
    _assert_outage_events(loop_events.events)
    _assert_outage_events(watcher_events.events)

    # The transport re-subscribes before it flushes its queue, so none of its own messages is lost.
    assert own.wait_until(lambda items: set(during) <= {d.body for d in items}, WAIT)
    assert [b for b in own.bodies if b.startswith(b"during")] == during
    assert b"overflow" not in own.bodies
    # Messages flow again to the other transport's restored subscription.
    assert loop_transport.is_connected and watcher.is_connected
    loop_transport.publish(f"{root}/n2/data", b"after")
    assert seen.wait_for_body(b"after", WAIT) and own.wait_for_body(b"after", WAIT)
    quitter.connect()  # after giving up, connect() starts over
    assert quitter.is_connected


def test_broker_killed_and_restarted(node: RabbitNode, transports: list[AmqpTransport]) -> None:
    root = f"outage{uuid.uuid4().hex[:8]}"
    transport, events = _open(node, transports, publish_timeout=0.5)
    got, commands = Collector(), Collector()
    transport.subscribe(f"{root}/n1/data", got)
    transport.subscribe(f"{root}/+/config", commands)
    transport.publish(f"{root}/n1/config", b"confirmed-before")  # a command: waits for the broker's confirm
    assert commands.wait_for_body(b"confirmed-before", WAIT)

    node.stop(kill=True)
    assert events.wait_for_state("disconnected", WAIT)
    transport.publish(f"{root}/n1/data", b"queued-while-down")
    with pytest.raises(TransportError, match="withdrawn"):
        transport.publish(f"{root}/n1/config", b"command-while-down")  # not sent: withdrawn, never sent later
    assert transport.stats()["outbox"] == 1

    node.start()
    assert events.wait_for_state("connected", WAIT, after=1)
    _assert_outage_events(events.events)
    assert got.wait_for_body(b"queued-while-down", WAIT)
    transport.publish(f"{root}/n1/config", b"confirmed-after")
    assert commands.wait_for_body(b"confirmed-after", WAIT)
    assert commands.bodies == [b"confirmed-before", b"confirmed-after"]
