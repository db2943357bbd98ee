"""One confirmable command in flight per ``(node, pipeline)``.

Nodes do not say which command a notification answers: "pipeline X updated"
follows any update of X. If two updates of X were in flight and the first was
lost, the second's notification would confirm both. So a command that expects
a confirmation waits until the previous one for the same pipeline on the same
node has settled (confirmed, refused, timed out or failed to send); each
notification then answers exactly one command, and a lost command is reported
as lost. Commands that expect nothing are sent at once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pye2.domain.logtext import clip
from pye2.errors import Pye2Error
from pye2.service.confirmations import Confirmation, ConfirmationTracker
from pye2.service.stats import SessionStats

__all__ = ["CommandSequencer"]

log = logging.getLogger(__name__)

LaneKey = tuple[str, str]


@dataclass(slots=True)
class _Queued:
    topic: str
    body: bytes
    conf: Confirmation
    timeout: float | None


class CommandSequencer:
    """Per-pipeline lanes of commands waiting for their confirmation."""

    def __init__(self, tracker: ConfirmationTracker, publish: Callable[[str, bytes], None],
                 stats: SessionStats) -> None:
        self._tracker = tracker
        self._publish = publish
        self._stats = stats
        self._lock = threading.Lock()
        self._lanes: dict[LaneKey, deque[_Queued]] = {}

    def submit(self, lane: LaneKey | None, topic: str, body: bytes, conf: Confirmation,
               timeout: float | None) -> None:
        """Send now, or after the lane's earlier commands settle. Raises if sending now fails."""
        item = _Queued(topic, body, conf, timeout)
        if lane is None or conf.done:
            error = self._send(item)
            if error is not None:
                raise error
            return
        with self._lock:
            queue = self._lanes.setdefault(lane, deque())
            queue.append(item)
            if len(queue) > 1:
                log.debug("%s waits for %d earlier command(s) on %s", clip(conf.description), len(queue) - 1,
                          clip(lane))
                return
        error = self._send(item)
        if error is None:
            conf.add_done_callback(lambda _c: self._advance(lane))
        else:
            self._advance(lane)
            raise error

    def waiting(self) -> int:
        """Commands queued behind an unsettled one."""
        with self._lock:
            return sum(max(len(q) - 1, 0) for q in self._lanes.values())

    def _send(self, item: _Queued) -> Pye2Error | None:
        # Matched from before the publish: a node's answer may arrive while publish() is still returning
        # (an in-process network delivers inline; a -5000 is sent the moment the command is received).
        if not item.conf.done:  # nothing to match or time out otherwise (and no tracker lock to take)
            self._tracker.activate(item.conf, item.timeout)
        try:
            self._publish(item.topic, item.body)
        except Pye2Error as exc:
            self._tracker.fail(item.conf, exc)  # counted there, with every other failure
            return exc
        self._stats.bump("commands_sent")
        return None

    def _advance(self, lane: LaneKey) -> None:
        """The lane's head settled: send the next command that is still wanted."""
        while True:
            with self._lock:
                queue = self._lanes.get(lane)
                if not queue:
                    return
                queue.popleft()
                while queue and queue[0].conf.done:  # settled while waiting (e.g. session closing)
                    queue.popleft()
                if not queue:
                    del self._lanes[lane]
                    return
                nxt = queue[0]
            error = self._send(nxt)
            if error is None:
                nxt.conf.add_done_callback(lambda _c: self._advance(lane))
                return
            log.warning("%s could not be sent: %s", clip(nxt.conf.description), clip(error))
