"""The ``pye2`` CLI, run in-process through ``main([...])`` with temporary paths."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pye2.cli import main
from pye2.wire import AIXP, RATIO1, Identity


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _new_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Path:
    path = tmp_path / "key.pem"
    code, _, err = _run(capsys, "keys", "new", "--out", str(path), *extra)
    assert code == 0, err
    return path


def test_keys_new_writes_0600_and_prints_addresses_not_the_key(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "key.pem"
    code, out, _ = _run(capsys, "keys", "new", "--out", str(path))
    assert code == 0
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    identity = Identity.load(path)
    assert identity.address(AIXP) in out and identity.address(RATIO1) in out and identity.eth_address in out
    assert "PRIVATE KEY" not in out
    pem_body = "".join(path.read_text().splitlines()[1:-1])
    assert pem_body[:20] not in out


def test_keys_new_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _new_key(tmp_path, capsys)
    before = path.read_bytes()
    code, out, err = _run(capsys, "keys", "new", "--out", str(path))
    assert code == 1 and "already exists" in err and out == ""
    assert path.read_bytes() == before


def test_password_from_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYE2_TEST_PASSWORD", "s3cret")
    path = _new_key(tmp_path, capsys, "--password-env", "PYE2_TEST_PASSWORD")
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    address = Identity.load(path, "s3cret").address(RATIO1)
    code, out, _ = _run(capsys, "keys", "address", str(path), "--password-env", "PYE2_TEST_PASSWORD")
    assert code == 0 and address in out
    code, _, err = _run(capsys, "keys", "address", str(path))
    assert code == 1 and "password" in err
    code, _, err = _run(capsys, "keys", "address", str(path), "--password-env", "PYE2_UNSET_VARIABLE")
    assert code == 1 and "PYE2_UNSET_VARIABLE" in err


@pytest.mark.parametrize("profile", ["aixp", "ratio1"])
def test_sign_then_verify_files(profile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = _new_key(tmp_path, capsys)
    message = tmp_path / "message.json"
    message.write_text(json.dumps({"EE_ID": "node-a", "ACTION": "UPDATE_CONFIG", "PAYLOAD": {"F": 1.0, "N": None}}))
    code, out, err = _run(capsys, "sign", "--key", str(key), "--profile", profile, str(message))
    assert code == 0, err
    signed = json.loads(out)
    assert signed["EE_SENDER"] == Identity.load(key).address(AIXP if profile == "aixp" else RATIO1)
    assert ("SIGN_CANON_V" in signed) == (profile == "ratio1")
    signed_path = tmp_path / "signed.json"
    signed_path.write_text(out)
    code, out, err = _run(capsys, "verify", "--profile", profile, str(signed_path))
    assert code == 0 and out.strip() == signed["EE_SENDER"] and err == ""


def test_verify_rejects_tampering_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = _new_key(tmp_path, capsys)
    message = tmp_path / "message.json"
    message.write_text('{"ACTION": "X", "PAYLOAD": 1}')
    _, out, _ = _run(capsys, "sign", "--key", str(key), str(message))
    signed = json.loads(out)
    signed["PAYLOAD"] = 2
    message.write_text(json.dumps(signed))
    code, out, err = _run(capsys, "verify", str(message))
    assert code == 1 and out == "" and "Corrupted digest" in err


def test_stdin_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    key = _new_key(tmp_path, capsys)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"A": [1, 2.5]}'))
    code, out, _ = _run(capsys, "sign", "--key", str(key), "--profile", "RATIO1", "-")
    assert code == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(out))
    code, out, _ = _run(capsys, "verify", "--profile", "ratio1")
    assert code == 0 and out.strip() == Identity.load(key).address(RATIO1)


def test_verify_the_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str], vectors: Callable[[str], Any]) -> None:
    for case in vectors("signatures.json")["cases"]:
        if case["canon"] != "v2":
            continue
        path = tmp_path / f"{case['id']}.json"
        path.write_text(json.dumps(case["signed"]))
        code, out, _ = _run(capsys, "verify", "--profile", "ratio1", str(path))
        assert code == 0 and out.strip() == case["signed"]["EE_SENDER"]


@pytest.mark.parametrize(("content", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_bad_input(content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.json"
    path.write_text(content)
    code, _, err = _run(capsys, "verify", str(path))
    assert code == 1 and message in err
    code, _, err = _run(capsys, "verify", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err


def test_missing_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.json"
    path.write_text("{}")
    code, _, err = _run(capsys, "sign", "--key", str(tmp_path / "nokey.pem"), str(path))
    assert code == 1 and "cannot read key file" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["verify", "--profile", "nope"], [], ["keys"], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    capsys.readouterr()


def test_selftest_runs_and_checks_itself(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "selftest")
    assert code == 0
    assert "rejected: Corrupted digest" in out and "rejected: bad signature" in out
    assert "all checks passed" in out


def test_python_dash_m_pye2() -> None:
    result = subprocess.run([sys.executable, "-m", "pye2", "--version"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("pye2 ")


def test_demo_writes_nodes_primes_and_frames(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "demo", "--out", str(tmp_path / "out"))
    assert code == 0, out
    assert f"output written to {(tmp_path / 'out').resolve()}" in out
    nodes = json.loads((tmp_path / "out" / "nodes.json").read_text())
    primes = json.loads((tmp_path / "out" / "primes.json").read_text())
    assert len(nodes) == 3 and all(v["cpu"] for v in nodes.values())
    assert len(primes) == 2 and all(primes.values())
    frames = list((tmp_path / "out" / "person_tracking").glob("img_*.jpeg"))
    assert len(frames) >= 10


def test_plugin_commands_are_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "demo" in out and "sim" in out and "selftest" in out
