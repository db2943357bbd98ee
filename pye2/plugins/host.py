"""The plugin host: owns the pluggy PluginManager and the four registries.

Loading is explicit (:meth:`PluginHost.load`) and idempotent. Built-in
adapters (JSON serializer, secp256k1 signer, default formatters) are internal
plugins registered through the same hooks as third-party ones; our transports
come in through the ``pye2`` entry-point group exactly like a third party's.

Environment:
    ``PYE2_DISABLE_PLUGINS=a,b`` blocks the plugins (entry-point names) listed.
    ``PYE2_TRACE_PLUGINS=1`` logs every hook call at DEBUG level.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from pye2.errors import PluginError, SerializerUnavailable, TransportUnavailable
from pye2.plugins import hookspecs
from pye2.plugins.registry import Registry

__all__ = ["INTERNAL_PLUGINS", "PluginHost", "default_host"]

log = logging.getLogger(__name__)

#: Modules registered as internal plugins (tox's ``internal_plugins``).
INTERNAL_PLUGINS: tuple[str, ...] = (
    "pye2.adapters.builtin_plugin",
)


def _disabled_from_env() -> set[str]:
    raw = os.environ.get("PYE2_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginHost:
    """Finds and holds transports, serializers, signers and formatters.

    Args:
        entry_points: load third-party plugins from the ``pye2`` entry-point
            group (tests turn this off to stay hermetic).
        disabled: plugin names to block, in addition to ``PYE2_DISABLE_PLUGINS``.
        extra_plugins: plugin objects/modules registered after the internal ones.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        disabled: Iterable[str] = (),
        extra_plugins: Iterable[object] = (),
    ) -> None:
        self._use_entry_points = entry_points
        self._disabled = set(disabled)
        self._extra = list(extra_plugins)
        self._lock = threading.Lock()
        self._loaded = False
        self._trace = False
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.transports: Registry[Callable[..., Any]] = Registry("transport", TransportUnavailable)
        self.serializers: Registry[Callable[..., Any]] = Registry("serializer", SerializerUnavailable)
        self.signers: Registry[Callable[..., Any]] = Registry("signer")
        self.formatters: Registry[Callable[..., Any]] = Registry("formatter")
        self.commands: Registry[Callable[..., Any]] = Registry("command")

    # -- loading ---------------------------------------------------------------
    def load(self) -> PluginHost:
        """Register internal plugins, then entry points; collect registrations."""
        with self._lock:
            if self._loaded:
                return self
            blocked = self._disabled | _disabled_from_env()
            for name in blocked:
                self.pm.set_blocked(name)
            self._trace = os.environ.get("PYE2_TRACE_PLUGINS") == "1"
            if self._trace:
                self.pm.trace.root.setwriter(lambda msg: log.debug("pluggy: %s", msg.rstrip()))
                self.pm.enable_tracing()
            import importlib

            for modname in INTERNAL_PLUGINS:
                if modname not in blocked:
                    self.pm.register(importlib.import_module(modname), name=modname)
            for plugin in self._extra:
                self.pm.register(plugin)
            if self._use_entry_points:
                try:
                    count = self.pm.load_setuptools_entrypoints(hookspecs.PROJECT)
                except Exception as exc:  # a broken third-party plugin must say who it is
                    raise PluginError(f"loading a 'pye2' entry-point plugin failed: {exc!r}") from exc
                log.debug("loaded %d pye2 entry-point plugin(s)", count)
            self.pm.check_pending()
            self._collect()
            self._loaded = True
        return self

    def _source_of(self, plugin: object) -> str:
        name = self.pm.get_name(plugin) or repr(plugin)
        for p, dist in self.pm.list_plugin_distinfo():
            if p is plugin:
                return f"plugin {name!r} from distribution {dist.project_name} {dist.version}"
        return f"plugin {name!r}"

    def _collect(self) -> None:
        hooks: list[tuple[str, Registry[Callable[..., Any]]]] = [
            ("pye2_register_transports", self.transports),
            ("pye2_register_serializers", self.serializers),
            ("pye2_register_signers", self.signers),
            ("pye2_register_formatters", self.formatters),
            ("pye2_register_commands", self.commands),
        ]
        for hookname, registry in hooks:
            hook = getattr(self.pm.hook, hookname)
            for impl in hook.get_hookimpls():
                source = self._source_of(impl.plugin)

                def register(
                    name: str,
                    factory: Any,
                    *,
                    requires: tuple[str, ...] = (),
                    extra: str | None = None,
                    _reg: Registry[Callable[..., Any]] = registry,
                    _src: str = source,
                ) -> None:
                    _reg.add(name, factory, source=_src, requires=tuple(requires), extra=extra)

                if self._trace:
                    log.debug("calling %s of %s", hookname, source)
                impl.function(register=register)

    # -- typed accessors -------------------------------------------------------
    def transport_factory(self, scheme: str) -> Callable[..., Any]:
        """The transport factory for a URL scheme (``mqtt``, ``amqp``, ``memory`` ...)."""
        return self.load().transports.get(scheme)

    def make_transport(self, url: str, **options: Any) -> Any:
        """Build an unconnected transport from ``scheme://...``."""
        scheme = url.split("://", 1)[0] if "://" in url else url
        return self.transport_factory(scheme)(url, **options)

    def serializer(self, name: str = "json") -> Any:
        """A serializer instance by name."""
        return self.load().serializers.get(name)()

    def signer_backend(self, name: str = "cryptography") -> Any:
        """A signer backend (``SignerFactory``) by name."""
        return self.load().signers.get(name)()

    def formatter(self, name: str) -> Any:
        """A formatter instance by name (``default``, ``aixp1``, ``cavi2`` ...)."""
        return self.load().formatters.get(name)()


_default: PluginHost | None = None
_default_lock = threading.Lock()


def default_host() -> PluginHost:
    """The process-wide host (entry points enabled), loaded on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginHost()
    return _default.load()
