"""Counters a session exposes as ``session.stats``."""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pye2.domain.messages import Rejected

__all__ = ["RECENT_REJECTIONS", "SessionStats"]

log = logging.getLogger(__name__)

#: rejections :attr:`SessionStats.recent_rejections` keeps (the oldest go first)
RECENT_REJECTIONS = 100


@dataclass
class SessionStats:
    """Message and callback counters (monotonic, since the session was built).

    ``received`` counts every message a transport handed over; each one ends
    as exactly one of ``delivered`` (by kind), ``rejected`` (by reason),
    ``filtered`` (``filter_workers``) or ``dropped`` (inbox overflow, or
    arrived after close), and until then it is ``in_flight`` (queued in the
    inbox or being decoded and routed), so at any moment::

        received == sum(delivered) + sum(rejected) + filtered + dropped + in_flight

    Each message is counted once in each: ``received`` when the transport
    hands it over (before it is queued), its outcome once, where it is
    decided (``dropped`` only by the inbox's ``on_overflow``, never also by
    whoever reads the inbox). Inbox items that are not messages (connection
    events) are never counted. ``in_flight`` is derived, not counted, from one
    consistent reading of the others; it is never negative.

    ``missed_payloads`` counts payloads that never arrived at all, from gaps in
    each node's ``EE_MESSAGE_SEQ`` (a payload rejected on arrival also leaves a
    gap; under RATIO1 payloads addressed to other receivers do too).
    ``duplicate_payloads`` counts repeats of the last number (at-least-once QoS),
    ``late_payloads`` numbers that arrived after a later one (no longer missed).

    Commands: ``commands_sent`` (published), and of those that wait for an
    answer, ``commands_confirmed``, ``commands_failed`` (refused by the node, not
    allowed, or could not be sent) and ``commands_timed_out``.

    Diagnostics (``pye2 watch``, ``pye2 doctor``): ``recent_rejections`` keeps the
    last :data:`RECENT_REJECTIONS` rejections with their details (sender-controlled
    text: clip it before showing it), and ``on_rejected``, if set, is called with
    each one as it is counted (on the thread that counts it; its errors are logged).

    ``stream_dropped`` counts payloads an asyncio payload stream
    (:mod:`pye2.aio`) dropped because its reader fell behind (its bound and
    policy are the inbox's). Such a payload was delivered to the session (it
    is in ``delivered``), so it stays out of the equation above.
    """

    received: int = 0
    delivered: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    filtered: int = 0
    dropped: int = 0
    missed_payloads: int = 0
    duplicate_payloads: int = 0
    late_payloads: int = 0
    callback_errors: int = 0
    slow_callbacks: int = 0
    skipped_busy_callbacks: int = 0
    commands_sent: int = 0
    commands_confirmed: int = 0
    commands_failed: int = 0
    commands_timed_out: int = 0
    stream_dropped: int = 0
    recent_rejections: deque[Rejected] = field(default_factory=lambda: deque(maxlen=RECENT_REJECTIONS),
                                               repr=False, compare=False)
    on_rejected: Callable[[Rejected], None] | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_received(self, n: int = 1) -> None:
        with self._lock:
            self.received += n

    def count_delivered(self, kind: str) -> None:
        with self._lock:
            self.delivered[kind] += 1

    def count_rejected(self, reason: str, rejected: Rejected | None = None) -> None:
        """Count one rejection; ``rejected`` (its details) is kept in ``recent_rejections`` and shown ``on_rejected``."""
        note = rejected if rejected is not None else Rejected(reason)
        with self._lock:
            self.rejected[reason] += 1
            self.recent_rejections.append(note)
        listener = self.on_rejected
        if listener is not None:
            try:
                listener(note)
            except Exception:  # an observer must not break counting
                log.warning("on_rejected listener failed", exc_info=True)

    def bump(self, name: str, n: int = 1) -> None:
        """Increment a plain integer counter by name."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def in_flight(self) -> int:
        """Messages received whose outcome is not counted yet (queued, or being decoded or routed)."""
        with self._lock:
            return self._in_flight()

    def _in_flight(self) -> int:
        """(Under the lock.)"""
        settled = sum(self.delivered.values()) + sum(self.rejected.values()) + self.filtered + self.dropped
        return self.received - settled

    def as_dict(self) -> dict[str, Any]:
        """A consistent snapshot (``in_flight`` included)."""
        with self._lock:
            return {
                "received": self.received,
                "delivered": dict(self.delivered),
                "rejected": dict(self.rejected),
                "filtered": self.filtered,
                "dropped": self.dropped,
                "in_flight": self._in_flight(),
                "missed_payloads": self.missed_payloads,
                "duplicate_payloads": self.duplicate_payloads,
                "late_payloads": self.late_payloads,
                "callback_errors": self.callback_errors,
                "slow_callbacks": self.slow_callbacks,
                "skipped_busy_callbacks": self.skipped_busy_callbacks,
                "commands_sent": self.commands_sent,
                "commands_confirmed": self.commands_confirmed,
                "commands_failed": self.commands_failed,
                "commands_timed_out": self.commands_timed_out,
                "stream_dropped": self.stream_dropped,
            }
