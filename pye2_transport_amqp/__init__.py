"""pye2 AMQP transport (RabbitMQ, via pika): ``amqp://`` and ``amqps://`` URLs.

``AmqpTransport`` and ``AmqpConfig`` are loaded on first use, so importing this
package (as plugin discovery does) never imports pika; see ``plugin.py`` for the
registration and ``transport.py`` for the features and the topology.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import AmqpConfig
    from .transport import AmqpTransport

__all__ = ["AmqpConfig", "AmqpTransport"]

_LAZY = {"AmqpConfig": ".config", "AmqpTransport": ".transport"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "AmqpTransport":
        try:
            importlib.import_module("pika")
        except ImportError as exc:
            from pye2.errors import TransportUnavailable

            raise TransportUnavailable("the AMQP transport needs pika: pip install 'pye2[amqp]'") from exc
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
