"""``pye2 sim``: options, keys that persist, allow-lists from the command line and a file, clear errors."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pye2 import Session
from pye2.domain.profiles import RATIO1
from pye2.errors import NotAllowed
from pye2.wire import Identity
from pye2_transport_memory import cli
from pye2_transport_memory.cli import add_sim_arguments, run_sim

ROOT = Path(__file__).resolve().parents[2]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    return parser.parse_args(list(argv))


def _run(*argv: str) -> tuple[int, str]:
    stop = threading.Event()
    stop.set()
    out = io.StringIO()
    return run_sim(_args(*argv), stop=stop, out=out), out.getvalue()


def test_names_root_and_a_summary_of_who_may_command_the_nodes() -> None:
    friend = Identity.generate().address(RATIO1)
    code, text = _run("--broker", "memory://default", "--nodes", "alpha,beta", "--root", "myroot",
                      "--profile", "ratio1", "--allow", friend, "--seed", "3")
    assert code == 0
    assert "alpha" in text and "beta" in text and "'myroot'" in text and friend in text
    assert "for tests: not secret" in text


def test_without_an_allow_list_only_the_nodes_themselves_and_allow_any_warns() -> None:
    assert "only these nodes themselves" in _run("--broker", "memory://default")[1]
    code, text = _run("--broker", "memory://default", "--allow-any")
    assert code == 0 and "ANYONE" in text and "allow-list: anyone" in text


def test_seed_and_state_do_not_go_together() -> None:
    with pytest.raises(SystemExit):
        _args("--broker", "memory://x", "--seed", "1", "--state", "/tmp/x")


def test_state_keeps_the_node_addresses_across_restarts_and_random_keys_differ(tmp_path: Path) -> None:
    def addresses(text: str) -> list[str]:
        return [line.split()[1] for line in text.splitlines() if line.startswith("  ")]

    first = addresses(_run("--broker", "memory://default", "--nodes", "2", "--state", str(tmp_path))[1])
    again = addresses(_run("--broker", "memory://default", "--nodes", "2", "--state", str(tmp_path))[1])
    assert first == again and len(first) == 2
    assert all((tmp_path / f"sim-node-{i}.pem").stat().st_mode & 0o077 == 0 for i in (1, 2))
    fresh = addresses(_run("--broker", "memory://default", "--nodes", "2")[1])
    assert set(fresh).isdisjoint(first)


def test_bad_options_give_one_line_and_a_non_zero_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "allow.txt"
    bad.write_text("not-an-address\n")
    assert _run("--broker", "memory://default", "--allow-file", str(bad))[0] == 2
    assert _run("--broker", "memory://default", "--allow-file", str(tmp_path / "missing.txt"))[0] == 2
    assert _run("--broker", "memory://default", "--allow-any", "--allow", Identity.generate().address(RATIO1))[0] == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "line 1" in err
    with pytest.raises(SystemExit):
        _args("--broker", "memory://x", "--nodes", "a/b")


def test_the_allow_file_is_read_again_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "ALLOW_FILE_POLL", 0.05)
    a, b = Identity.generate().address(RATIO1), Identity.generate().address(RATIO1)
    allow = tmp_path / "authorized_addrs"
    allow.write_text(f"# who may command\n{a} alice\n")
    seen: list[Any] = []
    real = cli._watch_allow_file

    def spy(network: Any, *rest: Any) -> None:
        seen.append(network)
        real(network, *rest)

    monkeypatch.setattr(cli, "_watch_allow_file", spy)
    stop = threading.Event()
    out = io.StringIO()
    runner = threading.Thread(target=run_sim, args=(_args("--broker", "memory://default", "--nodes", "1",
                                                          "--allow-file", str(allow)),),
                              kwargs={"stop": stop, "out": out})
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        node = next(iter(seen[0].nodes.values()))
        assert node.is_allowed(a) and not node.is_allowed(b)
        allow.write_text(f"{a}\n{b} bob   # added\n")
        os.utime(allow, ns=(time.time_ns(), time.time_ns() + 10**9))
        while not node.is_allowed(b) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert node.is_allowed(b) and "reloaded" in out.getvalue()
    finally:
        stop.set()
        runner.join(10)


@pytest.mark.mqtt
@pytest.mark.timeout(90)
def test_pye2_sim_on_mosquitto_takes_commands_only_from_its_allow_list(mqtt_url: str) -> None:
    root = f"pye2cli{uuid.uuid4().hex[:8]}"
    friend, stranger = Identity.generate(), Identity.generate()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pye2", "sim", "--broker", mqtt_url, "--root", root, "--nodes", "2",
         "--profile", "ratio1", "--heartbeat-interval", "1", "--allow", friend.address(RATIO1)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert "simulated node(s)" in header, header + (proc.stderr.read() if proc.poll() is not None else "")
        nodes = [proc.stdout.readline().split()[0] for _ in range(2)]
        sessions = [Session(transport=mqtt_url, profile="RATIO1", root_topic=root, identity=who, command_timeout=4)
                    for who in (friend, stranger)]
        for s in sessions:
            s.connect()
            assert all(s.wait_for_node(n, 30) for n in nodes)
        ok = sessions[0].create_pipeline(e2id=nodes[0], name="friend", wait=True)
        assert ok.confirmation.ok
        with pytest.raises(NotAllowed) as err:  # the heartbeat lists only the friend: refused by the next one
            sessions[1].create_pipeline(e2id=nodes[0], name="stranger", wait=True)
        assert stranger.address(RATIO1) in str(err.value) and "--allow" in str(err.value)
        for s in sessions:
            s.close()
    finally:
        proc.send_signal(2)  # Ctrl-C
        try:
            code = proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
