"""Collectors: handlers that record what arrives, and waits on a Condition.

Everything here blocks on a :class:`threading.Condition` with a timeout, never
on ``sleep``: a delivery made on any thread wakes the waiter at once.

* :class:`Collector` is a transport handler recording each :class:`Delivery`.
* :class:`EventRecorder` is a connection listener recording each
  :class:`ConnectionEvent`.
* :class:`SupportsForcedReconnect` is the optional protocol a transport
  implements so the kit can check resubscription after a reconnect, and
  :func:`force_reconnect_and_wait` drives it.
* :func:`address_matches` is the kit's own reference matcher for MQTT-style
  filters; the expectation models use it, independently of any transport.
* :func:`sync` publishes one sentinel per address and waits until every
  subscription has seen the sentinels of the addresses it matches: because
  order per address and publisher is preserved, everything published before
  has then arrived, so "nothing else came" can be checked without sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pye2.errors import ConfigError
from pye2.ports.transport import ConnectionEvent, Delivery, SupportsConnectionEvents, Transport

__all__ = [
    "SENTINEL_MARK",
    "Collector",
    "EventRecorder",
    "SupportsForcedReconnect",
    "Watched",
    "address_matches",
    "can_force_reconnect",
    "force_reconnect_and_wait",
    "sentinel_body",
    "sync",
]

log = logging.getLogger(__name__)

#: bodies starting with this are the kit's own sentinels; tests never publish such bodies otherwise
SENTINEL_MARK = b"\x00pye2-kit-sentinel:"


class Collector:
    """A transport handler that records every delivery; waits use a Condition.

    Use an instance as the ``handler`` of ``Transport.subscribe``. With
    ``raises`` set, it records the delivery and then raises that exception
    (to check that a failing handler does not stop later deliveries).
    """

    def __init__(self, raises: BaseException | None = None) -> None:
        self._cond = threading.Condition()
        self._deliveries: list[Delivery] = []
        self._raises = raises

    def __call__(self, delivery: Delivery) -> None:
        with self._cond:
            self._deliveries.append(delivery)
            self._cond.notify_all()
        if self._raises is not None:
            raise self._raises

    @property
    def deliveries(self) -> list[Delivery]:
        """A copy of everything received so far, in arrival order."""
        with self._cond:
            return list(self._deliveries)

    @property
    def bodies(self) -> list[bytes]:
        """The bodies received so far, in arrival order."""
        return [d.body for d in self.deliveries]

    def __len__(self) -> int:
        with self._cond:
            return len(self._deliveries)

    def wait_for(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` deliveries arrived; False on timeout."""
        return self.wait_until(lambda items: len(items) >= n, timeout)

    def wait_for_body(self, body: bytes, timeout: float) -> bool:
        """Block until a delivery with exactly ``body`` arrived; False on timeout."""
        return self.wait_until(lambda items: any(d.body == body for d in items), timeout)

    def wait_until(self, predicate: Callable[[Sequence[Delivery]], bool], timeout: float) -> bool:
        """Block until ``predicate(deliveries)`` holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._deliveries), timeout)

    def without_sentinels(self) -> list[Delivery]:
        """The deliveries that are not :func:`sync` sentinels, in arrival order."""
        return [d for d in self.deliveries if not d.body.startswith(SENTINEL_MARK)]


class EventRecorder:
    """A connection listener that records every :class:`ConnectionEvent`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[ConnectionEvent] = []

    def __call__(self, event: ConnectionEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    @property
    def events(self) -> list[ConnectionEvent]:
        """A copy of the events so far, in order."""
        with self._cond:
            return list(self._events)

    @property
    def states(self) -> list[str]:
        """The ``state`` of each event so far, in order."""
        return [e.state for e in self.events]

    def mark(self) -> int:
        """Index to pass as ``after`` so only later events count."""
        with self._cond:
            return len(self._events)

    def wait_for_state(self, state: str, timeout: float, *, after: int = 0) -> bool:
        """Block until an event with ``state`` is recorded at index >= ``after``."""
        with self._cond:
            return self._cond.wait_for(lambda: any(e.state == state for e in self._events[after:]), timeout)


@runtime_checkable
class SupportsForcedReconnect(Protocol):
    """Optional: lets the conformance kit test reconnection and resubscription.

    ``force_reconnect()`` drops the broker connection the way an outage would
    (the code path of a lost connection, not ``close()``) and may return at once.
    The transport must then reconnect by itself, restore every subscription that
    was not cancelled, and emit a ``"connected"`` :class:`ConnectionEvent`.
    Messages published by others while it is down may be lost.
    """

    def force_reconnect(self) -> None:
        """Simulate a lost connection; the transport reconnects on its own."""
        ...


def can_force_reconnect(transport: Transport) -> bool:
    """True when the kit can run its reconnect checks against ``transport``."""
    return (
        isinstance(transport, SupportsForcedReconnect)
        and isinstance(transport, SupportsConnectionEvents)
        and transport.capabilities.reconnects
    )


def force_reconnect_and_wait(transport: Transport, recorder: EventRecorder, timeout: float) -> bool:
    """Force a reconnect and wait for the ``"connected"`` event that follows it.

    ``recorder`` must already be registered with ``add_connection_listener``.
    """
    if not isinstance(transport, SupportsForcedReconnect):
        raise ConfigError(f"{type(transport).__name__} has no force_reconnect()")
    mark = recorder.mark()
    transport.force_reconnect()
    return recorder.wait_for_state("connected", timeout, after=mark)


def address_matches(filter_: str, address: str) -> bool:
    """Whether MQTT-style ``filter_`` (``+`` one level, trailing ``#`` any) matches ``address``."""
    want = filter_.split("/")
    have = address.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have):
            return False
        if level != "+" and level != have[i]:
            return False
    return len(want) == len(have)


