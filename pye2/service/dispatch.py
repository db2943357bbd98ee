"""Routes events to user callbacks, isolating user errors.

Callback tables are dicts keyed by node, pipeline, signature and instance,
so routing costs O(1) in the number of pipelines and instances. Every call
goes through :meth:`Dispatcher.call`, which logs and counts exceptions and
slow calls and never lets one callback stop delivery to the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pye2.service.stats import SessionStats

__all__ = ["CallbackKey", "Dispatcher"]

log = logging.getLogger(__name__)

CallbackKey = tuple[str, ...]
Callback = Callable[..., Any]


class Dispatcher:
    """Callback tables plus the guarded call.

    Args:
        stats: where errors and slow calls are counted.
        slow_threshold: seconds after which a returning callback is reported slow.
    """

    def __init__(self, stats: SessionStats, slow_threshold: float = 1.0) -> None:
        self.stats = stats
        self.slow_threshold = slow_threshold
        self._lock = threading.Lock()
        self._tables: dict[str, dict[CallbackKey, list[Callback]]] = defaultdict(lambda: defaultdict(list))
        self.current: tuple[Callback, float] | None = None
        """The callback running now and when it started (read by the watchdog)."""
        self.busy: set[int] = set()
        """ids of callbacks abandoned by the watchdog while still running."""

    # -- registration ---------------------------------------------------------------
    def add(self, table: str, key: CallbackKey, callback: Callback) -> Callable[[], None]:
        """Register ``callback`` under ``key``; returns a function that removes it."""
        with self._lock:
            self._tables[table][key].append(callback)

        def remove() -> None:
            with self._lock:
                bucket = self._tables[table].get(key)
                if bucket and callback in bucket:
                    bucket.remove(callback)
                    if not bucket:
                        del self._tables[table][key]

        return remove

    def remove_key(self, table: str, key: CallbackKey) -> None:
        """Drop every callback under ``key``."""
        with self._lock:
            self._tables[table].pop(key, None)

    def lookup(self, table: str, keys: list[CallbackKey]) -> list[Callback]:
        """Callbacks under any of ``keys`` (each callback once, registration order)."""
        with self._lock:
            t = self._tables.get(table)
            if not t:
                return []
            out: list[Callback] = []
            for key in keys:
                for cb in t.get(key, ()):
                    if cb not in out:
                        out.append(cb)
            return out

    # -- the guarded call -----------------------------------------------------------
    def call(self, callback: Callback, *args: Any) -> None:
        """Run a user callback; its exceptions are logged with traceback and counted."""
        if id(callback) in self.busy:
            self.stats.bump("skipped_busy_callbacks")
            return
        start = time.monotonic()
        self.current = (callback, start)
        try:
            callback(*args)
        except Exception:
            self.stats.bump("callback_errors")
            log.exception("user callback %s raised; delivery continues", _name(callback))
        finally:
            self.current = None
            elapsed = time.monotonic() - start
            if elapsed > self.slow_threshold:
                if id(callback) in self.busy:  # the watchdog reported and counted this call already
                    log.warning("user callback %s returned after %.2f s", _name(callback), elapsed)
                else:
                    self.stats.bump("slow_callbacks")
                    log.warning("user callback %s took %.2f s (threshold %.2f s)", _name(callback), elapsed,
                                self.slow_threshold)


def _name(callback: Callback) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)
