"""tests/aio: the asyncio facade. Helpers shared with tests/e2e (broker roots, scenario constants) are imported
from there, so the async scenarios use the same settings and checks as the sync ones."""

from __future__ import annotations

import sys
from pathlib import Path

E2E = Path(__file__).resolve().parents[1] / "e2e"
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))
