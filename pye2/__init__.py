"""pye2: the Python SDK for the Execution Engine network.

The public face. Everything listed in ``__all__`` is stable API; a test pins it.
"""

from __future__ import annotations

from pye2 import errors
from pye2._version import __version__
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.plugins.hookspecs import hookimpl

__all__ = [
    "AIXP",
    "RATIO1",
    "WireProfile",
    "__version__",
    "errors",
    "hookimpl",
]
