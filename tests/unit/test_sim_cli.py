"""``pye2 sim``: options, keys that persist, allow-lists from the command line and a file, clear errors."""

from __future__ import annotations

import argparse
import io
import os
import signal
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
from pye2.errors import CommandTimeout, NotAllowed
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
                                                          "--allow-file", str(allow), "--allow-file-poll", "0.05"),),
                              kwargs={"stop": stop, "out": out})
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        node = next(iter(seen[0].nodes.values()))
        assert node.is_allowed(a) and not node.is_allowed(b)
        assert f"allow-file: {allow}" in out.getvalue()
        allow.write_text(f"{a}\n{b} bob   # added\n")
        os.utime(allow, ns=(time.time_ns(), time.time_ns() + 10**9))
        while not node.is_allowed(b) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert node.is_allowed(b) and "reloaded" in out.getvalue()
        allow.write_text("garbage\n")  # a bad edit keeps the last good list and says why
        os.utime(allow, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        while "unchanged" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "line 1" in out.getvalue() and node.is_allowed(a) and node.is_allowed(b)
        allow.unlink()  # gone: the same
        while out.getvalue().count("unchanged") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert node.is_allowed(b)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()


def test_poll_interval_and_addresses_are_checked() -> None:
    for bad in ("0", "-1", "x"):
        with pytest.raises(SystemExit):
            _args("--broker", "memory://x", "--allow-file-poll", bad)
    assert _args("--broker", "memory://x").allow_file_poll == cli.ALLOW_FILE_POLL
    assert _run("--broker", "memory://default", "--allow", "not-an-address")[0] == 2


def test_an_unreachable_broker_is_one_line_and_exit_1_without_the_password(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run("--broker", "mqtt://user:s3cret@127.0.0.1:1", "--nodes", "1")
    err = capsys.readouterr().err
    assert code == 1 and text == ""
    assert err.count("\n") == 1 and err.startswith("error: cannot start") and "s3cret" not in err, err


#: runs ``pye2`` with numpy and pillow impossible to import, as after ``pip install 'pye2[mqtt]'``
_WITHOUT_IMAGES = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in ('numpy', 'PIL'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
for name in [m for m in sys.modules if m.partition('.')[0] in ('numpy', 'PIL')]:
    del sys.modules[name]
from pye2.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start(*argv: str, without_images: bool = False) -> tuple[subprocess.Popen[str], str]:
    """``pye2 sim ...`` in a subprocess; returns it and its start-up output (up to the allow-list line)."""
    head = ["-c", _WITHOUT_IMAGES] if without_images else ["-m", "pye2"]
    proc = subprocess.Popen([sys.executable, *head, "sim", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("allow-list"):
        line = proc.stdout.readline()
        if not line:
            proc.wait(10)
            raise AssertionError("pye2 sim did not start: " + "".join(lines) + (proc.stderr.read() if proc.stderr else ""))
        lines.append(line)
    return proc, "".join(lines)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


@pytest.mark.timeout(60)
def test_without_numpy_and_pillow_it_starts_and_says_once_which_extra_to_install() -> None:
    proc, text = _start("--broker", "memory://default", "--nodes", "a,b", "--seed", "1", without_images=True)
    code, out, err = _stop(proc)
    assert "a  " in text and "b  " in text and code == 0 and "stopping" in out
    assert err.count("pip install 'pye2[images]'") == 1, err
    assert "OBJECT_TRACKING_01" in err and "VideoFile" in err and "numpy" in err and "pillow" in err
    assert "Traceback" not in err


def test_without_numpy_the_catalog_keeps_every_plugin_it_can_load() -> None:
    check = _WITHOUT_IMAGES.replace("from pye2.cli import main\nsys.exit(main(sys.argv[1:]))", """
from pye2_transport_memory.node.plugins.catalog import default_plugins, default_sources
print(sorted(p.SIGNATURE for p in default_plugins()))
print(sorted(t for s in default_sources() for t in s.TYPES))
print(sorted(m for m in sys.modules if m.partition('.')[0] in ('numpy', 'PIL')))
""")
    done = subprocess.run([sys.executable, "-c", check], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    plugins, sources, loaded = done.stdout.splitlines()
    for signature in ("CUSTOM_EXEC_01", "REST_CUSTOM_EXEC_01", "SIMPLE_COUNTER", "SIMPLE_ECHO", "NET_MON_01"):
        assert repr(signature) in plugins
    assert "OBJECT_TRACKING_01" not in plugins and "VideoFile" not in sources
    assert "'IotQueueListener'" in sources and "'Void'" in sources and loaded == "[]"
    assert done.stderr.count("pye2[images]") == 1


@pytest.mark.timeout(60)
def test_sigterm_stops_it_cleanly_too() -> None:
    proc, text = _start("--broker", "memory://default", "--nodes", "1")
    assert "random, new at every start" in text
    code, out, err = _stop(proc, signal.SIGTERM)
    assert code == 0 and "stopping" in out and "Traceback" not in err


@pytest.mark.mqtt
@pytest.mark.timeout(90)
def test_pye2_sim_on_mosquitto_takes_commands_only_from_its_allow_list(mqtt_url: str) -> None:
    root = f"pye2cli{uuid.uuid4().hex[:8]}"
    friend, stranger = Identity.generate(), Identity.generate()
    proc, text = _start("--broker", mqtt_url, "--root", root, "--nodes", "2", "--profile", "ratio1",
                        "--heartbeat-interval", "1", "--allow", friend.address(RATIO1))
    try:
        assert f"root topic {root!r}" in text and friend.address(RATIO1) in text
        nodes = [line.split()[0] for line in text.splitlines() if line.startswith("  ")]
        assert len(nodes) == 2
        sessions = [Session(transport=mqtt_url, profile="RATIO1", root_topic=root, identity=who, command_timeout=4)
                    for who in (friend, stranger)]
        try:
            for s in sessions:
                s.connect()
                assert all(s.wait_for_node(n, 30) for n in nodes)
            ok = sessions[0].create_pipeline(e2id=nodes[0], name="friend", wait=True)
            assert ok.confirmation.ok
            # no confirmation for the stranger: the session says NotAllowed as soon as a heartbeat lists
            # only the friend (CommandTimeout if none came in time)
            with pytest.raises((NotAllowed, CommandTimeout)) as err:
                sessions[1].create_pipeline(e2id=nodes[0], name="stranger", wait=True)
            if isinstance(err.value, NotAllowed):
                assert stranger.address(RATIO1) in str(err.value) and "--allow" in str(err.value)
        finally:
            for s in sessions:
                s.close()
    finally:
        code, _, err_text = _stop(proc)  # Ctrl-C
    assert code == 0
    assert "dropped: not in its allow-list" in err_text  # the node says whom it refused
