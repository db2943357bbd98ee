"""Former home of :class:`pye2.plugins.lazy.lazy` (kept for plugins that imported it from here)."""

from __future__ import annotations

from pye2.plugins.lazy import lazy

__all__ = ["lazy"]
