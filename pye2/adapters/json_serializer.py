"""JSON serializer (always available).

Writes what the original SDK writes on the wire: Python's default
``json.dumps`` (ASCII escapes, ``", "``/``": "`` separators). Reads any UTF-8
JSON object; anything else is a :class:`~pye2.errors.DecodeError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pye2.errors import DecodeError

__all__ = ["JsonSerializer"]


class JsonSerializer:
    """UTF-8 JSON text of one object."""

    name = "json"
    content_type = "application/json"

    def dumps(self, obj: Mapping[str, object]) -> bytes:
        try:
            return json.dumps(obj).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"cannot encode message as JSON: {exc}") from exc

    def loads(self, data: bytes) -> dict[str, object]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"message is not UTF-8: {exc.reason} at byte {exc.start}") from exc
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"message is not valid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise DecodeError(f"message is a JSON {type(obj).__name__}, not an object")
        return obj
