"""Secrets never show in a repr, a str, an error or a log: passwords and private keys.

A private key file that group or others may read or write is refused (as OpenSSH does)
unless allowed knowingly.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from pye2 import Session
from pye2.domain.profiles import AIXP
from pye2.errors import ConfigError, IdentityError, Pye2Error
from pye2.plugins import default_host
from pye2.service.settings import resolve_settings
from pye2.wire import Identity
from pye2_transport_amqp.config import AmqpConfig
from pye2_transport_mqtt.config import MqttConfig

SECRET = "s3cr3t-Pw-9f1"


def _shown(obj: Any) -> str:
    return repr(obj) + " " + str(obj)


def test_configs_and_settings_mask_the_password() -> None:
    mqtt = MqttConfig.from_url(f"mqtt://alice:{SECRET}@127.0.0.1:1883")
    amqp = AmqpConfig.from_url(f"amqp://alice:{SECRET}@127.0.0.1:5672/")
    settings = resolve_settings(host="127.0.0.1", port=1883, user="alice", pwd=SECRET, transport=None, profile=None)
    for obj in (mqtt, amqp, settings, mqtt.safe_url, amqp.safe_url):
        assert SECRET not in _shown(obj)
    assert mqtt.password == SECRET and amqp.password == SECRET  # kept, just never shown


@pytest.mark.parametrize("scheme", ["mqtt", "amqp"])
def test_sessions_transports_and_connect_errors_never_show_the_password(
        scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{scheme}://alice:{SECRET}@127.0.0.1:1/"
    with caplog.at_level(logging.DEBUG):
        sess = Session(transport=url, identity=Identity.generate(), connect_timeout=1.0)
        assert SECRET not in _shown(sess)
        transport = default_host().make_transport(url, connect_timeout=1.0)
        assert SECRET not in _shown(transport)
        with pytest.raises(Pye2Error) as err:
            sess.connect()
        assert SECRET not in str(err.value) and SECRET not in repr(err.value)
        cause = err.value.__cause__
        assert cause is None or SECRET not in str(cause)
        sess.close()
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_an_identity_never_shows_its_private_key() -> None:
    secret = bytes(range(1, 33))
    me = Identity.from_private_bytes(secret)
    shown = _shown(me)
    assert "PRIVATE" not in shown and secret.hex() not in shown and me.address(AIXP) in shown
    with pytest.raises(TypeError):
        pickle.dumps(me)


def test_a_transport_url_in_settings_is_masked() -> None:
    settings = resolve_settings(host=None, port=None, user=None, pwd=None, profile=None,
                                transport=f"mqtt://alice:{SECRET}@127.0.0.1:1883", environ={}, env_file=None)
    assert SECRET not in _shown(settings) and "alice:***@127.0.0.1:1883" in repr(settings)
    assert settings.transport_url() == f"mqtt://alice:{SECRET}@127.0.0.1:1883"  # kept, just never shown


# A password with an unencoded '/', '?' or '#' ends the host part early: urllib then reads it
# as the port, the path or the query, and an error quoting those would quote the password.
MISSPLIT = [
    "{scheme}://alice:{pw}/x@127.0.0.1:1",
    "{scheme}://alice:{pw}?x@127.0.0.1:1",
    "{scheme}://alice:{pw}#x@127.0.0.1:1",
    "{scheme}:/alice:{pw}@127.0.0.1:1",
    "{scheme}://alice:{pw}",  # no host: the password is read as the port
]


@pytest.mark.parametrize("template", MISSPLIT)
@pytest.mark.parametrize("parse", [MqttConfig.from_url, AmqpConfig.from_url], ids=["mqtt", "amqp"])
def test_url_errors_never_quote_the_password(parse: Any, template: str) -> None:
    scheme = "mqtt" if parse == MqttConfig.from_url else "amqp"
    with pytest.raises(ConfigError) as err:
        parse(template.format(scheme=scheme, pw=SECRET))
    assert SECRET not in str(err.value) and err.value.__cause__ is None
    assert "invalid" in str(err.value)


def test_an_at_sign_in_an_option_still_parses_and_other_errors_stay_specific() -> None:
    assert MqttConfig.from_url("mqtt://127.0.0.1?client_id=me@lab").client_id == "me@lab"
    with pytest.raises(ConfigError, match="must not have a path"):
        MqttConfig.from_url(f"mqtt://alice:{SECRET}@127.0.0.1/x")


@pytest.mark.parametrize("transport", [f"mqtt:/alice:{SECRET}@127.0.0.1:1", f"mqtt//alice:{SECRET}@127.0.0.1"])
def test_a_mistyped_transport_url_is_not_echoed(transport: str) -> None:
    sess = Session(transport=transport, identity=Identity.generate())
    assert SECRET not in _shown(sess)
    with pytest.raises(ConfigError) as err:
        sess.connect()
    sess.close()
    assert SECRET not in str(err.value) and "registered name" in str(err.value)


# -- key files ------------------------------------------------------------------------------

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Identity, Path]:
    monkeypatch.delenv("PYE2_ALLOW_INSECURE_KEY", raising=False)
    me = Identity.generate()
    return me, me.save(tmp_path / "id.pem", SECRET)


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_file_others_may_read_or_write_is_refused(
        key_file: tuple[Identity, Path], mode: int, caplog: pytest.LogCaptureFixture) -> None:
    me, path = key_file
    pem = path.read_text()
    path.chmod(mode)
    with caplog.at_level(logging.DEBUG), pytest.raises(IdentityError) as err:
        Identity.load(path, SECRET)
    text = str(err.value)
    assert f"chmod 600 {path}" in text and "UNPROTECTED PRIVATE KEY FILE" in text
    assert "PYE2_ALLOW_INSECURE_KEY" in text and "allow_insecure" in text
    body = "".join(pem.splitlines()[1:-1])
    for shown in (text, repr(err.value), caplog.text):
        assert SECRET not in shown and "PRIVATE KEY-----" not in shown and body[:24] not in shown
    assert me.address(AIXP) not in text  # the key is not even parsed


@posix_only
def test_a_0600_key_file_loads(key_file: tuple[Identity, Path], caplog: pytest.LogCaptureFixture) -> None:
    me, path = key_file
    assert path.stat().st_mode & 0o777 == 0o600  # as Identity.save writes it
    with caplog.at_level(logging.DEBUG):
        loaded = Identity.load(path, SECRET)
    assert loaded.public_key == me.public_key
    assert SECRET not in _shown(loaded) and SECRET not in caplog.text
    path.chmod(0o400)
    assert Identity.load(path, SECRET).public_key == me.public_key


@posix_only
def test_allow_insecure_loads_an_unprotected_key_file(key_file: tuple[Identity, Path]) -> None:
    me, path = key_file
    path.chmod(0o644)
    assert Identity.load(path, SECRET, allow_insecure=True).public_key == me.public_key


@posix_only
@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE", " Yes "])
def test_pye2_allow_insecure_key_loads_an_unprotected_key_file(
        key_file: tuple[Identity, Path], monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    me, path = key_file
    path.chmod(0o644)
    monkeypatch.setenv("PYE2_ALLOW_INSECURE_KEY", value)
    assert Identity.load(path, SECRET).public_key == me.public_key


@posix_only
@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_other_values_of_pye2_allow_insecure_key_do_not(
        key_file: tuple[Identity, Path], monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    _, path = key_file
    path.chmod(0o644)
    monkeypatch.setenv("PYE2_ALLOW_INSECURE_KEY", value)
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load(path, SECRET)


def test_the_check_is_skipped_off_posix(key_file: tuple[Identity, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    me, path = key_file
    path.chmod(0o644)
    monkeypatch.setattr("pye2.adapters.secp256k1.os.name", "nt")
    assert Identity.load(path, SECRET).public_key == me.public_key


@posix_only
def test_a_session_refuses_an_unprotected_default_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYE2_ALLOW_INSECURE_KEY", raising=False)
    monkeypatch.setenv("PYE2_HOME", str(tmp_path))
    first = Session(transport="memory://")
    first.connect()
    first.close()
    path = tmp_path / "_pk_sdk.pem"
    assert path.stat().st_mode & 0o077 == 0
    path.chmod(0o644)
    again = Session(transport="memory://")
    with pytest.raises(IdentityError, match=f"chmod 600 {path}"):
        again.connect()
    again.close()
