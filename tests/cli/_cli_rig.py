"""Rig of the network commands' tests: ``pye2 sim`` on Mosquitto under a private root, and a runner.

Each test module gets one ``pye2 sim`` subprocess (two nodes, 1 s heartbeats, keys from a
seed, a private root topic) that allow-lists the identity in ``me.pem`` and not the one in
``other.pem``; it is interrupted (and killed if it lingers) when the module ends. Commands
run as processes (``python -m pye2 ...``) in an empty folder, with PYE2_* variables
cleared and PYE2_HOME pointing into a temporary folder, so nothing outside is read or written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pye2.domain.profiles import AIXP
from pye2.wire import Identity

ROOT = Path(__file__).resolve().parents[2]
NODES = ("sim-node-1", "sim-node-2")


@dataclass
class Sim:
    """A running ``pye2 sim`` and what the tests need to talk to it."""

    broker: str
    root: str
    work: Path
    me: Path
    other: Path
    me_address: str
    other_address: str
    startup: str
    proc: subprocess.Popen[str]
    addresses: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYE2_") and k not in ("FORCE_COLOR", "NO_COLOR")}
        env.update(PYE2_HOME=str(self.work / "home"), PYTHONPATH=str(ROOT), COLUMNS="200")
        env.update(extra)
        return env

    def options(self, identity: Path | None = None) -> list[str]:
        return ["--broker", self.broker, "--root", self.root, "--identity", str(identity or self.me)]

    def run(self, *argv: str, identity: Path | None = None, connection: bool = True, timeout: float = 60,
            env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``pye2 ARGV [connection options]`` to completion."""
        args = [sys.executable, "-m", "pye2", *argv, *(self.options(identity) if connection else [])]
        return subprocess.run(args, cwd=cwd or self.work, env=env or self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self, *argv: str, identity: Path | None = None) -> subprocess.Popen[str]:
        """``pye2 ARGV [connection options]`` in the background (the caller stops it)."""
        return subprocess.Popen([sys.executable, "-m", "pye2", *argv, *self.options(identity)], cwd=self.work,
                                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    """Signal ``proc``, collect its output; killed if it does not end within 20 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def one_error_line(err: str) -> str:
    """The single ``error:`` line a failed command leaves on stderr (asserts there is exactly one line)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def start_sim(broker: str, work: Path) -> Sim:
    """Start ``pye2 sim`` (two nodes, 1 s heartbeats, a private root) allow-listing ``work/me.pem``'s identity."""
    (work / "home").mkdir(exist_ok=True)
    me, other = Identity.generate(), Identity.generate()
    me.save(work / "me.pem")
    other.save(work / "other.pem")
    root = f"pye2-cli-test-{uuid.uuid4().hex[:10]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pye2", "sim", "--broker", broker, "--root", root, "--nodes", ",".join(NODES),
         "--heartbeat-interval", "1", "--seed", "11", "--allow", me.address(AIXP)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("allow-list"):
        line = proc.stdout.readline()
        if not line:
            stop(proc)
            raise AssertionError("pye2 sim did not start: " + "".join(lines)
                                 + (proc.stderr.read() if proc.stderr else ""))
        lines.append(line)
    addresses = {parts[0]: parts[1] for parts in (line.split() for line in lines if line.startswith("  "))}
    return Sim(broker=broker, root=root, work=work, me=work / "me.pem", other=work / "other.pem",
               me_address=me.address(AIXP), other_address=other.address(AIXP), startup="".join(lines),
               proc=proc, addresses=addresses)
