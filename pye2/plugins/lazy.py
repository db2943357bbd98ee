"""Lazy factories: import an adapter module only when the factory is called."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["lazy"]


class lazy:
    """A callable that imports ``module`` and calls ``attr`` (dotted) on use.

    Registering ``lazy("pkg.mod", "Cls")`` keeps plugin modules free of driver
    imports, so listing plugins never imports paho, pika or msgpack.
    """

    __slots__ = ("attr", "module")

    def __init__(self, module: str, attr: str) -> None:
        self.module = module
        self.attr = attr

    def resolve(self) -> Any:
        """The target object itself."""
        obj: Any = importlib.import_module(self.module)
        for part in self.attr.split("."):
            obj = getattr(obj, part)
        return obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.module}:{self.attr})"
