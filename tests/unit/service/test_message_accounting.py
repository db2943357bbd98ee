"""Every message counted once: received == delivered + rejected + filtered + dropped + in_flight.

And the counters next to it counted once too (a blocked callback is one slow callback).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pye2.service.dispatch import Dispatcher
from pye2.service.inbox import Inbox
from pye2.service.stats import SessionStats
from pye2.service.worker import DispatchWorker


def _settled(s: dict[str, Any]) -> int:
    return int(sum(s["delivered"].values()) + sum(s["rejected"].values()) + s["filtered"] + s["dropped"])


def test_in_flight_is_what_has_no_outcome_yet() -> None:
    stats = SessionStats()
    assert stats.in_flight == 0 and stats.as_dict()["in_flight"] == 0
    stats.count_received(10)
    stats.count_delivered("payload")
    stats.count_delivered("heartbeat")
    stats.count_rejected("signature")
    stats.bump("filtered")
    stats.bump("dropped", 2)
    assert stats.in_flight == 4
    s = stats.as_dict()
    assert s["in_flight"] == 4 and s["received"] == _settled(s) + s["in_flight"]
    stats.bump("missed_payloads", 7)  # not messages we received: no effect
    stats.bump("callback_errors")
    assert stats.in_flight == 4


def test_as_dict_is_one_consistent_reading_under_concurrent_counting() -> None:
    stats = SessionStats()
    stop = threading.Event()
    bad: list[dict[str, Any]] = []

    def count() -> None:
        while not stop.is_set():
            stats.count_received()
            stats.count_delivered("payload")

    def read() -> None:
        while not stop.is_set():
            s = stats.as_dict()
            if s["in_flight"] < 0 or s["received"] != _settled(s) + s["in_flight"]:
                bad.append(s)

    threads = [threading.Thread(target=count), threading.Thread(target=read)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not bad


def test_a_blocked_callback_is_counted_slow_once() -> None:
    """The watchdog reports a blocked callback; when it returns, the dispatcher must not count it again."""
    stats = SessionStats()
    dispatcher = Dispatcher(stats, slow_threshold=0.05)
    inbox: Inbox[tuple[str, Any]] = Inbox(100, on_overflow=lambda _i: stats.bump("dropped"))
    release = threading.Event()
    calls: list[Any] = []

    def callback(body: Any) -> None:
        calls.append(body)
        if body == b"block":
            release.wait(10)

    def apply(kind: str, body: Any, decoded: Any) -> None:
        dispatcher.call(callback, body)
        stats.count_delivered(kind)

    worker = DispatchWorker(inbox, lambda item: None, apply, dispatcher, stats, name="logsafety",
                            blocked_timeout=0.2, decode_threads=1)
    worker.start()
    try:
        stats.count_received()
        inbox.put(("payload", b"block"))
        deadline = time.monotonic() + 10
        while stats.slow_callbacks == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stats.slow_callbacks == 1
        release.set()
        deadline = time.monotonic() + 10
        while stats.delivered["payload"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert stats.slow_callbacks == 1  # not counted again on return
        assert stats.in_flight == 0
    finally:
        release.set()
        worker.stop()


def test_messages_left_in_the_inbox_at_stop_are_counted_dropped_once() -> None:
    stats = SessionStats()
    inbox: Inbox[tuple[str, Any]] = Inbox(100, on_overflow=lambda _i: stats.bump("dropped"))
    dispatcher = Dispatcher(stats)
    worker = DispatchWorker(inbox, lambda item: None, lambda kind, body, decoded: stats.count_delivered(kind),
                            dispatcher, stats, name="leftovers", decode_threads=1)
    for n in range(5):  # queued before the worker runs: never taken
        stats.count_received()
        inbox.put(("payload", bytes([n])))
    inbox.close()
    worker.stop()
    assert len(inbox) == 5  # left for the owner: the session calls discard() after stopping the worker
    assert inbox.discard() == 5
    stats.count_received()
    inbox.put(("payload", b"late"))  # after close: refused, counted dropped
    s = stats.as_dict()
    assert s["dropped"] == 6 == inbox.dropped
    assert s["in_flight"] == 0
    assert s["received"] == sum(s["delivered"].values()) + sum(s["rejected"].values()) + s["filtered"] + \
        s["dropped"] + s["in_flight"]
