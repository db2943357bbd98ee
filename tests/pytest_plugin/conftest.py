"""Helpers for the plugin's tests (``pytester`` itself is enabled in tests/conftest.py).

Inner pytest runs happen in this process, and pytester forgets the modules an
inner run imported; numpy (the simulator's vision plugins) cannot be imported
twice in one process, so the simulator's plugin catalog is loaded here, once,
before any inner run.
"""

from __future__ import annotations

from pye2_transport_memory.node.plugins import catalog

catalog.default_plugins()
catalog.default_sources()
