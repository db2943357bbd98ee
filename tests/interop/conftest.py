"""Opt-in interop suite: pye2's public API against a REAL Execution Engine node.

Collected and run only when asked for: ``PYE2_INTEROP=1`` or a ``-m`` expression
that selects ``interop`` (``pytest -m interop tests/interop``). Otherwise the
files are not even collected, and nothing is started. Not part of CI.

For each signing mode (``eth_off``: the node's default; ``eth_on``:
``EE_ETH_ENABLED=true``) one node (naeural-core 7.7.336) is started from the
oracle scripts in a fresh run folder, with a private root topic on the
loopback Mosquitto; its first heartbeat is awaited (``PYE2_INTEROP_BOOT_TIMEOUT``,
90 s), the client's address is written to its ``authorized_addrs``, the tests
run, and the node's process group is killed (also when tests fail; a
``PR_SET_PDEATHSIG`` kills it should pytest itself die).

Settings (environment):

* ``PYE2_NODE_VENV``: the node's venv (default ``~/.cache/ee-node``; build it with
  ``VENV=~/.cache/ee-node ../shared/oracle/install_lean.sh``, ~1.6 GB)
* ``PYE2_ORACLE_DIR``: the oracle scripts (default ``../shared/oracle`` beside the repo)
* ``PYE2_INTEROP_MODES``: ``eth_off,eth_on`` (default both)
* ``PYE2_INTEROP_HB``: the node's heartbeat period in seconds (default 5)
* ``PYE2_MQTT_URL``: the broker (default ``mqtt://127.0.0.1:1883``; loopback only)
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MODES = [m.strip() for m in os.environ.get("PYE2_INTEROP_MODES", "eth_off,eth_on").split(",") if m.strip()]
HB_SECONDS = int(os.environ.get("PYE2_INTEROP_HB", "5"))
BOOT_TIMEOUT = float(os.environ.get("PYE2_INTEROP_BOOT_TIMEOUT", "90"))
MQTT_URL = os.environ.get("PYE2_MQTT_URL", "mqtt://127.0.0.1:1883")
LATENCY_KEY = pytest.StashKey[list[tuple[str, str, str, float]]]()
_REPORTS = pytest.StashKey[dict[str, Any]]()


def _selected(config: pytest.Config) -> bool:
    if os.environ.get("PYE2_INTEROP", "") not in ("", "0", "false", "no"):
        return True
    expr = (config.getoption("markexpr", "") or "").replace("(", " ").replace(")", " ")
    words = expr.split()
    return any(w == "interop" and (i == 0 or words[i - 1] != "not") for i, w in enumerate(words))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Not selected: the suite's files are not collected at all (so no node starts)."""
    if not _selected(config) and collection_path.name.startswith("test_") and collection_path.suffix == ".py":
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A file named explicitly on the command line is collected anyway: skip its tests unless selected."""
    if _selected(config):
        return
    skip = pytest.mark.skip(reason="interop suite: run with PYE2_INTEROP=1 or -m interop (starts a real node)")
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[LATENCY_KEY] = []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(LATENCY_KEY, [])
    if not rows:
        return
    terminalreporter.section("interop: confirmation latencies (real node)")
    for mode, test, label, seconds in rows:
        terminalreporter.write_line(f"{mode:8s} {seconds * 1000:9.1f} ms  {label}  ({test})")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    item.stash.setdefault(_REPORTS, {})[rep.when] = rep
    return rep


# --------------------------------------------------------------------------- the node
@dataclass
class Node:
    """What the suite knows about the running node (from the broker, not from pye2)."""

    mode: str
    eth: bool
    root: str
    address: str
    alias: str
    hb_seconds: int
    process: Any  # node_oracle.NodeProcess
    sniffer: Any  # node_oracle.BrokerSniffer
    client_identity: Any  # pye2.Identity allowed on the node
    boot_seconds: float
    heartbeats: Callable[[float], list[Any]] = field(repr=False, default=lambda since: [])

    def allow(self, address: str) -> None:
        self.process.allow(address)


def _paths() -> tuple[Path, Path]:
    venv = Path(os.environ.get("PYE2_NODE_VENV", Path.home() / ".cache" / "ee-node")).expanduser()
    oracle = Path(os.environ.get("PYE2_ORACLE_DIR", REPO.parent / "shared" / "oracle")).expanduser()
    py = venv / "bin" / "python"
    if not (oracle / "run_node.sh").exists():
        pytest.skip(f"oracle scripts not found in {oracle} (set PYE2_ORACLE_DIR)")
    if not py.exists():
        pytest.skip(f"node venv not found at {venv}: build it with "
                    f"`VENV={venv} {oracle}/install_lean.sh` (~1.6 GB) or set PYE2_NODE_VENV")
    return oracle, py


def _broker() -> tuple[str, int]:
    parts = urlsplit(MQTT_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    if host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"the interop node runs on a loopback broker only, not {MQTT_URL}")
    import socket

    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        pytest.skip(f"Mosquitto not reachable at {host}:{port}")
    return host, port


@pytest.fixture(scope="session", params=MODES)
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real node in the requested signing mode, allow-listing ``node.client_identity``."""
    from node_oracle import BrokerSniffer, NodeProcess, same_body

    from pye2 import RATIO1, Identity

    mode = str(request.param)
    if mode not in ("eth_off", "eth_on"):
        raise pytest.UsageError(f"PYE2_INTEROP_MODES: unknown mode {mode!r} (eth_off, eth_on)")
    oracle, py = _paths()
    host, port = _broker()
    run_dir = tmp_path_factory.mktemp(f"node-{mode}")
    root = f"pye2it_{mode}_{uuid.uuid4().hex[:10]}"
    sniffer = BrokerSniffer(host, port, root, run_dir / "wire.jsonl").start()
    proc = NodeProcess(oracle, py, run_dir, root, eth=(mode == "eth_on"), hb_seconds=HB_SECONDS,
                       name=f"pye2it-{mode.replace('_', '-')}")
    t0 = time.monotonic()
    proc.start()
    print(f"\n[interop] {mode}: node starting in {run_dir} (root {root}, log {proc.log_path})", flush=True)
    try:
        hb = None
        while hb is None and time.monotonic() - t0 < BOOT_TIMEOUT:
            hb = sniffer.wait_for(lambda w: w.topic == f"{root}/ctrl" and w.kind == "HEARTBEAT", 1.0)
            if hb is None and not proc.alive():
                pytest.fail(f"the node exited ({proc.proc.returncode}) before its first heartbeat:\n"
                            + proc.log_tail())
        if hb is None:
            pytest.fail(f"no heartbeat from the node within {BOOT_TIMEOUT:.0f} s:\n" + proc.log_tail())
        boot = hb.at - t0
        request.config.stash[LATENCY_KEY].append((mode, f"run folder {run_dir}", "node start -> first heartbeat", boot))
        address, alias = str(hb.body.get("EE_SENDER")), str(hb.body.get("EE_ID"))
        print(f"[interop] {mode}: first heartbeat after {boot:.1f} s from {alias} {address} "
              f"(ETH fields: {'EE_ETH_SENDER' in hb.body})", flush=True)
        identity = Identity.generate()
        client_address = identity.address(RATIO1)
        proc.allow(client_address)
        # the heartbeat's EE_WHITELIST is what pye2 checks for NotAllowed: wait until it lists the client
        listed = sniffer.wait_for(
            lambda w: w.topic == f"{root}/ctrl" and w.kind == "HEARTBEAT"
            and any(same_body(a, client_address) for a in (w.body.get("EE_WHITELIST") or [])),
            4 * HB_SECONDS + 5, since=time.monotonic())
        if listed is None:
            print(f"[interop] {mode}: WARNING no heartbeat listed {client_address} within "
                  f"{4 * HB_SECONDS + 5} s", flush=True)

        def heartbeats(since: float) -> list[Any]:
            return sniffer.select(lambda w: w.topic == f"{root}/ctrl" and w.kind == "HEARTBEAT", since)

        yield Node(mode, mode == "eth_on", root, address, alias, HB_SECONDS, proc, sniffer, identity, boot,
                   heartbeats)
    finally:
        survivors = proc.stop()
        sniffer.stop()
        print(f"\n[interop] {mode}: node stopped (exit {proc.proc.returncode if proc.proc else None}); "
              f"run folder kept: {run_dir}", flush=True)
        if survivors:
            pytest.fail(f"node processes survived the kill: {survivors}")


