"""Image fields of simulated payloads, encoded as a real node does (node.md section 6).

* a numpy image (H x W, H x W x 3 RGB or H x W x 4) under ``IMG`` becomes a
  base64 JPEG of quality 60, resized to at most 720 pixels high;
* under ``IMG_ORIG`` quality 95, at most 1080 high;
* ``IMG_HEIGHT``/``IMG_WIDTH`` give the original size and ``IMG_SIZE`` is
  ``[h, w]``; ``IMG_IN_PAYLOAD`` is true when an image was encoded;
* a list of images gives lists (of strings and of sizes).

Strings (already encoded) and None pass through. Frames are RGB (the
simulator never produces BGR). Needs numpy and pillow (``pye2[images]``),
imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
from collections.abc import Mapping
from typing import Any

from pye2.errors import ConfigError, DecodeError, ExtraMissing

__all__ = ["IMG_QUALITY", "ORIG_QUALITY", "decode_image", "encode_image", "encode_image_fields"]

logger = logging.getLogger(__name__)

IMG_QUALITY, IMG_MAX_HEIGHT = 60, 720
ORIG_QUALITY, ORIG_MAX_HEIGHT = 95, 1080


def _libs() -> tuple[Any, Any]:
    try:
        import numpy
        from PIL import Image
    except ImportError as exc:
        raise ExtraMissing("payload images need numpy and pillow: pip install 'pye2[images]'") from exc
    return numpy, Image


def _is_image(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def encode_image(img: Any, *, quality: int = IMG_QUALITY, max_height: int = IMG_MAX_HEIGHT) -> tuple[str, int, int]:
    """One numpy image -> ``(base64 JPEG, original height, original width)``.

    Raises:
        ConfigError: not a 2-D or 3-D (1, 3 or 4 channel) numeric array, or empty.
    """
    np, Image = _libs()
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise ConfigError(f"not an image: array of shape {arr.shape}")
    if arr.dtype.kind not in "uifb":
        raise ConfigError(f"not an image: dtype {arr.dtype}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    height, width = int(arr.shape[0]), int(arr.shape[1])
    pil = Image.fromarray(arr)
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    if height > max_height:
        new_w = max(1, round(width * max_height / height))
        pil = pil.resize((new_w, max_height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii"), height, width


def _encode_field(value: Any, quality: int, max_height: int) -> tuple[Any, Any, Any, bool]:
    """``(encoded value, heights, widths, encoded_any)`` for one field."""
    if _is_image(value):
        text, h, w = encode_image(value, quality=quality, max_height=max_height)
        return text, h, w, True
    if isinstance(value, (list, tuple)) and any(_is_image(v) for v in value):
        texts: list[Any] = []
        hs: list[int | None] = []
        ws: list[int | None] = []
        for item in value:
            if _is_image(item):
                text, h, w = encode_image(item, quality=quality, max_height=max_height)
                texts.append(text)
                hs.append(h)
                ws.append(w)
            else:
                texts.append(item)
                hs.append(None)
                ws.append(None)
        return texts, hs, ws, True
    return value, None, None, False


def encode_image_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` with numpy images under ``IMG``/``IMG_ORIG`` encoded.

    Called by the node on every payload; payloads without numpy images come
    back unchanged except that ``IMG_IN_PAYLOAD`` defaults to false.

    Raises:
        ConfigError: a field holds an array that is not an image.
        ExtraMissing: numpy or pillow is not installed.
    """
    out = dict(payload)
    encoded_any = False
    if "IMG" in out:
        value, hs, ws, done = _encode_field(out["IMG"], IMG_QUALITY, IMG_MAX_HEIGHT)
        if done:
            out["IMG"] = value
            out["IMG_HEIGHT"], out["IMG_WIDTH"] = hs, ws
            out["IMG_SIZE"] = [hs, ws] if not isinstance(hs, list) else [
                [h_, w_] if h_ is not None else None for h_, w_ in zip(hs, ws)]
            encoded_any = True
    if "IMG_ORIG" in out:
        value, _, _, done = _encode_field(out["IMG_ORIG"], ORIG_QUALITY, ORIG_MAX_HEIGHT)
        if done:
            out["IMG_ORIG"] = value
            encoded_any = True
    if encoded_any:
        out["IMG_IN_PAYLOAD"] = True
    else:
        out.setdefault("IMG_IN_PAYLOAD", False)
    return out


def decode_image(text: str) -> Any:
    """base64 JPEG/PNG text -> H x W x 3 uint8 numpy array (RGB).

    Raises:
        DecodeError: not base64 or not an image pillow can read.
    """
    np, Image = _libs()
    if not isinstance(text, str):
        raise DecodeError(f"image must be base64 text, not {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=False)
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGB"))
    except (binascii.Error, ValueError, OSError) as exc:
        raise DecodeError(f"not a base64 image: {exc}") from exc
