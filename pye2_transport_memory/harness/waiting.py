"""Waiting for a condition on a simulated network, in virtual time or on the wall clock.

Virtual time: the network's clock runs timer after timer until the condition
holds or ``virtual_seconds`` have been simulated (milliseconds of real time).
Wall clock (a broker): the wait wakes at every node and client delivery (the
network's clock condition). The condition is evaluated outside that lock, so
it may take any lock it likes; the price is that a notification landing
between two evaluations can be missed, so the wait also re-checks every
``RECHECK`` seconds (state a test callback changes on another thread is seen
at the latest then).

Failure raises :class:`WaitTimeout`, an ``AssertionError``, so pytest reports
a failed test with the condition's name and where it was written.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pye2_transport_memory.network import SimulatedNetwork

__all__ = ["RECHECK", "WaitTimeout", "describe", "wait_async", "wait_sync"]

#: seconds between re-checks on the wall clock when nothing on the network wakes the wait
RECHECK = 0.05


class WaitTimeout(AssertionError):
    """A condition was still false when the wait ran out (a test failure, not an error)."""


def describe(condition: Callable[[], object], message: str | None) -> str:
    """``message``, else the condition's name and where it was defined."""
    if message:
        return message
    name = getattr(condition, "__qualname__", None) or repr(condition)
    code = getattr(condition, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
    return name


def _check_seconds(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _timeout(network: SimulatedNetwork, condition: Callable[[], object], seconds: float, message: str | None,
             virtual: bool) -> WaitTimeout:
    unit = "virtual" if virtual else "wall-clock"
    return WaitTimeout(f"condition {describe(condition, message)} still false after {seconds:g} {unit} "
                       f"seconds on {network!r}")


def wait_sync(network: SimulatedNetwork, condition: Callable[[], object], virtual_seconds: float,
              wall_seconds: float | None, message: str | None) -> bool:
    """Wait until ``condition()`` is truthy; True, or raise :class:`WaitTimeout`.

    ``wall_seconds`` (default ``virtual_seconds``) bounds the wait on the wall clock.
    """
    __tracebackhide__ = True  # pytest shows the test's line, not ours
    virtual_seconds = _check_seconds(virtual_seconds, "virtual_seconds")
    if not network.realtime:
        if network.run_until(lambda: bool(condition()), virtual_seconds):
            return True
        raise _timeout(network, condition, virtual_seconds, message, True)
    seconds = _check_seconds(virtual_seconds if wall_seconds is None else wall_seconds, "wall_seconds")
    deadline = time.monotonic() + seconds
    wake = network.clock.condition
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout(network, condition, seconds, message, False)
        with wake:
            wake.wait(min(remaining, RECHECK))
    return True


async def wait_async(network: SimulatedNetwork, condition: Callable[[], object], virtual_seconds: float,
                     wall_seconds: float | None, message: str | None) -> bool:
    """:func:`wait_sync` for a coroutine: the event loop runs between steps (asyncio only, no plugin needed).

    Virtual time moves one timer at a time, yielding to the loop after each,
    so callbacks the loop must run (an asyncio session's) happen before the
    condition is looked at again. On the wall clock the waiting happens in a
    worker thread; the condition is always evaluated on the loop's thread.
    """
    __tracebackhide__ = True
    virtual_seconds = _check_seconds(virtual_seconds, "virtual_seconds")
    if not network.realtime:
        clock = network.clock
        deadline = clock.monotonic() + virtual_seconds
        while True:
            await asyncio.sleep(0)
            if condition():
                return True
            due = clock.next_due()
            if due is None or due > deadline:
                clock.advance(max(0.0, deadline - clock.monotonic()))
                await asyncio.sleep(0)
                if condition():
                    return True
                raise _timeout(network, condition, virtual_seconds, message, True)
            clock.step()
    seconds = _check_seconds(virtual_seconds if wall_seconds is None else wall_seconds, "wall_seconds")
    deadline = time.monotonic() + seconds
    wake = network.clock.condition
    loop = asyncio.get_running_loop()

    def block(timeout: float) -> None:
        with wake:
            wake.wait(timeout)

    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout(network, condition, seconds, message, False)
        await loop.run_in_executor(None, block, min(remaining, RECHECK))
    return True
