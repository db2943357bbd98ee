"""Payload: the dict users receive, with image helpers and attribute access.

Images are base64 JPEG/PNG strings under ``IMG`` (or a list of them); they
are decoded only when asked for, so a callback that ignores images pays
nothing. PIL and numpy are imported on first use (extra ``images``).
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from pye2.errors import DecodeError, ExtraMissing

__all__ = ["Payload"]


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ExtraMissing("image helpers need pillow: pip install 'pye2[images]'") from exc
    return Image


def _decode_image(text: Any) -> Any:
    if text is None:
        return None
    if not isinstance(text, (str, bytes)):
        raise DecodeError(f"image field holds a {type(text).__name__}, not base64 text")
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"image is not valid base64: {exc}") from exc
    image_mod = _pil()
    try:
        img = image_mod.open(io.BytesIO(raw))
        img.load()
    except Exception as exc:  # PIL raises several unrelated types on bad data
        raise DecodeError(f"image data is not a readable image: {exc}") from exc
    return img


class Payload(dict[str, Any]):
    """A message from a node: a ``dict`` (it pickles, copies and ``json.dumps`` as one), plus helpers.

    ``payload.IMG`` reads ``payload["IMG"]`` (and assignment writes it);
    missing keys raise AttributeError. Keys that are also dict method names
    (``keys``, ``items``...) are read with ``payload["keys"]``. ``payload.data``
    is the payload itself (what the original SDK's ``UserDict``-based payload gave).
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"payload has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            raise AttributeError(f"cannot set {name!r} on a payload")
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"payload has no key {name!r}") from None

    @property
    def data(self) -> dict[str, Any]:
        """The payload itself (kept for code written against the original SDK's ``UserDict``)."""
        return self

    def copy(self) -> Payload:
        return Payload(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Payload, (dict(self),))

    def get_image_as_PIL(self, key: str = "IMG") -> Any:
        """The image under ``key`` as a PIL image; None if absent. A list gives its first image."""
        value = self.data.get(key)
        if isinstance(value, list):
            value = next((v for v in value if v is not None), None)
        return _decode_image(value)

    def get_image_as_np(self, key: str = "IMG") -> Any:
        """The image under ``key`` as an H x W x C uint8 numpy array; None if absent."""
        img = self.get_image_as_PIL(key)
        return None if img is None else _to_np(img)

    def get_images_as_PIL(self, key: str = "IMG") -> list[Any]:
        """Every image under ``key`` (a string is a one-item list; missing gives ``[None]``)."""
        value = self.data.get(key)
        items = value if isinstance(value, list) else [value]
        return [_decode_image(v) for v in items]

    def get_images_as_np(self, key: str = "IMG") -> list[Any]:
        """As :meth:`get_images_as_PIL`, as numpy arrays."""
        return [None if img is None else _to_np(img) for img in self.get_images_as_PIL(key)]


def _to_np(img: Any) -> Any:
    try:
        import numpy as np
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ExtraMissing("image helpers need numpy: pip install 'pye2[images]'") from exc
    return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "L") else img)
