"""Playing a capture back: onto a broker in (scaled) real time, or into a simulated network.

* :class:`Replayer` publishes each record's body to its topic (optionally
  under another root, :func:`rewrite_root`), paced by a :class:`Pacer`;
  records omitted at capture are skipped and counted, a body the transport
  refuses (too large, a topic it cannot route) is counted and the replay goes on.
* :class:`WallPacer`: the captured gaps divided by ``speed`` on the wall clock
  (``speed=0``: as fast as possible); a ``threading.Event`` stops it early.
* :class:`VirtualPacer`: moves a virtual clock to each record's captured time
  (shifted forward if the capture predates the clock), so a session on the
  simulated network judges timestamps and online status as it did live.
* :func:`replay_into_session`: a fresh :class:`~pye2.Session` on a simulated
  network with no nodes (the ``sim://`` transport from the plugin host),
  fed through the network's hub; returns the session's message counters.
  A fresh session sees each message once, so its deliveries and rejections
  are the live session's (its replay guard only refuses a message seen twice).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pye2.capture import CaptureRecord
from pye2.domain.logtext import clip
from pye2.domain.profiles import WireProfile
from pye2.errors import ConfigError, MessageTooLarge, Pye2Error

__all__ = [
    "MESSAGE_COUNTERS",
    "AdvancingClock",
    "Pacer",
    "ReplayReport",
    "Replayer",
    "VirtualPacer",
    "WallPacer",
    "message_counters",
    "replay_into_session",
    "rewrite_root",
]

log = logging.getLogger(__name__)

#: the session counters a replay reproduces (commands are the live session's own, not replayed)
MESSAGE_COUNTERS = ("received", "delivered", "rejected", "filtered", "dropped", "missed_payloads",
                    "duplicate_payloads", "late_payloads")

Publish = Callable[[str, bytes], None]


class Pacer(Protocol):
    """Decides when the next record goes out."""

    def wait_until(self, captured_time: float) -> bool:
        """Return once the record captured at ``captured_time`` is due; False to stop the replay."""
        ...


class AdvancingClock(Protocol):
    """A clock the replay moves (the simulator's ``VirtualClock``)."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def advance(self, seconds: float) -> int:
        """Move forward, running what falls due."""
        ...


class WallPacer:
    """Keeps the captured gaps, divided by ``speed``, on the wall clock.

    Args:
        speed: 1.0 = as captured, 2.0 = twice as fast, 0 = no waiting at all.
        stop: set it to end the replay early (checked between records).
    """

    def __init__(self, speed: float = 1.0, stop: threading.Event | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed < 0:
            raise ConfigError(f"speed must be a finite number >= 0, not {speed!r}")
        self.speed = float(speed)
        self.stop = stop or threading.Event()
        self._monotonic = monotonic
        self._anchor: tuple[float, float] | None = None

    def wait_until(self, captured_time: float) -> bool:
        if self.speed == 0:
            return not self.stop.is_set()
        if self._anchor is None:
            self._anchor = (captured_time, self._monotonic())
        first, started = self._anchor
        delay = started + (captured_time - first) / self.speed - self._monotonic()
        if delay > 0:
            return not self.stop.wait(delay)
        return not self.stop.is_set()


class VirtualPacer:
    """Moves a virtual clock to each record's captured time (plus ``offset``)."""

    def __init__(self, clock: AdvancingClock, offset: float = 0.0) -> None:
        self.clock = clock
        self.offset = offset

    def start_at(self, first_time: float) -> None:
        """Position the clock at the first record (or shift the capture if it predates the clock)."""
        now = self.clock.time()
        if first_time < now:
            self.offset = now - first_time
            log.warning("the capture starts before the simulated clock (%.0f < %.0f): its times are shifted by "
                        "%.0f s, so message timestamps look that much older", first_time, now, self.offset)
        else:
            self.clock.advance(first_time - now)

    def wait_until(self, captured_time: float) -> bool:
        delay = captured_time + self.offset - self.clock.time()
        if delay > 0:
            self.clock.advance(delay)
        return True


def rewrite_root(topic: str, old: str | None, new: str | None) -> str:
    """``topic`` with its first level ``old`` replaced by ``new`` (other topics unchanged)."""
    if not old or not new or old == new:
        return topic
    if topic == old:
        return new
    if topic.startswith(old + "/"):
        return new + topic[len(old):]
    return topic


@dataclass
class ReplayReport:
    """What a replay did."""

    published: int = 0
    bytes: int = 0
    #: records omitted at capture (no body to publish)
    omitted: int = 0
    #: publishes refused by the transport, by reason
    failed: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    first_time: float | None = None
    last_time: float | None = None
    elapsed: float = 0.0

    @property
    def captured_span(self) -> float:
        """Seconds between the first and last record replayed."""
        if self.first_time is None or self.last_time is None:
            return 0.0
        return self.last_time - self.first_time

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {"published": self.published, "bytes": self.bytes, "omitted": self.omitted,
                "failed": dict(self.failed), "interrupted": self.interrupted,
                "captured_span": round(self.captured_span, 3), "elapsed": round(self.elapsed, 3)}


class Replayer:
    """Publishes records in order, paced.

    Args:
        publish: ``publish(topic, body)`` (a transport's ``publish``, or a hub's).
        pacer: when each record goes out.
        root: ``(captured_root, new_root)`` to move the capture to another topic root.
    """

    def __init__(self, publish: Publish, pacer: Pacer, *, root: tuple[str | None, str | None] = (None, None)) -> None:
        self._publish = publish
        self.pacer = pacer
        self.root = root

    def play(self, records: Iterable[CaptureRecord], report: ReplayReport | None = None) -> ReplayReport:
        """Publish every record; returns (and fills) ``report``.

        Raises:
            TransportError: the transport failed for good (closed, connection lost and not coming back).
        """
        report = report if report is not None else ReplayReport()
        started = time.monotonic()
        try:
            for record in records:
                if not self.pacer.wait_until(record.time):
                    report.interrupted = True
                    break
                if report.first_time is None:
                    report.first_time = record.time
                report.last_time = record.time
                if record.body is None:
                    report.omitted += 1
                    continue
                topic = rewrite_root(record.topic, *self.root)
                try:
                    self._publish(topic, record.body)
                except MessageTooLarge:
                    report.failed["too_large"] += 1
                    log.warning("replay: %s refused a %d-byte body (too large)", clip(topic, 120), record.size)
                    continue
                except ConfigError as exc:
                    report.failed["refused"] += 1
                    log.warning("replay: cannot publish to %s: %s", clip(topic, 120), exc)
                    continue
                report.published += 1
                report.bytes += record.size
        finally:
            report.elapsed = time.monotonic() - started
        return report


def message_counters(stats: dict[str, Any]) -> dict[str, Any]:
    """The part of ``SessionStats.as_dict()`` a replay reproduces (:data:`MESSAGE_COUNTERS`)."""
    return {key: stats[key] for key in MESSAGE_COUNTERS if key in stats}


def replay_into_session(
    records: Iterable[CaptureRecord],
    *,
    profile: WireProfile,
    identity: Any = None,
    verify: str = "strict",
    host: Any = None,
    report: ReplayReport | None = None,
    root: tuple[str | None, str | None] = (None, None),
    session_options: dict[str, Any] | None = None,
) -> tuple[ReplayReport, dict[str, Any]]:
    """Feed ``records`` to a fresh session on an empty simulated network; return the report and its counters.

    ``profile`` carries the session's topic root (the records' root after
    ``root`` rewriting). ``identity``: the session's key (the live session's,
    to receive what was addressed or encrypted to it); default a new one.

    Raises:
        ConfigError: the plugin host has no simulated network with a hub.
    """
    from pye2.service.session import Session

    if host is None:
        from pye2.plugins.host import default_host

        host = default_host()
    transport = host.make_transport(f"sim://?nodes=0&profile={profile.name}")
    network = getattr(transport, "network", None)
    hub = getattr(network, "hub", None)
    clock = getattr(transport, "clock", None)
    if hub is None or clock is None or not hasattr(clock, "advance"):
        raise ConfigError("the sim:// transport does not expose a hub and a virtual clock to replay into")
    if identity is None:
        from pye2.wire import Identity

        identity = Identity.generate()
    pacer = VirtualPacer(clock)
    items = iter(records)
    first = next(items, None)
    session = Session(transport=transport, profile=profile, identity=identity, verify=verify, name="pye2-replay",
                      env_file=None, **(session_options or {}))
    report = report if report is not None else ReplayReport()
    try:
        if first is not None:
            pacer.start_at(first.time)
        session.connect()
        if first is not None:
            Replayer(hub.publish, pacer, root=root).play(_chain(first, items), report)
        counters = message_counters(session.stats.as_dict())
    finally:
        try:
            session.close()
        except Pye2Error:  # pragma: no cover - closing a simulated session does not fail
            log.exception("closing the replay session failed")
    return report, counters


def _chain(first: CaptureRecord, rest: Iterable[CaptureRecord]) -> Iterable[CaptureRecord]:
    yield first
    yield from rest
