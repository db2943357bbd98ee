"""Formatter port: the node-side output formats (``EE_FORMATTER``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Formatter"]


@runtime_checkable
class Formatter(Protocol):
    """Turns a formatted wire message into the flat view and back.

    ``decode`` raises :class:`pye2.errors.DecodeError` on a message it cannot
    read; ``encode`` is what a node with this formatter would send.
    """

    name: str

    def decode(self, message: dict[str, object]) -> dict[str, object]: ...

    def encode(self, message: dict[str, object]) -> dict[str, object]: ...
