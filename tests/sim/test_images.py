"""Payload image fields encoded as a real node does (node.md section 6)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pye2.errors import ConfigError, DecodeError
from pye2_transport_memory.node.images import decode_image, encode_image_fields


def gradient(h: int, w: int) -> Any:
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None]
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :]
    return np.stack([np.broadcast_to(y, (h, w)), np.broadcast_to(x, (h, w)), np.full((h, w), 90.0)],
                    axis=2).astype(np.uint8)


def as_jpeg(text: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    assert img.format == "JPEG"
    return img


def test_single_image_is_base64_jpeg_with_sizes() -> None:
    frame = gradient(360, 640)
    payload = {"IMG": frame, "OTHER": 1}
    out = encode_image_fields(payload)
    assert payload["IMG"] is frame  # the input is not modified
    assert isinstance(out["IMG"], str)
    assert as_jpeg(out["IMG"]).size == (640, 360)
    assert (out["IMG_HEIGHT"], out["IMG_WIDTH"], out["IMG_SIZE"]) == (360, 640, [360, 640])
    assert out["IMG_IN_PAYLOAD"] is True and out["OTHER"] == 1


def test_colours_survive_in_rgb_order() -> None:
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[:, :, 0] = 220
    back = decode_image(encode_image_fields({"IMG": red})["IMG"])
    assert back.shape == (64, 64, 3)
    r, g, b = back[32, 32].astype(int)
    assert r > 200 and g < 30 and b < 30


def test_tall_images_are_resized_to_720_and_originals_to_1080() -> None:
    big = gradient(1440, 2560)
    out = encode_image_fields({"IMG": big, "IMG_ORIG": big})
    assert as_jpeg(out["IMG"]).size == (1280, 720)
    assert as_jpeg(out["IMG_ORIG"]).size == (1920, 1080)
    assert (out["IMG_HEIGHT"], out["IMG_WIDTH"]) == (1440, 2560)  # sizes are the original's


def test_original_uses_higher_quality() -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    out = encode_image_fields({"IMG": noisy, "IMG_ORIG": noisy})
    assert len(out["IMG_ORIG"]) > len(out["IMG"]) * 1.5  # quality 95 versus 60


def test_lists_give_lists() -> None:
    out = encode_image_fields({"IMG": [gradient(100, 200), None, gradient(50, 60)]})
    assert isinstance(out["IMG"], list) and out["IMG"][1] is None
    assert [as_jpeg(t).size for t in (out["IMG"][0], out["IMG"][2])] == [(200, 100), (60, 50)]
    assert out["IMG_HEIGHT"] == [100, None, 50] and out["IMG_WIDTH"] == [200, None, 60]
    assert out["IMG_SIZE"] == [[100, 200], None, [50, 60]]
    assert out["IMG_IN_PAYLOAD"] is True


@pytest.mark.parametrize("payload, flag", [
    ({}, False),
    ({"IMG": None}, False),
    ({"IMG": "already-encoded"}, False),
    ({"IMG": None, "IMG_IN_PAYLOAD": True}, True),
])
def test_payloads_without_arrays_pass_through(payload: dict[str, Any], flag: bool) -> None:
    out = encode_image_fields(payload)
    assert out == {**payload, "IMG_IN_PAYLOAD": flag}


def test_grey_rgba_and_float_images_are_accepted() -> None:
    grey = np.full((20, 30), 128, dtype=np.uint8)
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    floats = np.full((20, 30, 3), 300.0)
    for img in (grey, rgba, floats, grey[:, :, None]):
        out = encode_image_fields({"IMG": img})
        assert as_jpeg(out["IMG"]).size == (30, 20)
    assert decode_image(encode_image_fields({"IMG": floats})["IMG"])[5, 5].min() > 240  # clipped to 255


@pytest.mark.parametrize("bad", [
    np.zeros(5, dtype=np.uint8),
    np.zeros((4, 4, 5), dtype=np.uint8),
    np.zeros((0, 4, 3), dtype=np.uint8),
    np.array([[1 + 2j]]),
])
def test_arrays_that_are_not_images_raise_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError):
        encode_image_fields({"IMG": bad})


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"not an image").decode(), 42])
def test_decode_image_raises_decode_error(text: Any) -> None:
    with pytest.raises(DecodeError):
        decode_image(text)
