"""Node lives: timers and deliveries that only run while the node is in the life that made them.

A node's life ends when it stops or crashes (``_life`` is incremented); a
timer or subscription handler made in an earlier life then does nothing.
Every entry point runs under the node's (network's) lock and reports
activity afterwards (the network wakes ``run_until`` waiters on the wall
clock with it). These run for every timer and delivery of every node, so
each guard is one closure, not a chain of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pye2.ports.clock import Clock
from pye2.ports.transport import Delivery

__all__ = ["LifeGuards"]


class LifeGuards:
    """Mixin of :class:`~pye2_transport_memory.node.node.SimulatedNode`: the life guards."""

    lock: threading.RLock
    clock: Clock
    is_running: bool
    _life: int
    _defer: bool
    _on_activity: Callable[[], None] | None

    def _run_in_life(self, life: int, action: Callable[[], None]) -> None:
        """Run ``action`` under the lock if the node is still in ``life``; then report activity."""
        with self.lock:
            if self._life != life or not self.is_running:
                return
            try:
                action()
            finally:
                if self._on_activity is not None:
                    self._on_activity()

    def _in_life(self, callback: Callable[[], None]) -> Callable[[], None]:
        """``callback`` as a timer of this life of the node (skipped after a stop or crash)."""
        life = self._life

        def run() -> None:  # _run_in_life(life, callback), inlined
            with self.lock:
                if self._life != life or not self.is_running:
                    return
                try:
                    callback()
                finally:
                    if self._on_activity is not None:
                        self._on_activity()

        return run

    def _guarded(self, handler: Callable[[Delivery], None]) -> Callable[[Delivery], None]:
        """A transport handler of this life of the node."""
        life = self._life
        if self._defer:
            return lambda delivery: self._defer_delivery(life, handler, delivery)

        def deliver(delivery: Delivery) -> None:  # _run_in_life(life, lambda: handler(delivery)), inlined
            with self.lock:
                if self._life != life or not self.is_running:
                    return
                try:
                    handler(delivery)
                finally:
                    if self._on_activity is not None:
                        self._on_activity()

        return deliver

    def _guarded_fields(self, handler: Callable[[str, bytes], None]) -> Callable[[Delivery], None]:
        """As :meth:`_guarded` for a ``handler(address, body)``."""
        life = self._life
        if self._defer:
            return lambda delivery: self._defer_delivery(life, lambda d: handler(d.address, d.body), delivery)

        def deliver(delivery: Delivery) -> None:
            with self.lock:
                if self._life != life or not self.is_running:
                    return
                try:
                    handler(delivery.address, delivery.body)
                finally:
                    if self._on_activity is not None:
                        self._on_activity()

        return deliver

    def _defer_delivery(self, life: int, handler: Callable[[Delivery], None], delivery: Delivery) -> None:
        self.clock.call_later(0.0, lambda: self._run_in_life(life, lambda: handler(delivery)))
