"""The plugins and data sources a simulated node knows by default.

``default_plugins()`` and ``default_sources()`` import lazily: the vision
plugins (numpy, pillow) and the video sources (numpy) come with
``pye2[images]`` and are left out when those are missing, with one warning
naming what is unavailable and the extra to install; the node engineer's
``sources.py`` / ``netmon.py`` are picked up when present (every
``SimDataSource`` with ``TYPES`` / ``SimPlugin`` with a ``SIGNATURE`` they
define), so the catalog never breaks because one of them is absent.

Two tiny plugins for tests live here too: ``SIMPLE_COUNTER`` (a counter
payload on its own timer) and ``SIMPLE_ECHO`` (echoes each structured input).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
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


#: the catalog's optional parts: module -> (what it provides, in the warning; its classes; what it needs)
_OPTIONAL: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "plugins.vision": ("plugins OBJECT_TRACKING_01, VIEW_SCENE_01", ("ObjectTracking01", "ViewScene01"),
                       ("numpy", "PIL")),  # pillow: they send their annotated frames as JPEG
    "video": ("data sources VideoFile, VideoStream", ("VideoFileSource",), ("numpy",)),
}
#: modules the optional parts need -> the pye2 extra that installs them
_EXTRAS = {"numpy": "images", "PIL": "images"}
_DISTRIBUTIONS = {"PIL": "pillow"}
_loaded: dict[str, list[Any]] | None = None
_load_lock = threading.Lock()


def _missing(modules: tuple[str, ...]) -> list[str]:
    """The top-level ``modules`` that cannot be imported (looked up, not imported)."""
    absent: list[str] = []
    for name in modules:
        if name in sys.modules:
            if sys.modules[name] is None:  # import blocked
                absent.append(name)
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            absent.append(name)
    return absent


def _load_optional() -> dict[str, list[Any]]:
    """Every optional part's classes ([] when unavailable), imported once per process.

    What is unavailable is said once, in one warning naming the extra that installs it.
    """
    global _loaded
    with _load_lock:
        if _loaded is not None:
            return _loaded
        loaded: dict[str, list[Any]] = {}
        lacking: dict[str, list[str]] = {}  # what is unavailable -> the modules it lacks
        failed: list[str] = []  # unavailable for another reason
        for module, (what, names, needs) in _OPTIONAL.items():
            loaded[module] = []
            absent = _missing(needs)
            if not absent:
                try:
                    mod = importlib.import_module(f"{_PKG}.{module}")
                except ImportError as exc:
                    top = str(getattr(exc, "name", None) or "").split(".")[0]
                    if top not in _EXTRAS:
                        failed.append(f"{what} unavailable: {exc}")
                        continue
                    absent = [top]
                else:
                    loaded[module] = [getattr(mod, name) for name in names]
                    continue
            lacking[what] = absent
        if lacking:
            logger.warning("%s", _unavailable_message(lacking))
        for line in failed:
            logger.warning("simulated nodes: %s", line)
        _loaded = loaded
        return loaded


def _unavailable_message(lacking: dict[str, list[str]]) -> str:
    modules = {m for absent in lacking.values() for m in absent}
    extras = sorted({_EXTRAS[m] for m in modules if m in _EXTRAS})
    names = " and ".join(sorted(_DISTRIBUTIONS.get(m, m) for m in modules))
    install = " ".join(f"'pye2[{extra}]'" for extra in extras)
    return (f"simulated nodes: {' and '.join(lacking)} unavailable ({names} not installed; every other plugin "
            f"and source runs); to have them: pip install {install}")


def _optional(module: str) -> list[Any]:
    """The classes of an optional part (see ``_OPTIONAL``); [] when unavailable."""
    return list(_load_optional()[module])


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
    plugins += _optional("plugins.vision")
    plugins += _defined_in("netmon", SimPlugin)
    return plugins


def default_sources() -> list[type[SimDataSource]]:
    """Every data source class a simulated node starts with."""
    sources: list[type[SimDataSource]] = []
    sources += _optional("video")
    sources += _defined_in("sources", SimDataSource)
    return sources
