"""SIGTERM stops a command-line run as Ctrl-C does: the one helper every long-running ``pye2`` command uses."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["sigterm_stops"]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # not an Event.set(): setting an Event from a signal handler can deadlock


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """While the block runs on the main thread, SIGTERM (``kill``, a service manager) raises KeyboardInterrupt.

    Off the main thread (where handlers cannot be set) the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
