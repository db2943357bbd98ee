"""Clock port: time is injected, never read directly by the core."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "Timer"]


@runtime_checkable
class Timer(Protocol):
    """Handle of a scheduled callback."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Wall and monotonic time, plus timers and condition waits.

    The system clock runs timers on a thread; the virtual clock runs them when
    it is advanced, so a simulated hour takes milliseconds.
    """

    def time(self) -> float:
        """Seconds since the epoch (for message timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (for timeouts)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once, ``delay`` seconds from now."""
        ...

    def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float | None,
        condition: threading.Condition | None = None,
    ) -> bool:
        """Block until ``predicate()`` is true or ``timeout`` seconds pass.

        Returns the predicate's final value. The system clock waits on
        ``condition`` (whoever changes the state the predicate reads notifies
        it); a virtual clock advances itself, running due timers and pending
        deliveries, instead of blocking.
        """
        ...
