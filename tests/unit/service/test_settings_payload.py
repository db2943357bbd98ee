"""Settings precedence (arguments > environment > .env) and the Payload helpers."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pye2 import Payload
from pye2.errors import ConfigError, DecodeError
from pye2.service.settings import read_env_file, resolve_settings


def test_arguments_beat_environment_beat_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nPYE2_HOST=file-host\nexport PYE2_USER='file-user'\nPYE2_PASS=\"p w\"\n"
                        "PYE2_PORT=1111\nPYE2_PROFILE=ratio1\n", "utf-8")
    s = resolve_settings(host=None, port=None, user=None, pwd=None, transport=None, profile=None,
                         environ={}, env_file=env_file)
    assert (s.host, s.port, s.user, s.pwd, s.profile) == ("file-host", 1111, "file-user", "p w", "ratio1")
    s = resolve_settings(host=None, port=None, user=None, pwd=None, transport=None, profile=None,
                         environ={"PYE2_HOST": "env-host", "PYE2_PORT": "2222"}, env_file=env_file)
    assert (s.host, s.port, s.user) == ("env-host", 2222, "file-user")
    s = resolve_settings(host="arg-host", port=3333, user=None, pwd=None, transport=None, profile=None,
                         environ={"PYE2_HOST": "env-host"}, env_file=env_file)
    assert (s.host, s.port) == ("arg-host", 3333)
    assert "p w" not in repr(s)


def test_host_alone_means_mqtt_and_credentials_are_quoted() -> None:
    s = resolve_settings(host="broker", port=1883, user="me@x", pwd="a/b:c", transport=None, profile=None,
                         environ={}, env_file=None)
    assert s.transport_url() == "mqtt://me%40x:a%2Fb%3Ac@broker:1883"
    s = resolve_settings(host="broker", port=None, user=None, pwd=None, transport="amqp", profile=None,
                         environ={}, env_file=None)
    assert s.transport_url() == "amqp://broker"
    s = resolve_settings(host=None, port=None, user=None, pwd=None, transport=None, profile=None,
                         environ={"PYE2_TRANSPORT": "sim://?nodes=2"}, env_file=None)
    assert s.transport_url() == "sim://?nodes=2"


def test_bad_port_and_transport_without_host_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        resolve_settings(host=None, port="x", user=None, pwd=None, transport=None, profile=None, environ={},
                         env_file=None)
    with pytest.raises(ConfigError, match="needs a host"):
        resolve_settings(host=None, port=None, user=None, pwd=None, transport="mqtt", profile=None, environ={},
                         env_file=None).transport_url()


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / "nope") == {}


def _jpeg_b64(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def test_payload_images_are_decoded_on_access() -> None:
    p = Payload({"IMG": _jpeg_b64((250, 0, 0)), "COUNT": 3})
    assert p.COUNT == 3 and p["COUNT"] == 3
    img = p.get_image_as_PIL()
    assert img.size == (8, 6)
    arr = p.get_image_as_np()
    assert isinstance(arr, np.ndarray) and arr.shape == (6, 8, 3) and arr[0, 0, 0] > 200
    many = Payload({"IMG": [_jpeg_b64((0, 0, 250)), None]})
    pil = many.get_images_as_PIL()
    assert pil[0].size == (8, 6) and pil[1] is None
    assert Payload({}).get_image_as_PIL() is None and Payload({}).get_images_as_np() == [None]
    p.NEW = 1
    assert p["NEW"] == 1
    with pytest.raises(AttributeError):
        _ = p.MISSING


@pytest.mark.parametrize("bad", ["not base64!!", base64.b64encode(b"not an image").decode(), 42])
def test_bad_images_raise_decode_error(bad: object) -> None:
    with pytest.raises(DecodeError):
        Payload({"IMG": bad}).get_image_as_PIL()