# --------------------------------------------------------------------------- pye2 sessions
@dataclass
class SeenHeartbeat:
    at: float
    e2id: str
    pipelines: list[str]
    whitelist: list[str]
    status: Any
    secured: Any


@dataclass
class Client:
    """An allow-listed pye2 session on the node, and the heartbeats it delivered."""

    session: Any
    node: Node
    heartbeats: list[SeenHeartbeat]

    def next_heartbeat(self, after: float, timeout: float) -> SeenHeartbeat | None:
        """The first heartbeat pye2 delivered after ``after`` (time.monotonic())."""
        box: list[SeenHeartbeat] = []

        def found() -> bool:
            box[:] = [h for h in list(self.heartbeats) if h.at > after][:1]
            return bool(box)

        self.session.wait(found, timeout)
        return box[0] if box else None


def make_session(node: Node, identity: Any, *, heartbeats: list[SeenHeartbeat] | None = None,
                 name: str = "pye2-interop", **options: Any) -> Any:
    """A pye2 session on the node's private root topic (public API only)."""
    from pye2 import Session

    def on_hb(_s: Any, e2id: str, data: dict[str, Any]) -> None:
        if heartbeats is not None:
            heartbeats.append(SeenHeartbeat(
                time.monotonic(), e2id, [str(p.get("NAME")) for p in data.get("CONFIG_STREAMS") or []],
                list(data.get("EE_WHITELIST") or []), data.get("DEVICE_STATUS"), data.get("SECURED")))

    options.setdefault("command_timeout", 30.0)
    return Session(transport=MQTT_URL, profile="RATIO1", root_topic=node.root, identity=identity, name=name,
                   on_heartbeat=on_hb, **options)


