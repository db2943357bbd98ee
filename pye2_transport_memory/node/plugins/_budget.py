"""The step/time budget and the memory window of custom code on a simulated node (see :mod:`.sandbox`)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pye2.errors import ConfigError, PluginError

try:
    import resource
except ImportError:  # pragma: no cover - Windows: no memory window
    resource = None  # type: ignore[assignment]

__all__ = [
    "MODULE",
    "Budget",
    "BudgetExceeded",
    "SandboxError",
    "SandboxLimits",
    "current_limits",
    "memory_window",
    "running",
    "tick",
]

#: ``__name__`` of the code's namespace, hence ``__module__`` of its classes and functions
MODULE = "<custom code>"


class BudgetExceeded(BaseException):
    """Custom code ran past its step or time budget (not an ``Exception``: ``except Exception`` passes it on)."""


class SandboxError(PluginError):
    """Custom code was called while none of its executions was running (e.g. by node code)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Budgets of one execution of custom code.

    Attributes:
        max_steps: loop iterations + calls (functions, lambdas, ``plugin``
            API) + comprehension items per execution.
        max_seconds: wall-clock seconds per execution (checked every 1024
            steps); None: steps only.
        max_memory: bytes the address space may grow while the code runs
            (Linux); None: no memory window.
        max_items: largest sequence ``*`` may build, largest ``range`` and
            the largest width in a format spec.
        max_int_bits: largest int ``**`` and ``<<`` may build.
        max_result_depth: deepest nesting of a result or command argument.
    """

    max_steps: int = 1_000_000
    max_seconds: float | None = 2.0
    max_memory: int | None = 512 * 2**20
    max_items: int = 10_000_000
    max_int_bits: int = 1 << 23
    max_result_depth: int = 100

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_items", "max_int_bits", "max_result_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"SandboxLimits.{name} must be a positive int, not {value!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"SandboxLimits.max_seconds must be positive or None, not {self.max_seconds!r}")
        if self.max_memory is not None and (isinstance(self.max_memory, bool) or self.max_memory <= 0):
            raise ConfigError(f"SandboxLimits.max_memory must be positive or None, not {self.max_memory!r}")


# -- the budget -----------------------------------------------------------------------------------
class Budget:
    """The steps and deadline of one execution."""

    __slots__ = ("deadline", "exceeded", "limits", "steps")

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.steps = 0
        self.exceeded: str | None = None
        self.deadline = None if limits.max_seconds is None else time.monotonic() + limits.max_seconds


_local = threading.local()
_NO_LIMITS = SandboxLimits()


def _current() -> Budget:
    budget: Budget | None = getattr(_local, "budget", None)
    if budget is None:
        raise SandboxError("custom code may only run during one of its executions")
    return budget


def tick() -> bool:
    """Count one step of the running custom code; raise :class:`BudgetExceeded` past its budget."""
    budget = _current()
    budget.steps += 1
    if budget.exceeded is None:
        limits = budget.limits
        if budget.steps > limits.max_steps:
            budget.exceeded = f"custom code ran past its budget of {limits.max_steps} steps"
        elif (not budget.steps & 0x3FF and budget.deadline is not None
              and time.monotonic() > budget.deadline):
            budget.exceeded = f"custom code ran past its budget of {limits.max_seconds:g} s"
        else:
            return True
    raise BudgetExceeded(budget.exceeded)


def current_limits() -> SandboxLimits:
    """The limits of the running execution (defaults outside one)."""
    budget: Budget | None = getattr(_local, "budget", None)
    return _NO_LIMITS if budget is None else budget.limits


@contextlib.contextmanager
def running(budget: Budget) -> Iterator[None]:
    """Make ``budget`` the one :func:`tick` counts on this thread."""
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    try:
        yield
    finally:
        _local.budget = previous


# -- the memory window (Linux) --------------------------------------------------------------------
_window_lock = threading.Lock()
_window: dict[str, Any] = {"depth": 0, "saved": None}


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@contextlib.contextmanager
def memory_window(extra: int | None) -> Iterator[None]:
    """Let the address space grow by ``extra`` bytes at most (shared by concurrent executions)."""
    if extra is None or resource is None:
        yield
        return
    entered = False
    with _window_lock:
        if _window["depth"]:
            _window["depth"] += 1
            entered = True
        else:
            size = _address_space()
            if size is not None:
                soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                limit = size + extra
                for bound in (soft, hard):
                    if bound != resource.RLIM_INFINITY:
                        limit = min(limit, bound)
                try:
                    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
                except (ValueError, OSError):
                    pass
                else:
                    _window["depth"], _window["saved"] = 1, (soft, hard)
                    entered = True
    try:
        yield
    finally:
        if entered:
            with _window_lock:
                _window["depth"] -= 1
                if not _window["depth"]:
                    resource.setrlimit(resource.RLIMIT_AS, _window["saved"])
