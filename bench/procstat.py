"""Process figures from /proc (no psutil: the sinks run in two different venvs).

Standard library only, because ``sinks/ratio1_sink.py`` imports this module
from the ratio1 venv, which has nothing of ours installed.
"""

from __future__ import annotations

import os
import resource

__all__ = ["cpu_seconds", "find_pid", "max_rss_bytes", "pid_cpu_seconds", "rss_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | str = "self") -> int:
    """Current resident set size of a process, in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def max_rss_bytes() -> int:
    """Peak resident set size of this process, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its live descendants.

    Descendants count so that work an SDK hands to worker processes (pye2's
    ``verify_workers``, started through a forkserver: grandchildren) is not
    left out of the consumer's CPU.
    """
    ru = resource.getrusage(resource.RUSAGE_SELF)
    own = ru.ru_utime + ru.ru_stime
    return own + sum(pid_cpu_seconds(pid) or 0.0 for pid in _descendants(os.getpid()))


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
            ppid = int(text[text.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    stack = list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def pid_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces: split after it
    fields = text[text.rfind(")") + 2:].split()
    try:
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return None


def find_pid(name: str) -> int | None:
    """The pid of the first process whose command name is ``name`` (e.g. the broker)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as f:
                if f.read().strip() == name:
                    return int(entry)
        except OSError:
            continue
    return None
