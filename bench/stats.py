"""Small statistics helpers (median with spread, percentiles)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["percentile", "spread"]


def spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "n"}`` of ``values`` (median None when empty)."""
    v = sorted(values)
    if not v:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v)}


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated ``p``-th percentile (0-100), None when empty."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
