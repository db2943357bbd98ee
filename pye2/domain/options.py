"""Parsing of transport URL query options and keyword options (pure).

Shared by the transports' config modules: a query string split without
``parse_qs`` (which turns ``+``, the MQTT one-level wildcard, into a space),
and converters that accept the typed value or its text form and raise
:class:`~pye2.errors.ConfigError` naming the option otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from pye2.errors import ConfigError

__all__ = ["none_or", "query_options", "to_bool", "to_float", "to_int", "to_str"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("", "none", "null")


def query_options(query: str) -> dict[str, str]:
    """``a=1&b=x%2Fy`` -> ``{"a": "1", "b": "x/y"}``; a key without ``=`` or given twice is an error."""
    options: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = unquote(key)
        if not sep:
            raise ConfigError(f"URL option {key!r} has no value (write {key}=...)")
        if key in options:
            raise ConfigError(f"URL option {key!r} is given twice")
        options[key] = unquote(value)
    return options


def to_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def to_int(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{name} must be an integer, got {value!r}")


def to_float(name: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{name} must be a number, got {value!r}")


def to_str(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    shown = type(value).__name__ if name == "password" else repr(value)  # never echo a secret
    raise ConfigError(f"{name} must be a string, got {shown}")


def none_or(convert: Callable[[str, object], Any]) -> Callable[[str, object], Any]:
    """A converter that also accepts None, ``""``, ``"none"`` and ``"null"`` as None."""

    def converter(name: str, value: object) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        return convert(name, value)

    return converter
