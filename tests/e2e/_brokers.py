"""Helpers of the end-to-end tests: private brokers, isolated topic roots, event logs.

* :class:`MosquittoBroker` and :class:`RabbitBroker` each run one broker process of
  their own on free loopback ports, with all state in a temporary folder, so a test
  can kill and restart it without touching the shared brokers on 1883 / 5672.
  Readiness is read from the broker's own output by a thread (Mosquitto's
  ``... running`` line, RabbitMQ's ``completed with N plugins``), never polled.
* :func:`isolated_profile` gives each test its own topic root, so tests sharing a
  broker never hear each other.
* :class:`EventLog` records connection events (or anything) and waits on predicates
  over them with a Condition.

Missing broker binaries skip the test, or fail it under ``PYE2_REQUIRE_BROKERS=1``.
"""

from __future__ import annotations

import getpass
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlencode

import pytest

from pye2.domain.profiles import AIXP, WireProfile

__all__ = [
    "SHARED_KINDS",
    "BrokerFailed",
    "EventLog",
    "MosquittoBroker",
    "PrivateBroker",
    "RabbitBroker",
    "SharedBroker",
    "delete_amqp_exchange",
    "find_mosquitto",
    "find_rabbitmq_server",
    "free_port",
    "isolated_profile",
    "require_brokers",
    "shared_broker",
    "unavailable",
    "with_options",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MOSQUITTO_START_TIMEOUT = 10.0
RABBIT_START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0


class BrokerFailed(RuntimeError):
    """A private broker did not start or stop as asked."""


def require_brokers() -> bool:
    """True under ``PYE2_REQUIRE_BROKERS=1``: a missing broker is a failure, not a skip."""
    return os.environ.get("PYE2_REQUIRE_BROKERS", "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the test for ``reason`` (fail under ``PYE2_REQUIRE_BROKERS=1``)."""
    if require_brokers():
        pytest.fail(reason + " [PYE2_REQUIRE_BROKERS=1: this is a failure, not a skip]")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_profile(base: WireProfile = AIXP) -> WireProfile:
    """``base`` on a topic root of its own (``pye2e2e<8 hex>``)."""
    return base.with_root(f"pye2e2e{uuid.uuid4().hex[:8]}")


def with_options(url: str, **options: object) -> str:
    """``url`` with transport options appended to its query (``?a=1&b=2``)."""
    if not options:
        return url
    text = urlencode({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()})
    return f"{url}{'&' if '?' in url else '?'}{text}"


class PrivateBroker(Protocol):
    """What the outage tests need from a broker they own."""

    @property
    def url(self) -> str:
        """Where clients connect (no options)."""
        ...

    def start(self) -> None:
        """Start (again, on the same port) and return once it accepts connections."""
        ...

    def kill(self) -> None:
        """SIGKILL: an abrupt loss, clients get no goodbye."""
        ...


class _Process:
    """A child process whose output a thread drains, signalling ``ready`` on a marker line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: deque[str] = deque(maxlen=200)

    def spawn(self, argv: list[str], *, marker: str, timeout: float, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> None:
        ready = threading.Event()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        self.proc = proc

        def drain() -> None:  # reads for the process's whole life, so it can never block on a full pipe
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                self.output.append(line)
                if marker in line:
                    ready.set()
            ready.set()  # EOF: the process died

        threading.Thread(target=drain, name=f"{self.name}-output", daemon=True).start()
        if not ready.wait(timeout) or proc.poll() is not None:
            self.kill()
            raise BrokerFailed(f"{self.name} did not start within {timeout}s: " + " | ".join(list(self.output)[-8:]))

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def signal(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
            raise BrokerFailed(f"{self.name} ignored signal {sig} for {STOP_TIMEOUT}s; killed") from None


def _check_listening(port: int, what: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError as exc:
        raise BrokerFailed(f"{what} started but port {port} refuses: {exc}") from exc


def find_mosquitto() -> tuple[str, str] | None:
    """Paths of the ``mosquitto`` binary and of coreutils' ``stdbuf`` (both needed), or None."""
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)
    stdbuf = shutil.which("stdbuf")
    return (binary, stdbuf) if binary and stdbuf else None


class MosquittoBroker:
    """One Mosquitto process on a fixed free loopback port; restartable on the same port."""

    def __init__(self, binary: str, stdbuf: str, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        # Started as root, mosquitto switches to its own user unless told to stay.
        stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\npersistence false\nallow_anonymous true\nlog_dest stdout\n"
            f"log_type error\nlog_type warning\nlog_type information\n{stay}")
        self._binary = binary
        self._stdbuf = stdbuf
        self._process = _Process(f"mosquitto:{self.port}")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Mosquitto block-buffers a piped stdout; stdbuf makes its "... running" line arrive when written.
        self._process.spawn([self._stdbuf, "-oL", self._binary, "-c", str(self.conf)], marker=" running",
                            timeout=MOSQUITTO_START_TIMEOUT)
        _check_listening(self.port, "mosquitto")

    def kill(self) -> None:
        self._process.kill()

    def output(self) -> str:
        """The broker's last log lines (for failure messages)."""
        return "\n".join(list(self._process.output)[-20:])


def find_rabbitmq_server() -> str | None:
    """The real start script (not Debian's /usr/sbin wrapper, which switches to the rabbitmq user)."""
    candidates = [os.environ.get("PYE2_RABBITMQ_SERVER", ""), "/usr/lib/rabbitmq/bin/rabbitmq-server",
                  *sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server")),
                  shutil.which("rabbitmq-server") or ""]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class RabbitBroker:
    """A second RabbitMQ node (own node name, ports, data, logs, cookie) under ``folder``.

    ``RUNNING_UNDER_SYSTEMD=1`` makes the start script ``exec`` the Erlang VM, so the
    child process is the broker itself and SIGKILL is a real crash.
    """

    def __init__(self, server: str, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.dist_port = free_port()
        self.node_name = f"pye2e2e{uuid.uuid4().hex[:8]}@localhost"
        self._server = server
        self._process = _Process(f"rabbitmq:{self.port}")
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq-env.conf").write_text("")  # not the system's: it names the main node

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        base = self.folder
        return dict(
            os.environ,
            HOME=str(base),  # the Erlang cookie goes here, not into the real home
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RUNNING_UNDER_SYSTEMD="1",
        )

    def start(self) -> None:
        self._process.spawn([self._server], marker="completed with", timeout=RABBIT_START_TIMEOUT, env=self._env(),
                            cwd=self.folder)
        _check_listening(self.port, f"rabbitmq node {self.node_name}")

    def kill(self) -> None:
        self._process.kill()

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown."""
        self._process.signal(signal.SIGTERM)


@dataclass(frozen=True)
class SharedBroker:
    """Where one test runs on a shared broker: its URL and a topic root nobody else uses."""

    kind: str
    url: str
    profile: WireProfile


#: ``@pytest.fixture(params=SHARED_KINDS)`` runs a test once per shared broker, marked.
SHARED_KINDS = [pytest.param("mqtt", marks=pytest.mark.mqtt), pytest.param("amqp", marks=pytest.mark.amqp)]


def shared_broker(request: pytest.FixtureRequest) -> Iterator[SharedBroker]:
    """Body of a fixture parametrised with :data:`SHARED_KINDS`: the shared broker of that kind
    (``mqtt_url`` / ``amqp_url``) with an isolated root; the root's AMQP exchange is deleted after."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    where = SharedBroker(request.param, url, isolated_profile())
    yield where
    if where.kind == "amqp":
        delete_amqp_exchange(url, where.profile.root)


def delete_amqp_exchange(url: str, exchange: str) -> None:
    """Remove a test's root exchange from a shared RabbitMQ (best effort: logged, never raised)."""
    import pika
    import pika.exceptions

    try:
        connection = pika.BlockingConnection(pika.URLParameters(url.split("?", 1)[0]))
    except pika.exceptions.AMQPError as exc:
        log.warning("could not connect to delete exchange %s: %s", exchange, exc)
        return
    try:
        connection.channel().exchange_delete(exchange)
    except pika.exceptions.AMQPError as exc:
        log.warning("could not delete exchange %s: %s", exchange, exc)
    finally:
        if connection.is_open:
            connection.close()


class EventLog(Generic[T]):
    """Items appended from any thread; waits take a predicate over everything so far."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[T] = []

    def append(self, item: T) -> None:
        """Record one item and wake the waiters."""
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def snapshot(self) -> list[T]:
        """A copy of the items so far."""
        with self._cond:
            return list(self._items)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def wait_until(self, predicate: Callable[[list[T]], bool], timeout: float) -> bool:
        """Wait (bounded) until ``predicate(items)`` holds; True if it does."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._items), timeout)
