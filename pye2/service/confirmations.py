"""Command confirmations: handles that resolve from the node's notifications.

A command registers one :class:`Confirmation` holding one or more
expectations, each an :class:`~pye2.domain.notifications.ExpectedResponse`
from a node (spec section 4: pipeline 1/-1, archive 4/-4, instance config
100 or 120 / -100 or -120, instance command 101/-101). Each incoming
notification is offered only to the expectations indexed under its
``(node, pipeline)``, so matching costs O(1) in the number of open commands.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pye2.domain.keys import same_address
from pye2.domain.messages import NotificationEvent
from pye2.domain.notifications import COMM_RECEIVED_BAD_COMMAND, ExpectedResponse
from pye2.errors import CommandFailed, CommandTimeout

if TYPE_CHECKING:
    from pye2.ports.clock import Clock, Timer
    from pye2.service.stats import SessionStats

__all__ = ["DEFAULT_MAX_SKEW", "Confirmation", "ConfirmationTracker", "Expectation"]

log = logging.getLogger(__name__)

#: seconds a notification's signed node time may lag behind the command it confirms (node and client clocks differ)
DEFAULT_MAX_SKEW = 120.0


@dataclass(slots=True)
class Expectation:
    """One notification a command waits for: from which node, and which response.

    ``address``: the node's address the command went to (only a notification
    signed by it counts; None while the node's address is unknown: then the
    name's binding decides, see :mod:`pye2.service.directory`). ``sent_at``:
    session time the command was built; a notification whose signed node time
    is older than that by more than the tracker's ``max_skew`` answers an
    earlier command (or is a replay) and counts for nothing.
    """

    node: str
    response: ExpectedResponse
    met: bool = False
    address: str | None = None
    sent_at: float | None = None

    @property
    def pipeline(self) -> str:
        return self.response.pipeline


class Confirmation:
    """The outcome of one command: pending, confirmed, failed or timed out.

    ``wait(timeout)`` blocks (on the session's clock) and returns True when
    confirmed; ``result(timeout)`` raises :class:`~pye2.errors.CommandFailed`
    or :class:`~pye2.errors.CommandTimeout` instead of returning False.
    """

    def __init__(self, description: str, expectations: list[Expectation], tracker: ConfirmationTracker) -> None:
        self.description = description
        self.expectations = expectations
        self._tracker = tracker
        self._callbacks: list[Callable[[Confirmation], None]] = []
        self._timer: Timer | None = None
        self.error: Exception | None = None
        self.done = not expectations
        self.ok: bool | None = True if not expectations else None

    def __repr__(self) -> str:
        state = "pending" if not self.done else ("confirmed" if self.ok else f"failed: {self.error}")
        return f"<Confirmation {self.description}: {state}>"

    def add_done_callback(self, callback: Callable[[Confirmation], None]) -> None:
        """Call ``callback(self)`` once resolved (immediately if already)."""
        with self._tracker.cond:
            if not self.done:
                self._callbacks.append(callback)
                return
        callback(self)

    def remove_done_callback(self, callback: Callable[[Confirmation], None]) -> bool:
        """Forget a callback added by :meth:`add_done_callback` (a cancelled waiter); True if it was there."""
        with self._tracker.cond:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
                return True
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds of the session clock; True if confirmed."""
        self._tracker.clock.wait_until(lambda: self.done, timeout, self._tracker.cond)
        return bool(self.done and self.ok)

    def result(self, timeout: float | None = None) -> None:
        """Wait, then raise if the command failed or is still unconfirmed."""
        self.wait(timeout)
        if not self.done:
            raise CommandTimeout(f"{self.description}: no confirmation within {timeout} s")
        if not self.ok:
            assert self.error is not None
            raise self.error

    # -- resolution (tracker lock held) -------------------------------------------
    def _resolve(self, ok: bool, error: Exception | None) -> list[Callable[[Confirmation], None]]:
        if self.done:
            return []
        self.done, self.ok, self.error = True, ok, error
        if self._timer is not None:
            self._timer.cancel()
        callbacks, self._callbacks = self._callbacks, []
        return callbacks


class ConfirmationTracker:
    """Open confirmations, and the expectations of the sent ones indexed by ``(node, pipeline)``.

    A confirmation is *registered* when its command is built and *activated*
    when the command is actually sent: only then can notifications settle it
    and its timeout start. Done-callbacks run after the lock is released.
    """

    def __init__(self, clock: Clock, cond: threading.Condition | None = None, *,
                 max_skew: float = DEFAULT_MAX_SKEW, stats: SessionStats | None = None,
                 own: tuple[str, ...] = (), explain: Callable[[Confirmation], str] | None = None) -> None:
        self.clock = clock
        self.max_skew = float(max_skew)
        self.stale = 0
        self.stats = stats
        #: what identifies this session in a node's "invalid command from ..." text (address, initiator id)
        self.own = tuple(o for o in own if o)
        #: extra words for a timeout: what the session can see of the node
        self.explain = explain
        self.cond = cond if cond is not None else threading.Condition()
        self._open: dict[tuple[str, str], list[tuple[Expectation, Confirmation]]] = defaultdict(list)
        self._all: dict[int, Confirmation] = {}
        self.failed = 0

    def register(self, description: str, expectations: list[Expectation]) -> Confirmation:
        """A pending confirmation (already confirmed when there is nothing to expect)."""
        conf = Confirmation(description, expectations, self)
        if expectations:
            with self.cond:
                self._all[id(conf)] = conf
        return conf

    def activate(self, conf: Confirmation, timeout: float | None) -> None:
        """The command was sent: match notifications from now on, and start its timeout."""
        with self.cond:
            if conf.done:
                return
            for exp in conf.expectations:
                self._open[(exp.node, exp.pipeline)].append((exp, conf))
        if timeout is not None and timeout > 0:
            conf._timer = self.clock.call_later(timeout, lambda: self._expire(conf, timeout))

    def pending(self) -> int:
        """Confirmations not settled yet (sent or waiting their turn)."""
        with self.cond:
            return len(self._all)

    def fail(self, conf: Confirmation, error: Exception) -> None:
        """Settle ``conf`` as failed (its command could not be sent)."""
        with self.cond:
            callbacks = self._finish(conf, False, error)
        self._run(conf, callbacks)

    def _finish(self, conf: Confirmation, ok: bool, error: Exception | None) -> list[Callable[[Confirmation], None]]:
        callbacks = conf._resolve(ok, error)
        self._all.pop(id(conf), None)
        for exp in conf.expectations:
            bucket = self._open.get((exp.node, exp.pipeline))
            if bucket:
                bucket[:] = [(e, c) for e, c in bucket if c is not conf]
                if not bucket:
                    del self._open[(exp.node, exp.pipeline)]
        if not ok:
            self.failed += 1
        if self.stats is not None:
            self.stats.bump("commands_confirmed" if ok else (
                "commands_timed_out" if isinstance(error, CommandTimeout) else "commands_failed"))
        self.cond.notify_all()
        return callbacks

    @staticmethod
    def _run(conf: Confirmation, callbacks: list[Callable[[Confirmation], None]]) -> None:
        for cb in callbacks:
            try:
                cb(conf)
            except Exception:
                log.exception("confirmation callback of %s raised", conf.description)

    def _expire(self, conf: Confirmation, timeout: float) -> None:
        detail = ""
        if self.explain is not None and not conf.done:
            try:
                detail = self.explain(conf)
            except Exception:  # an explanation must never keep a timeout from firing
                log.debug("explaining a timeout failed", exc_info=True)
        with self.cond:
            callbacks = [] if conf.done else self._finish(
                conf, False, CommandTimeout(f"{conf.description}: no confirmation within {timeout} s"
                                            + (f" ({detail})" if detail else "")))
        self._run(conf, callbacks)

    def pending_for(self, address: str) -> bool:
        """Whether a sent command to ``address`` still waits for its answer."""
        if not self._open:  # the common case, read without the lock (a stale answer costs one heartbeat)
            return False
        with self.cond:
            return any(exp.address is not None and same_address(exp.address, address)
                       for bucket in self._open.values() for exp, conf in bucket if not conf.done)

    def fail_node(self, address: str, error: Callable[[Confirmation], Exception],
                  sent_before: float | None = None) -> int:
        """Fail every sent command to ``address`` (built before ``sent_before``, if given); returns how many."""
        with self.cond:
            hits = {id(conf): conf for bucket in self._open.values() for exp, conf in bucket
                    if not conf.done and exp.address is not None and same_address(exp.address, address)
                    and (sent_before is None or exp.sent_at is None or exp.sent_at <= sent_before)}
            settled = [(conf, self._finish(conf, False, error(conf))) for conf in hits.values()]
        for conf, callbacks in settled:
            self._run(conf, callbacks)
        return len(settled)

    def _bad_command(self, event: NotificationEvent) -> None:
        """A node's ``-5000`` ("INCOMING: Received invalid command from <initiator>(<sender>)..."): ours fail now."""
        if event.address is None:
            return
        said = f"{event.text} {event.data.get('INFO') or ''}"
        if self.own and not any(o in said for o in self.own):
            return  # another client's command
        sent_before = None if event.sent_at is None else event.sent_at + self.max_skew
        text = event.text[:300]
        self.fail_node(event.address, lambda conf: CommandFailed(
            f"{conf.description}: node {event.alias} refused the command ({event.code}: {text}); a node "
            f"refuses a command whose signature it cannot verify: is it in the signing mode this session "
            f"signs for (Session(eth=...))?", code=event.code, node_text=event.text), sent_before)

    def fail_all(self, reason: str) -> None:
        """Fail every open confirmation (session closing, transport gave up)."""
        with self.cond:
            settled = [(c, self._finish(c, False, CommandFailed(f"{c.description}: {reason}")))
                       for c in list(self._all.values())]
        for conf, callbacks in settled:
            self._run(conf, callbacks)

    def _answers(self, exp: Expectation, event: NotificationEvent) -> bool:
        """Whether ``event`` may settle ``exp``: from the address the command went to, and not older than it."""
        if exp.address is not None and event.address != exp.address and not (
                event.address is not None and same_address(event.address, exp.address)):
            return False
        if exp.sent_at is not None and event.sent_at is not None and event.sent_at < exp.sent_at - self.max_skew:
            self.stale += 1
            return False
        return True

    def offer(self, event: NotificationEvent) -> None:
        """Match a notification against the expectations of its (node, pipeline)."""
        if event.code == COMM_RECEIVED_BAD_COMMAND:
            self._bad_command(event)
            return
        if event.code is None or event.pipeline is None:
            return
        settled: list[tuple[Confirmation, list[Callable[[Confirmation], None]]]] = []
        with self.cond:
            keys = {(event.alias, event.pipeline)}
            if event.address:
                keys.add((event.address, event.pipeline))
            hits = [pair for key in keys for pair in self._open.get(key, ())]
            for exp, conf in hits:
                if conf.done or exp.met or not self._answers(exp, event):
                    continue
                verdict = exp.response.verdict(event.data)
                if verdict is True:
                    exp.met = True
                    if all(e.met for e in conf.expectations):
                        settled.append((conf, self._finish(conf, True, None)))
                elif verdict is False:
                    if event.text.startswith("Received duplicate"):
                        continue  # a real node warns about duplicates but still applies them
                    reason = exp.response.reason(event.data)
                    settled.append((conf, self._finish(conf, False, CommandFailed(
                        f"{conf.description}: node {event.alias} answered {event.code}: {reason}",
                        code=event.code, node_text=reason))))
        for conf, callbacks in settled:
            self._run(conf, callbacks)
