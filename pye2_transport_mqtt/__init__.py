"""pye2's MQTT transport (paho-mqtt 2.x): schemes ``mqtt://`` and ``mqtts://``.

``MqttTransport`` and ``MqttConfig`` are exported lazily: importing this package
never imports paho (see :mod:`pye2_transport_mqtt.transport` for the features and
:mod:`pye2_transport_mqtt.plugin` for the registration).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import MqttConfig
    from .transport import MqttTransport

__all__ = ["MqttConfig", "MqttTransport"]

_LAZY = {"MqttConfig": ".config", "MqttTransport": ".transport"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
