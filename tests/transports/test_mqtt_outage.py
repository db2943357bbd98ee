"""MQTT transport against a private Mosquitto that the tests start, kill and restart.

Each test runs ``mosquitto -c <tmp>/mosquitto.conf`` in the foreground on a free
loopback port. Covered: a broker outage (disconnect and reconnect events,
automatic reconnect, resubscription, the outgoing queue during the outage:
every message published meanwhile is delivered afterwards or refused with
QueueFull, none lost silently), giving up and reconnecting by hand, TLS
(``mqtts://`` with a CA file, a wrong CA, ``tls_insecure``) and password
authentication. Skips when the ``mosquitto`` binary is missing, unless
PYE2_REQUIRE_BROKERS=1 (then it fails).
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pye2.errors import QueueFull, TransportConnectError
from pye2.ports.transport import ConnectionEvent
from pye2.testing import Collector, EventRecorder, Watched, sync
from pye2_transport_mqtt import MqttTransport

pytestmark = pytest.mark.mqtt

FAST = {"connect_timeout": 5, "reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.3}
WAIT = 15.0


def _require_brokers() -> bool:
    return os.environ.get("PYE2_REQUIRE_BROKERS", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def mosquitto_bin() -> str:
    """Path of the mosquitto binary (skip, or fail under PYE2_REQUIRE_BROKERS=1, when missing)."""
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)
    if found is None:
        message = "the mosquitto binary is not installed (apt-get install mosquitto)"
        if _require_brokers():
            pytest.fail(message + " [PYE2_REQUIRE_BROKERS=1: this is a failure, not a skip]")
        pytest.skip(message)
    return found


def free_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """One private Mosquitto process on a fixed loopback port; restartable."""

    def __init__(self, binary: str, folder: Path, port: int, settings: str = "") -> None:
        self.binary, self.folder, self.port = binary, folder, port
        self.conf = folder / "mosquitto.conf"
        # Started as root, mosquitto switches to its own user unless told to stay: it could
        # not read the certificates in pytest's private tmp folder then.
        stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {port} 127.0.0.1\npersistence false\nlog_type error\nlog_type warning\n{stay}"
            + (settings or "allow_anonymous true\n")
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start mosquitto and wait (bounded) until its port accepts connections."""
        log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)  # polling the port is the only signal mosquitto gives
        pytest.fail(f"mosquitto did not listen on {self.port} within 10s: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: the outage a crashed broker causes (no DISCONNECT sent)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def broker_factory(mosquitto_bin: str, tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """``broker_factory(settings="")``: a started private broker, killed at teardown."""
    brokers: list[Broker] = []

    def make(settings: str = "") -> Broker:
        folder = tmp_path / f"broker{len(brokers)}"
        folder.mkdir()
        broker = Broker(mosquitto_bin, folder, free_port(), settings)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.kill()


class EventLog:
    """A connection listener whose waits take any predicate over the events so far."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[ConnectionEvent] = []

    def __call__(self, event: ConnectionEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def snapshot(self) -> list[ConnectionEvent]:
        with self._cond:
            return list(self._events)

    def wait_until(self, predicate: Callable[[list[ConnectionEvent]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._events) and predicate(self._events), timeout)


@pytest.fixture
def transports() -> Iterator[list[MqttTransport]]:
    """A list the test appends its transports to; all are closed at teardown."""
    made: list[MqttTransport] = []
    yield made
    for transport in reversed(made):
        transport.close()


def test_outage_reconnects_resubscribes_and_loses_nothing(
    broker_factory: Callable[..., Broker], transports: list[MqttTransport]
) -> None:
    broker = broker_factory()
    prefix = f"outage/{uuid.uuid4().hex}"
    client = MqttTransport.from_url(broker.url, offline_queue_max=5, **FAST)
    observer = MqttTransport.from_url(broker.url, **FAST)
    transports += [client, observer]
    events, observer_events = EventRecorder(), EventRecorder()
    client.add_connection_listener(events)
    observer.add_connection_listener(observer_events)
    own, seen = Collector(), Collector()
    client.subscribe(f"{prefix}/#", own)
    client.connect()
    observer.subscribe(f"{prefix}/#", seen)
    observer.connect()
    client.publish(f"{prefix}/m", b"before")
    assert own.wait_for_body(b"before", WAIT) and seen.wait_for_body(b"before", WAIT)

    mark = events.mark()
    broker.kill()
    assert events.wait_for_state("disconnected", WAIT, after=mark)
    assert events.wait_for_state("reconnecting", WAIT, after=mark)
    assert not client.is_connected
    accepted, refused = [], []
    for n in range(8):  # the queue holds 5: the rest must be refused loudly
        body = f"during-{n}".encode()
        try:
            client.publish(f"{prefix}/m", body)
            accepted.append(body)
        except QueueFull:
            refused.append(body)
    assert len(accepted) == 5 and len(refused) == 3
    retries = [e for e in events.events[mark:] if e.state == "reconnecting"]
    assert [e.attempt for e in retries] == list(range(1, len(retries) + 1))
    assert all(0.0 <= e.delay <= client.config.backoff_ceiling(e.attempt) for e in retries)

    broker.start()  # same port
    assert events.wait_for_state("connected", WAIT, after=mark)
    assert observer_events.wait_for_state("connected", WAIT, after=1)
    # The client's SUBSCRIBE goes before its queued PUBLISHes on the new link.
    assert own.wait_until(lambda items: [d.body for d in items][-5:] == accepted, WAIT), own.bodies
    assert [d.body for d in own.deliveries] == [b"before", *accepted]
    # The observer resubscribed by itself too: new messages reach it.
    assert sync(client, [Watched(f"{prefix}/#", seen), Watched(f"{prefix}/#", own)], [f"{prefix}/m"], WAIT,
                retry_every=0.5)
    client.publish(f"{prefix}/m", b"after")
    assert seen.wait_for_body(b"after", WAIT) and own.wait_for_body(b"after", WAIT)
    assert client.is_connected and client.stats.reconnects == 1


def test_unacknowledged_qos1_messages_are_resent_after_the_outage(
    broker_factory: Callable[..., Broker], transports: list[MqttTransport]
) -> None:
    broker = broker_factory()
    prefix = f"outage/{uuid.uuid4().hex}"
    client = MqttTransport.from_url(broker.url, qos=1, **FAST)
    transports.append(client)
    events = EventRecorder()
    client.add_connection_listener(events)
    got = Collector()
    client.subscribe(f"{prefix}/#", got)
    client.connect()
    mark = events.mark()
    sent = [f"q1-{n}".encode() for n in range(50)]
    for body in sent:  # some are still unacknowledged when the broker dies
        client.publish(f"{prefix}/m", body)
    broker.kill()
    assert events.wait_for_state("disconnected", WAIT, after=mark)
    broker.start()
    assert events.wait_for_state("connected", WAIT, after=mark)
    # At least once: every message arrives; one whose PUBACK was lost may arrive twice.
    assert got.wait_until(lambda items: {d.body for d in items} >= set(sent), WAIT)
    bodies = [d.body for d in got.deliveries]
    first_seen = sorted(set(bodies), key=bodies.index)
    assert first_seen == sent  # and in order


def test_give_up_then_connect_by_hand(broker_factory: Callable[..., Broker], transports: list[MqttTransport]) -> None:
    broker = broker_factory()
    prefix = f"outage/{uuid.uuid4().hex}"
    client = MqttTransport.from_url(broker.url, reconnect_max_attempts=2, **FAST)
    transports.append(client)
    events = EventRecorder()
    client.add_connection_listener(events)
    got = Collector()
    client.subscribe(f"{prefix}/x", got)
    client.connect()
    mark = events.mark()
    broker.kill()
    assert events.wait_for_state("gave_up", WAIT, after=mark)
    tail = events.events[mark:]
    assert [e.state for e in tail] == ["disconnected", "reconnecting", "reconnecting", "gave_up"]
    assert tail[-1].attempt == 2 and tail[-1].error is not None
    assert not client.is_connected
    client.publish(f"{prefix}/x", b"queued while given up")

    broker.start()
    with pytest.raises(TransportConnectError):  # nothing reconnects by itself any more ...
        MqttTransport.from_url(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=1).connect()
    client.connect()  # ... until asked
    assert client.is_connected
    assert got.wait_for_body(b"queued while given up", WAIT)
    client.publish(f"{prefix}/x", b"fresh")
    assert got.wait_for_body(b"fresh", WAIT)


def _write_pki(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                    signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    files: dict[str, Path] = {}
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    pems = {
        "ca": certificate("pye2 test CA", ca_key, "pye2 test CA", ca_key, ca=True),
        "other_ca": certificate("unrelated CA", other_key, "unrelated CA", other_key, ca=True),
        "server": certificate("127.0.0.1", server_key, "pye2 test CA", ca_key, ca=False),
    }
    for label, cert in pems.items():
        files[label] = folder / f"{label}.pem"
        files[label].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["server_key"] = folder / "server.key"
    files["server_key"].write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


def test_tls_with_ca_file(broker_factory: Callable[..., Broker], transports: list[MqttTransport],
                          tmp_path: Path) -> None:
    pki = _write_pki(tmp_path)
    broker = broker_factory(
        f"allow_anonymous true\ncafile {pki['ca']}\ncertfile {pki['server']}\nkeyfile {pki['server_key']}\n")
    url = f"mqtts://127.0.0.1:{broker.port}"
    prefix = f"tls/{uuid.uuid4().hex}"
    client = MqttTransport.from_url(f"{url}?ca_file={pki['ca']}", **FAST)
    transports.append(client)
    got = Collector()
    client.subscribe(f"{prefix}/t", got)
    client.connect()
    client.publish(f"{prefix}/t", b"over tls")
    assert got.wait_for_body(b"over tls", WAIT)

    events = EventRecorder()
    client.add_connection_listener(events)
    client.force_reconnect()  # the reconnect path works over TLS too
    assert events.wait_for_state("connected", WAIT)
    assert sync(client, [Watched(f"{prefix}/t", got)], [f"{prefix}/t"], WAIT, retry_every=0.5)

    wrong = MqttTransport.from_url(url, ca_file=str(pki["other_ca"]), connect_timeout=3)
    transports.append(wrong)
    with pytest.raises(TransportConnectError) as info:
        wrong.connect()
    assert isinstance(info.value.__cause__, OSError)  # ssl.SSLCertVerificationError, chained

    insecure = MqttTransport.from_url(url, tls_insecure=True, **FAST)
    transports.append(insecure)
    insecure.connect()
    assert insecure.is_connected


def test_password_authentication(broker_factory: Callable[..., Broker], transports: list[MqttTransport],
                                 tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    secret, wrong_secret = "c0rrect-h0rse", "wr0ng-battery"
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run([tool, "-b", str(passwords), "alice", secret], check=True, capture_output=True)
    broker = broker_factory(f"allow_anonymous false\npassword_file {passwords}\n")

    good = MqttTransport.from_url(f"mqtt://alice:{secret}@127.0.0.1:{broker.port}", **FAST)
    bad = MqttTransport.from_url(f"mqtt://alice:{wrong_secret}@127.0.0.1:{broker.port}", **FAST)
    transports += [good, bad]
    good.connect()
    assert good.is_connected
    with caplog.at_level("DEBUG"), pytest.raises(TransportConnectError, match="refused") as info:
        bad.connect()
    assert not bad.is_connected
    for text in (str(info.value), repr(bad), caplog.text):
        assert wrong_secret not in text and secret not in text

    # The broker comes back with alice's password changed: each reconnect attempt is refused,
    # and the events say so; once the old password works again, the transport is back by itself.
    events = EventLog()
    good.add_connection_listener(events)
    broker.kill()
    subprocess.run([tool, "-b", str(passwords), "alice", wrong_secret], check=True, capture_output=True)
    broker.start()
    assert events.wait_until(lambda es: any(e.state == "reconnecting" and isinstance(e.error, TransportConnectError)
                                            for e in es), WAIT)
    refused = next(e for e in events.snapshot() if isinstance(e.error, TransportConnectError))
    assert "refused" in str(refused.error) and secret not in str(refused.error)
    broker.kill()
    subprocess.run([tool, "-b", str(passwords), "alice", secret], check=True, capture_output=True)
    broker.start()
    assert events.wait_until(lambda es: es[-1].state == "connected", WAIT)
    assert good.is_connected


def test_close_while_reconnecting_stops_every_thread(
    broker_factory: Callable[..., Broker], transports: list[MqttTransport]
) -> None:
    broker = broker_factory()
    client = MqttTransport.from_url(broker.url, reconnect_initial_delay=0.5, reconnect_max_delay=2,
                                    connect_timeout=5)
    events = EventRecorder()
    client.add_connection_listener(events)
    client.connect()
    ours = {t.name for t in threading.enumerate() if client.config.client_id in t.name}
    assert len(ours) == 2  # paho's network thread and our sender
    broker.kill()
    assert events.wait_for_state("reconnecting", WAIT)
    client.publish("outage/closing", b"never sent")  # dropped by close(), with a log line
    client.close()
    assert events.states[-1] == "closed" and not client.is_connected
    assert not [t for t in threading.enumerate() if client.config.client_id in t.name and t.is_alive()]
