"""Serializer port: dict <-> bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Encodes message dicts to bytes and back.

    ``loads`` raises :class:`pye2.errors.DecodeError` on anything that is not
    one encoded object (a dict).
    """

    name: str
    content_type: str

    def dumps(self, obj: Mapping[str, object]) -> bytes: ...

    def loads(self, data: bytes) -> dict[str, object]: ...
