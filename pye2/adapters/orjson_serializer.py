"""JSON serializer on ``orjson`` (extra ``fast``): the same parsed messages, faster.

Features:

* ``loads`` returns exactly what :class:`~pye2.adapters.json_serializer.JsonSerializer`
  (the stdlib parser) returns — same keys, order, value types, float bits —
  so the canonical hash computed from the parsed message is identical. Where
  orjson would differ it is not used and the stdlib parses the bytes:

  - ``NaN``, ``Infinity``, ``-Infinity`` literals and numbers that overflow a
    double (``1e400``): orjson refuses them, the stdlib gives ``nan``/``inf``;
  - escaped lone surrogates (``"\\ud800"``): orjson refuses, the stdlib keeps them;
  - integers outside [-2**63, 2**64 - 1]: orjson silently turns them into
    floats, so any run of 19 or more ASCII digits in the bytes (even inside
    a string, which only costs speed) sends the message to the stdlib.

  Anything neither parser accepts is a :class:`~pye2.errors.DecodeError`.
  One documented difference in what is *accepted*: arrays/objects nested
  between about 990 and 1023 levels deep parse here, while the stdlib's
  limit depends on the caller's stack (it raises ``RecursionError``);
  canonicalising such a message is then refused by the domain anyway.
* ``dumps`` writes compact UTF-8 JSON (no spaces, non-ASCII unescaped), not
  the ``json.dumps`` default text the original SDK publishes (``", "``
  separators, ASCII escapes). Receivers parse both; signatures do not
  depend on it (the hash covers the canonical text, not the wire text).
  NaN/±Inf are written as ``null``, which is what the canonical text holds
  for them too. Datetimes and dataclasses are refused as the stdlib refuses
  them (orjson would format them differently from the canonical text);
  ``uuid.UUID`` and ``enum`` values are written as orjson writes them. What
  orjson cannot write (ints beyond 64 bits, non-str keys, lone surrogates,
  deep nesting) goes through ``json.dumps`` with compact separators.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import ModuleType

from pye2.adapters.json_serializer import JsonSerializer
from pye2.errors import DecodeError, SerializerUnavailable

__all__ = ["OrjsonSerializer"]

# Digits -> "0", every other byte -> " ": a long integer literal becomes a run of "0".
_DIGIT_MAP = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
# -2**63 has 19 digits, 2**64 - 1 has 20: a shorter run is always a 64-bit integer.
_LONG_DIGIT_RUN = b"0" * 19


def _orjson() -> ModuleType:
    try:
        import orjson
    except ImportError as exc:
        raise SerializerUnavailable("serializer 'orjson' needs orjson: pip install 'pye2[fast]'") from exc
    return orjson


class OrjsonSerializer:
    """UTF-8 JSON text of one object, parsed and written with orjson.

    Raises:
        SerializerUnavailable: orjson is not installed.
    """

    name = "orjson"
    content_type = "application/json"

    def __init__(self) -> None:
        orjson = _orjson()
        self._loads = orjson.loads
        self._dumps = orjson.dumps
        self._decode_error: type[Exception] = orjson.JSONDecodeError
        self._encode_error: type[Exception] = orjson.JSONEncodeError
        self._options: int = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        self._stdlib = JsonSerializer()

    def dumps(self, obj: Mapping[str, object]) -> bytes:
        """Compact UTF-8 JSON of ``obj`` (see the module docstring for the rules).

        Raises:
            DecodeError: ``obj`` holds values JSON cannot represent.
        """
        try:
            out: bytes = self._dumps(obj, option=self._options)
            return out
        except self._encode_error:
            pass  # not JSON for orjson: the stdlib either manages it or says why
        try:
            return json.dumps(obj, separators=(",", ":")).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:
            raise DecodeError(f"cannot encode message as JSON: {exc}") from exc

    def loads(self, data: bytes | bytearray | memoryview) -> dict[str, object]:
        """The object encoded in ``data``, identical to the stdlib parser's result.

        Raises:
            DecodeError: not UTF-8, not JSON, or not a JSON object.
        """
        if not isinstance(data, bytes):
            if not isinstance(data, (bytearray, memoryview)):
                raise DecodeError(f"a message is bytes, not {type(data).__name__}")
            data = bytes(data)
        if _LONG_DIGIT_RUN in data.translate(_DIGIT_MAP):
            return self._stdlib.loads(data)
        try:
            obj = self._loads(data)
        except self._decode_error:
            # NaN/Infinity, 1e400, lone surrogates, or not JSON at all: the stdlib decides.
            return self._stdlib.loads(data)
        if not isinstance(obj, dict):
            raise DecodeError(f"message is a JSON {type(obj).__name__}, not an object")
        return obj
