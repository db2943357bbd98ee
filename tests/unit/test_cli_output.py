"""The network commands' printer without a network: plain tables, JSON lines, progress, hostile text."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pye2.cli_net._options import mask
from pye2.cli_net._output import Output, safe, safe_lines


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_table_aligns_columns_and_json_lines_are_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYE2_CLI_PLAIN", "1")
    out = io.StringIO()
    Output(False, out=out).table(("A", "LONGER"), [["x", "1"], ["yyy", "22"]], title="t")
    assert out.getvalue().splitlines() == ["t", "A    LONGER", "x    1", "yyy  22"]
    out = io.StringIO()
    Output(True, out=out).record({"text": "caf\u00e9 \u202e\x9b"})
    line = out.getvalue()
    assert line.isascii() and json.loads(line) == {"text": "caf\u00e9 \u202e\x9b"}


def test_progress_is_a_line_on_a_terminal_cleared_at_the_end_and_nothing_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYE2_CLI_PLAIN", "1")
    err = _Terminal()
    printer = Output(False, out=io.StringIO(), err=err)
    with printer.progress("waiting") as bar:
        bar.update("still waiting")
    text = err.getvalue()
    assert text.startswith("\rwaiting\rstill waiting") and text.endswith("\r" + " " * 13 + "\r")
    quiet = io.StringIO()
    with Output(False, out=io.StringIO(), err=quiet).progress("waiting") as bar:
        bar.update("more")
    with Output(True, out=io.StringIO(), err=err).progress("json mode"):
        pass
    assert quiet.getvalue() == "" and "json mode" not in err.getvalue()


def test_node_controlled_text_cannot_drive_the_terminal_and_secrets_are_masked() -> None:
    assert safe("\x1b[2Jname\nnext") == "\\x1b[2Jname\\x0anext"
    assert safe_lines("line one\n\x1b]0;title\x07") == "line one\n\\x1b]0;title\\x07"
    assert safe(None) == "" and len(safe("x" * 500, 50)) < 80
    assert mask("mqtt://u:pw@h failed: pw", ("pw",)) == "mqtt://u:***@h failed: ***"


def test_the_options_resolve_like_a_session_and_know_the_password_in_every_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from pye2.cli_net._options import add_connection_options, connection

    parser = argparse.ArgumentParser()
    add_connection_options(parser)
    env = tmp_path / ".env"
    env.write_text("PYE2_ROOT=from-file\nPYE2_PROFILE=ratio1\n")
    for key in ("PYE2_ROOT", "PYE2_PROFILE", "PYE2_TRANSPORT", "PYE2_IDENTITY", "PYE2_PASS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PYE2_HOME", str(tmp_path))
    conn = connection(parser.parse_args(["--broker", "mqtt://me:p%2Fw@host:1883", "--env-file", str(env)]))
    assert conn.root == "from-file" and conn.settings.profile == "ratio1"
    assert conn.broker == "mqtt://me:***@host:1883" and not conn.identity_explicit
    assert conn.identity_path == tmp_path / "_pk_sdk.pem"
    assert conn.scrub("refused p%2Fw and p/w") == "refused *** and ***"
    monkeypatch.setenv("PYE2_ROOT", "from-env")
    assert connection(parser.parse_args(["--env-file", str(env)])).root == "from-env"
    assert connection(parser.parse_args(["--env-file", str(env), "--root", "opt"])).root == "opt"
