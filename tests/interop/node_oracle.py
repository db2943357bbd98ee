"""A real Execution Engine node (naeural-core 7.7.336) as a subprocess, and a broker sniffer.

Used by the opt-in interop suite (``tests/interop``). The node runs from the
oracle scripts (``../shared/oracle``: ``run_node.sh``, lean venv built by
``install_lean.sh``), unchanged, in a private run folder with a private root
topic on the loopback Mosquitto. Nothing here imports pye2: the sniffer is
plain paho, so it sees what really crossed the broker.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

__all__ = ["BrokerSniffer", "NodeProcess", "Wire", "same_body"]

#: the node gets SIGKILL should the test process die without tearing down (util-linux; PR_SET_PDEATHSIG)
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []


def same_body(a: object, b: object) -> bool:
    """Two addresses of one key, prefixed (``0xai_``/``aixp_``) or not (a real node's ``EE_WHITELIST`` has none)."""
    def body(x: object) -> str:
        s = str(x)
        return s[5:] if s.startswith(("0xai_", "aixp_")) else s

    return body(a) == body(b)


def inflate(msg: dict[str, Any]) -> dict[str, Any]:
    """A v2 heartbeat's ``ENCODED_DATA`` merged over its envelope (other messages as they are)."""
    enc = msg.get("ENCODED_DATA")
    if not isinstance(enc, str):
        return msg
    try:
        inner = json.loads(zlib.decompress(base64.b64decode(enc)).decode("utf-8"))
    except (ValueError, zlib.error):
        return msg
    return {**msg, **inner}


@dataclass
class Wire:
    """One message seen on the broker."""

    at: float  # time.monotonic() when received
    topic: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("EE_EVENT_TYPE") or self.body.get("ACTION") or "?")


@dataclass
class BrokerSniffer:
    """Everything published under ``<root>/#``, kept in memory and appended to a JSONL file."""

    host: str
    port: int
    root: str
    dump: Path
    messages: list[Wire] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _client: Any = None

    def start(self) -> BrokerSniffer:
        cli = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pye2-interop-sniff-{os.getpid()}-{self.root}")
        subscribed = threading.Event()
        cli.on_connect = lambda c, *_: c.subscribe(self.root + "/#", qos=1)
        cli.on_subscribe = lambda *_: subscribed.set()
        cli.on_message = self._on_message
        cli.connect(self.host, self.port)
        cli.loop_start()
        self._client = cli
        if not subscribed.wait(10):
            raise RuntimeError(f"sniffer could not subscribe to {self.root}/# on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _on_message(self, _c: Any, _u: Any, m: Any) -> None:
        try:
            body = json.loads(m.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = {"_non_json_bytes": len(m.payload)}
        if not isinstance(body, dict):
            body = {"_json": body}
        if body.get("EE_EVENT_TYPE") == "HEARTBEAT":
            body = inflate(body)
        wire = Wire(time.monotonic(), m.topic, body)
        with self._cond:
            self.messages.append(wire)
            self._cond.notify_all()
        try:
            with self.dump.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"t": time.time(), "topic": m.topic, "body": body}, default=str) + "\n")
        except OSError:
            pass

    def wait_for(self, pred: Callable[[Wire], bool], timeout: float, since: float = 0.0) -> Wire | None:
        """The first message (received at or after ``since``) matching ``pred``, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for w in self.messages[seen:]:
                    if w.at >= since and pred(w):
                        return w
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def select(self, pred: Callable[[Wire], bool], since: float = 0.0) -> list[Wire]:
        with self._cond:
            return [w for w in self.messages if w.at >= since and pred(w)]


@dataclass
class NodeProcess:
    """``run_node.sh`` in ``run_dir`` for one root topic and signing mode; stopped by its process group id."""

    oracle: Path
    node_python: Path
    run_dir: Path
    root: str
    eth: bool
    hb_seconds: int = 5
    name: str = "pye2-interop"
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    address: str | None = None
    alias: str | None = None
    first_heartbeat_s: float | None = None

    def __post_init__(self) -> None:
        self.log_path = self.run_dir / "node_stdout.log"

    @property
    def authorized_addrs(self) -> Path:
        return self.run_dir / "_local_cache" / "authorized_addrs"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("EE_", "PYE2_", "VIRTUAL_ENV")) and k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(NODE_PY=str(self.node_python), RUN_DIR=str(self.run_dir), NODE_LEAN="1",
                   PYTHONPATH=str(self.oracle / "lean_stubs"), EE_ID=self.name)
        if self.eth:
            env["EE_ETH_ENABLED"] = "true"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*_DIE_WITH_PARENT, "bash", str(self.oracle / "run_node.sh"), "--root-topic", self.root,
                 "--hb-seconds", str(self.hb_seconds), "--node-id", self.name],
                cwd=self.run_dir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return "(no node log)"

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def allow(self, address: str) -> None:
        """Append ``address`` to the node's allow-list (the node re-reads it on every command)."""
        self.authorized_addrs.parent.mkdir(parents=True, exist_ok=True)
        with self.authorized_addrs.open("a", encoding="utf-8") as fh:
            fh.write(address + "\n")

    def _group_members(self) -> list[int]:
        if self.proc is None:
            return []
        pgid, found = self.proc.pid, []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def stop(self, grace: float = 15.0) -> list[int]:
        """SIGTERM the node's process group, SIGKILL what is left after ``grace`` s; returns survivors (none)."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not self._group_members():
                    break
                time.sleep(0.2)
            if self.proc.poll() is not None and not self._group_members():
                break
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        return self._group_members()
