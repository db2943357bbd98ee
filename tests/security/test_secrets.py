"""Secrets never show in a repr, a str, an error or a log: passwords and private keys."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest

from pye2 import Session
from pye2.domain.profiles import AIXP
from pye2.errors import Pye2Error
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