@pytest.fixture(scope="session")
def client(node: Node) -> Iterator[Client]:
    """One allow-listed session per node, connected, the node online in it."""
    seen: list[SeenHeartbeat] = []
    sess = make_session(node, node.client_identity, heartbeats=seen)
    sess.connect()
    try:
        if not sess.wait_for_node(node.address, 3 * node.hb_seconds + 5):
            pytest.fail(f"pye2 did not see the node {node.address} online within {3 * node.hb_seconds + 5} s "
                        f"(stats {sess.stats.as_dict()})")
        yield Client(sess, node, seen)
    finally:
        print(f"\n[interop] {node.mode}: client stats {sess.stats.as_dict()}", flush=True)
        sess.close()


@pytest.fixture()
def session_factory(node: Node) -> Iterator[Callable[..., Any]]:
    """Extra sessions for one test (closed after it): ``session_factory(identity, **options)``."""
    made: list[Any] = []

    def factory(identity: Any, **options: Any) -> Any:
        sess = make_session(node, identity, **options)
        made.append(sess)
        return sess

    yield factory
    for sess in made:
        sess.close()


@pytest.fixture()
def latency(request: pytest.FixtureRequest, node: Node) -> Callable[[str], Any]:
    """``with latency("create pipeline"): ...`` records and prints how long the block took."""
    rows = request.config.stash[LATENCY_KEY]

    @contextmanager
    def measure(label: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            dt = time.monotonic() - t0
            rows.append((node.mode, request.node.originalname, label, dt))
            print(f"[interop] {node.mode}: {label}: {dt * 1000:.1f} ms", flush=True)

    return measure


@pytest.fixture(autouse=True)
def _evidence_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """On a failure, print what the node logged and notified during the test (signature, allow-list...)."""
    if "node" not in request.fixturenames:
        yield
        return
    node: Node = request.getfixturevalue("node")
    offset, since = node.process.log_size(), time.monotonic()
    yield
    reps = request.node.stash.get(_REPORTS, {})
    if not any(r.failed for r in reps.values()):
        return
    keys = ("Corrupted", "invalid command", "not allowed", "Not allowed", "authoriz", "whitelist", "ERROR",
            "Exception", "Traceback", "Received", "command")
    lines = [ln for ln in node.process.log_since(offset).splitlines() if any(k in ln for k in keys)]
    notes = node.sniffer.select(lambda w: w.kind == "NOTIFICATION", since)
    out = [f"--- node log lines during the test ({len(lines)}) ---", *lines[-60:],
           f"--- notifications during the test ({len(notes)}) ---"]
    out += [f"{n.body.get('NOTIFICATION_TYPE')} {n.body.get('NOTIFICATION_CODE')} "
            f"{n.body.get('STREAM_NAME')}: {str(n.body.get('NOTIFICATION'))[:200]}" for n in notes[-40:]]
    sys.stdout.write("\n".join(out) + "\n")
