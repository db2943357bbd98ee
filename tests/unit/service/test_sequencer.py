"""CommandSequencer: commands without a confirmation go out at once and leave the tracker alone;
confirmable ones on one (node, pipeline) lane go one at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pye2.adapters.system_clock import SystemClock
from pye2.domain.messages import NotificationEvent
from pye2.domain.notifications import ExpectedResponse
from pye2.errors import TransportError
from pye2.service.confirmations import Confirmation, ConfirmationTracker, Expectation
from pye2.service.sequencer import CommandSequencer
from pye2.service.stats import SessionStats


class SpyTracker(ConfirmationTracker):
    """Records which confirmations were activated."""

    def __init__(self, clock: SystemClock, stats: SessionStats | None = None) -> None:
        super().__init__(clock, stats=stats)
        self.activated: list[Confirmation] = []

    def activate(self, conf: Confirmation, timeout: float | None) -> None:
        self.activated.append(conf)
        super().activate(conf, timeout)


@pytest.fixture
def clock() -> Iterator[SystemClock]:
    made = SystemClock()
    yield made
    made.close()


def _ok(pipeline: str) -> NotificationEvent:
    return NotificationEvent("node", None, pipeline, None, None, 1, "NORMAL", "ok",
                             {"EE_PAYLOAD_PATH": ["node", pipeline, None, None], "NOTIFICATION_CODE": 1})


def test_a_command_without_confirmation_is_sent_and_not_tracked(clock: SystemClock) -> None:
    tracker, stats, sent = SpyTracker(clock), SessionStats(), []
    sequencer = CommandSequencer(tracker, lambda topic, body: sent.append((topic, body)), stats)
    conf = tracker.register("pipeline command", [])
    sequencer.submit(None, "t/config", b"cmd", conf, 30.0)
    assert sent == [("t/config", b"cmd")]
    assert conf.done and conf.ok
    assert tracker.activated == [] and tracker.pending() == 0
    assert stats.commands_sent == 1


def test_confirmable_commands_on_one_lane_go_one_at_a_time(clock: SystemClock) -> None:
    tracker, stats, sent = SpyTracker(clock), SessionStats(), []
    sequencer = CommandSequencer(tracker, lambda topic, body: sent.append((topic, body)), stats)
    first = tracker.register("first", [Expectation("node", ExpectedResponse.pipeline_ok("p"))])
    second = tracker.register("second", [Expectation("node", ExpectedResponse.pipeline_ok("p"))])
    sequencer.submit(("node", "p"), "t/config", b"1", first, 30.0)
    sequencer.submit(("node", "p"), "t/config", b"2", second, 30.0)
    assert [body for _, body in sent] == [b"1"] and sequencer.waiting() == 1
    assert tracker.activated == [first]
    tracker.offer(_ok("p"))
    assert first.done and first.ok
    assert [body for _, body in sent] == [b"1", b"2"] and tracker.activated == [first, second]
    assert not second.done  # the notification answered the first command only
    tracker.offer(_ok("p"))
    assert second.ok and sequencer.waiting() == 0 and stats.commands_sent == 2


def test_a_failed_send_raises_and_frees_the_lane(clock: SystemClock) -> None:
    stats = SessionStats()
    tracker, sent = SpyTracker(clock, stats), []  # the tracker counts every failure, unsent commands too

    def publish(topic: str, body: bytes) -> None:
        if body == b"bad":
            raise TransportError("link down")
        sent.append((topic, body))

    sequencer = CommandSequencer(tracker, publish, stats)
    bad = tracker.register("bad", [Expectation("node", ExpectedResponse.pipeline_ok("p"))])
    with pytest.raises(TransportError):
        sequencer.submit(("node", "p"), "t/config", b"bad", bad, 30.0)
    assert bad.done and not bad.ok and stats.commands_failed == 1
    good = tracker.register("good", [Expectation("node", ExpectedResponse.pipeline_ok("p"))])
    sequencer.submit(("node", "p"), "t/config", b"good", good, 30.0)
    # both were matched from before their publish (an answer can beat publish() back); the bad one is settled
    assert sent == [("t/config", b"good")] and tracker.activated == [bad, good]
