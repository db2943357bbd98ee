"""A typed name -> factory registry with clash detection and helpful misses."""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from typing import Generic, TypeVar

from pye2.errors import ExtraMissing, PluginConflictError, PluginNotFound

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One registered factory and where it came from."""

    name: str
    factory: T
    source: str
    requires: tuple[str, ...] = ()
    extra: str | None = None


def _importable(module: str) -> bool:
    """True if ``module`` can be found without importing it (parents are imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent is missing or blocked (sys.modules[x] = None)
        return False


class Registry(Generic[T]):
    """Factories of one kind (transports, serializers ...) keyed by lower-case name."""

    def __init__(self, kind: str, missing_error: type[ExtraMissing] = ExtraMissing) -> None:
        self.kind = kind
        self._missing_error = missing_error
        self._entries: dict[str, Entry[T]] = {}

    def add(
        self,
        name: str,
        factory: T,
        *,
        source: str,
        requires: tuple[str, ...] = (),
        extra: str | None = None,
    ) -> None:
        """Register ``factory`` as ``name``; raise on a clash with another source."""
        key = name.strip().lower()
        if not key:
            raise PluginNotFound(f"{self.kind} name must not be empty (from {source})")
        old = self._entries.get(key)
        if old is not None:
            raise PluginConflictError(
                f"{self.kind} {key!r} is registered twice: by {old.source} and by {source}; "
                f"uninstall one, or block one with PYE2_DISABLE_PLUGINS"
            )
        self._entries[key] = Entry(key, factory, source, tuple(requires), extra)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` (without checking its requirements)."""
        key = name.strip().lower()
        try:
            return self._entries[key]
        except KeyError:
            close = difflib.get_close_matches(key, self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(self.names()) or "none"
            raise PluginNotFound(f"no {self.kind} named {name!r} (known: {known}){hint}") from None

    def get(self, name: str) -> T:
        """The factory for ``name``, after checking its optional dependencies."""
        entry = self.entry(name)
        missing = [mod for mod in entry.requires if not _importable(mod)]
        if missing:
            if entry.extra:
                how = f"pip install 'pye2[{entry.extra}]'"
            else:
                how = "pip install " + " ".join(missing)
            raise self._missing_error(
                f"{self.kind} {entry.name!r} needs {', '.join(missing)} which is not installed: {how}"
            )
        return entry.factory

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._entries
