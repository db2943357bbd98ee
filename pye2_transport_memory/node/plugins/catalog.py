"""The plugins and data sources a simulated node knows by default.

``default_plugins()`` and ``default_sources()`` import lazily: the vision
plugins and the video source need numpy and pillow (``pye2[images]``) and
are left out, with a warning, when those are missing; the node engineer's
``sources.py`` / ``netmon.py`` are picked up when present (every
``SimDataSource`` with ``TYPES`` / ``SimPlugin`` with a ``SIGNATURE`` they
define), so the catalog never breaks because one of them is absent.

Two tiny plugins for tests live here too: ``SIMPLE_COUNTER`` (a counter
payload on its own timer) and ``SIMPLE_ECHO`` (echoes each structured input).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, ClassVar, TypeVar

from pye2_transport_memory.node.plugin_base import InputItem, PluginContext, SimDataSource, SimPlugin

__all__ = ["SimpleCounter", "SimpleEcho", "default_plugins", "default_sources"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_PKG = "pye2_transport_memory.node"


class SimpleCounter(SimPlugin):
    """``SIMPLE_COUNTER``: ``{COUNTER, NR_INPUTS}`` every ``PROCESS_DELAY`` seconds, inputs or not.

    An ``INSTANCE_COMMAND`` of ``"RESET"`` (or ``{"RESET": true}``) restarts the count.
    """

    SIGNATURE = "SIMPLE_COUNTER"
    VERSION = "1.0.0"
    DEFAULTS: ClassVar[dict[str, Any]] = {**SimPlugin.DEFAULTS, "PROCESS_DELAY": 1, "ALLOW_EMPTY_INPUTS": True}

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.counter = 0

    def on_command(self, command: Any) -> Any:
        """Reset on ``RESET``; returns the counter before the command."""
        before = self.counter
        if command == "RESET" or (isinstance(command, dict) and command.get("RESET")):
            self.counter = 0
        return before

    def process(self, inputs: list[InputItem]) -> dict[str, Any]:
        """One tick."""
        self.counter += 1
        return {"COUNTER": self.counter, "NR_INPUTS": len(inputs)}


class SimpleEcho(SimPlugin):
    """``SIMPLE_ECHO``: one payload ``{ECHO: <struct data>}`` per structured input."""

    SIGNATURE = "SIMPLE_ECHO"
    VERSION = "1.0.0"

    def process(self, inputs: list[InputItem]) -> list[dict[str, Any]] | None:
        """Echo what arrived."""
        out = [{"ECHO": item.struct_data} for item in inputs if item.struct_data is not None]
        return out or None


#: modules the optional plugins need -> the pye2 extra that installs them
_EXTRAS = {"numpy": "images", "PIL": "images"}
_WARNED: set[str] = set()


def _optional(module: str, names: tuple[str, ...]) -> list[Any]:
    """``names`` from ``module``; [] (logged) when the module or a dependency is missing."""
    try:
        mod = importlib.import_module(f"{_PKG}.{module}")
    except ImportError as exc:
        if module not in _WARNED:  # once per process, naming what to install
            _WARNED.add(module)
            missing = getattr(exc, "name", None) or str(exc)
            extra = _EXTRAS.get(str(missing).split(".")[0])
            logger.warning("simulated nodes: %s unavailable (%s is not installed)%s", ", ".join(names), missing,
                           f"; install it with: pip install 'pye2[{extra}]'" if extra else f": {exc}")
        return []
    return [getattr(mod, name) for name in names]


def _defined_in(module: str, base: type[T]) -> list[type[T]]:
    """Concrete subclasses of ``base`` defined in ``module`` (absent module: [])."""
    try:
        mod = importlib.import_module(f"{_PKG}.{module}")
    except ImportError as exc:
        if getattr(exc, "name", None) == f"{_PKG}.{module}":
            logger.debug("simulated node: %s not present", module)
        else:
            logger.warning("simulated node: %s failed to import (%s)", module, exc)
        return []
    found: list[type[T]] = []
    for obj in vars(mod).values():
        if not (isinstance(obj, type) and issubclass(obj, base) and obj is not base):
            continue
        named = getattr(obj, "SIGNATURE", "") if base is SimPlugin else getattr(obj, "TYPES", ())
        if obj.__module__ == mod.__name__ and named:
            found.append(obj)
    return found


def default_plugins() -> list[type[SimPlugin]]:
    """Every plugin class a simulated node starts with (signature order is not significant)."""
    from pye2_transport_memory.node.plugins.custom_exec import CustomExec01, RestCustomExec01

    plugins: list[type[SimPlugin]] = [CustomExec01, RestCustomExec01, SimpleCounter, SimpleEcho]
    plugins += _optional("plugins.vision", ("ObjectTracking01", "ViewScene01"))
    plugins += _defined_in("netmon", SimPlugin)
    return plugins


def default_sources() -> list[type[SimDataSource]]:
    """Every data source class a simulated node starts with."""
    sources: list[type[SimDataSource]] = []
    sources += _optional("video", ("VideoFileSource",))
    sources += _defined_in("sources", SimDataSource)
    return sources
