"""The connection options every network command shares: environment and ``.env``, failures in one line."""

from __future__ import annotations

import json
import stat

import pytest
from _cli_rig import NODES, Sim, one_error_line

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]

#: each network command with the arguments it needs (beyond the connection options)
COMMANDS = [("nodes", "--wait", "1"), ("nodes", "--watch"), ("pipelines", "sim-node-1"),
            ("archive", "sim-node-1", "p"), ("watch",), ("exec", "sim-node-1", "code.py"), ]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_broker_down_is_one_line_exit_1_without_the_password(sim: Sim, unused_broker: str,
                                                             argv: tuple[str, ...]) -> None:
    (sim.work / "code.py").write_text("_result = 1\n")
    done = sim.run(*argv, "--broker", unused_broker, "--identity", str(sim.me), connection=False, timeout=30)
    assert done.returncode == 1 and done.stdout == ""
    line = one_error_line(done.stderr)
    assert "cannot connect to MQTT broker mqtt://user:***@127.0.0.1:" in line and "Connection refused" in line
    assert "s3cret-pw" not in done.stderr


def test_settings_come_from_env_file_and_environment_with_options_winning(sim: Sim) -> None:
    folder = sim.work / "project"
    folder.mkdir()
    (folder / ".env").write_text(f"# settings\nPYE2_TRANSPORT={sim.broker}\nPYE2_ROOT={sim.root}\n"
                                 f"PYE2_IDENTITY='{sim.other}'\n")
    from_file = sim.run("nodes", "--wait", "2", "--json", connection=False, cwd=folder)
    assert from_file.returncode == 0, from_file.stderr
    rows = [json.loads(line) for line in from_file.stdout.splitlines()]
    assert [r["node"] for r in rows] == list(NODES) and {r["allows_me"] for r in rows} == {False}
    # the environment beats .env (an allow-listed identity now), an option beats both (a root with no nodes)
    env = sim.env(PYE2_IDENTITY=str(sim.me))
    from_env = sim.run("nodes", "--wait", "2", "--json", connection=False, cwd=folder, env=env)
    assert {json.loads(line)["allows_me"] for line in from_env.stdout.splitlines()} == {True}
    elsewhere = sim.run("nodes", "--wait", "1", "--root", sim.root + "-x", connection=False, cwd=folder, env=env)
    assert elsewhere.returncode == 0 and elsewhere.stdout.startswith("no node heard in 1 s")


def test_the_default_identity_is_made_in_pye2_home_as_session_does(sim: Sim) -> None:
    home = sim.work / "fresh-home"
    done = sim.run("nodes", "--wait", "1", "--broker", sim.broker, "--root", sim.root, connection=False,
                   env=sim.env(PYE2_HOME=str(home)))
    assert done.returncode == 0, done.stderr
    key = home / "_pk_sdk.pem"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_bad_settings_are_one_line(sim: Sim) -> None:
    missing = sim.run("nodes", "--identity", str(sim.work / "nope.pem"), "--broker", sim.broker, connection=False)
    assert missing.returncode == 1
    assert "does not exist (make one: pye2 keys new --out" in one_error_line(missing.stderr)
    bad_root = sim.run("nodes", "--root", "a/#", "--broker", sim.broker, connection=False)
    assert bad_root.returncode == 2 and "--root" in one_error_line(bad_root.stderr)
    nothing = sim.run("nodes", "--identity", str(sim.me), connection=False)
    assert nothing.returncode == 2 and "no broker configured" in one_error_line(nothing.stderr)


def test_rich_tables_on_a_terminal_and_plain_text_on_request(sim: Sim) -> None:
    pytest.importorskip("rich")
    fancy = sim.run("nodes", "--wait", "2", env=sim.env(FORCE_COLOR="1", TERM="xterm-256color"))
    assert fancy.returncode == 0 and "━" in fancy.stdout and "\x1b[" in fancy.stdout
    assert all(node in fancy.stdout for node in NODES)
    plain = sim.run("nodes", "--wait", "2", env=sim.env(FORCE_COLOR="1", PYE2_CLI_PLAIN="1"))
    assert "━" not in plain.stdout and "\x1b[" not in plain.stdout and plain.stdout.startswith("2 node(s) heard")


#: ``python -m pye2`` with rich impossible to import, as after ``pip install pye2`` without the cli extra
_WITHOUT_RICH = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] == 'rich':
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
from pye2.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_rich_a_terminal_gets_plain_text(sim: Sim) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WITHOUT_RICH, "pipelines", "sim-node-1", *sim.options()],
                          cwd=sim.work, env=sim.env(FORCE_COLOR="1"), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split() == ["PIPELINE", "TYPE", "SIGNATURE", "INSTANCE"]
    assert "\x1b[" not in done.stdout
