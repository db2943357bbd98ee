"""Plugin machinery: pluggy hookspecs, registries and the plugin host."""

from __future__ import annotations

from pye2.plugins.hookspecs import hookimpl, hookspec
from pye2.plugins.host import PluginHost, default_host
from pye2.plugins.lazy import lazy
from pye2.plugins.registry import Registry

__all__ = ["PluginHost", "Registry", "default_host", "hookimpl", "hookspec", "lazy"]
