"""pye2: the Python SDK for the Execution Engine network.

The public face; everything in ``__all__`` is stable API (a test pins it).
Names follow the original SDK (``Session``, ``Pipeline``, ``Payload``,
``code_to_base64`` ...) so existing code keeps working.
"""

from __future__ import annotations

from pye2 import errors
from pye2._version import __version__
from pye2.domain.codecs.checker import check_code
from pye2.domain.codecs.code import base64_to_code, code_to_base64
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.plugins.hookspecs import hookimpl
from pye2.service.confirmations import Confirmation
from pye2.service.handles import Instance, Pipeline
from pye2.service.options import SessionOptions
from pye2.service.payload import Payload
from pye2.service.session import Session
from pye2.wire import Identity

version = __version__

__all__ = [
    "AIXP",
    "RATIO1",
    "Confirmation",
    "Identity",
    "Instance",
    "Payload",
    "Pipeline",
    "Session",
    "SessionOptions",
    "WireProfile",
    "__version__",
    "base64_to_code",
    "check_code",
    "code_to_base64",
    "errors",
    "hookimpl",
    "version",
]
