"""Reconnect delays: exponential backoff with full jitter (pure, seeded by the caller's RNG)."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """The n-th delay (n from 1) is uniform in ``[0, min(maximum, initial * 2**(n-1))]``.

    Full jitter spreads the reconnects of many clients after a broker restart, instead
    of having them all knock at the same instants.
    """

    __slots__ = ("_rng", "initial", "max_attempts", "maximum")

    def __init__(self, initial: float, maximum: float, max_attempts: int | None, rng: random.Random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.max_attempts = max_attempts
        self._rng = rng

    def cap(self, attempt: int) -> float:
        """Upper bound of the delay before attempt ``attempt``."""
        exponent = min(max(attempt - 1, 0), 64)  # 2**64 * initial is past any maximum
        return float(min(self.maximum, self.initial * 2**exponent))

    def delay(self, attempt: int) -> float:
        """A random delay before attempt ``attempt``."""
        return self._rng.uniform(0.0, self.cap(attempt))

    def exhausted(self, attempt: int) -> bool:
        """True when attempt ``attempt`` would exceed ``max_attempts`` (None = never)."""
        return self.max_attempts is not None and attempt > self.max_attempts