def sentinel_body(round_id: str, address: str) -> bytes:
    """The body :func:`sync` publishes on ``address`` in round ``round_id``."""
    return SENTINEL_MARK + f"{round_id}:{address}".encode()


@dataclass(frozen=True)
class Watched:
    """A subscription :func:`sync` waits on: its filter and its collector."""

    filter: str
    collector: Collector


def _round_complete(watched: Iterable[Watched], addresses: Sequence[str], round_id: str) -> bool:
    for w in watched:
        needed = {sentinel_body(round_id, a) for a in addresses if address_matches(w.filter, a)}
        if needed and not needed.issubset({d.body for d in w.collector.deliveries}):
            return False
    return True


def sync(
    publisher: Transport,
    watched: Sequence[Watched],
    addresses: Sequence[str],
    timeout: float,
    *,
    retry_every: float | None = None,
) -> bool:
    """Publish a sentinel on each address; wait until each watched collector has its own.

    With ``retry_every``, a fresh round is published when a round has not
    completed after that many seconds, the wait doubling each round up to 2 s
    (used after a reconnect, when the first sentinels may be lost while
    subscriptions are restored). Returns False if no round completes within
    ``timeout``.
    """
    deadline = time.monotonic() + timeout
    interval = retry_every
    while True:
        round_id = uuid.uuid4().hex
        for address in addresses:
            publisher.publish(address, sentinel_body(round_id, address))
        remaining = deadline - time.monotonic()
        step = remaining if interval is None else min(interval, remaining)
        if _wait_all(watched, addresses, round_id, max(step, 0.0)):
            return True
        if interval is not None:
            interval = min(interval * 2, max(retry_every or 0.0, 2.0))
        if time.monotonic() >= deadline:
            log.warning("sync round %s incomplete after %.1fs", round_id, timeout)
            return False


def _has_all(needed: set[bytes]) -> Callable[[Sequence[Delivery]], bool]:
    return lambda items: needed.issubset({d.body for d in items})


def _wait_all(watched: Sequence[Watched], addresses: Sequence[str], round_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for w in watched:
        needed = {sentinel_body(round_id, a) for a in addresses if address_matches(w.filter, a)}
        if not needed:
            continue
        if not w.collector.wait_until(_has_all(needed), max(deadline - time.monotonic(), 0.0)):
            return False
    return _round_complete(watched, addresses, round_id)
