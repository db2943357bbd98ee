"""Opt-in: the incumbent ``ratio1`` client against ``pye2 sim`` (PYE2_INTEROP_RATIO1=1; not in CI)."""

import os

collect_ignore_glob = [] if os.environ.get("PYE2_INTEROP_RATIO1") == "1" else ["test_*.py"]
