"""Session on the wall clock: callbacks off the network thread, blocked callbacks, inbox overflow."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pye2 import Session
from pye2.service.inbox import Inbox
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork


@pytest.fixture()
def realtime_net() -> Any:
    with SimulatedNetwork(nodes=2, seed=11, realtime=True, heartbeat_interval=0.2) as net:
        yield net


def test_callbacks_run_on_the_dispatcher_thread_not_the_network_thread(realtime_net: Any) -> None:
    threads: set[str] = set()
    done = threading.Event()

    def on_hb(sess: Session, e2id: str, data: dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        if len(threads) and sess.stats.delivered["heartbeat"] >= 3:
            done.set()

    sess = Session(transport=realtime_net.transport(), clock=realtime_net.clock, identity=Identity.generate(),
                   on_heartbeat=on_hb)
    sess.connect()
    assert done.wait(20)
    sess.close()
    assert threads and all(name.startswith("pye2-dispatch") for name in threads)


def test_a_blocked_callback_is_reported_and_others_keep_receiving(realtime_net: Any) -> None:
    release = threading.Event()
    blocked = threading.Event()
    others: list[str] = []
    got_more = threading.Event()

    def stuck(sess: Session, e2id: str, data: dict[str, Any]) -> None:
        if not blocked.is_set():
            blocked.set()
            release.wait(30)

    def healthy(sess: Session, e2id: str, data: dict[str, Any]) -> None:
        others.append(e2id)
        if blocked.is_set() and len(others) >= 5:
            got_more.set()

    sess = Session(transport=realtime_net.transport(), clock=realtime_net.clock, identity=Identity.generate(),
                   on_heartbeat=stuck, blocked_callback_timeout=0.5)
    sess.dispatcher.add("heartbeat", ("*",), healthy)
    sess.connect()
    try:
        assert blocked.wait(20)
        assert got_more.wait(20), "delivery stopped behind a blocked callback"
        assert sess.stats.slow_callbacks >= 1
        assert sess.stats.skipped_busy_callbacks >= 1
    finally:
        release.set()
        sess.close()


def test_inbox_overflow_is_counted_and_keeps_the_newest() -> None:
    dropped: list[int] = []
    inbox: Inbox[int] = Inbox(3, "drop_oldest", on_overflow=dropped.append)
    for i in range(5):
        inbox.put(i)
    assert inbox.drain() == [2, 3, 4] and dropped == [0, 1] and inbox.dropped == 2
    newest: Inbox[int] = Inbox(2, "drop_newest")
    assert [newest.put(i) for i in range(3)] == [True, True, False]
    assert newest.drain() == [0, 1]


def test_session_counts_inbox_drops_as_dropped(realtime_net: Any) -> None:
    gate = threading.Event()
    sess = Session(transport=realtime_net.transport(), clock=realtime_net.clock, identity=Identity.generate(),
                   inbox_size=2, on_heartbeat=lambda s, e, d: gate.wait(5))
    sess.connect()
    try:
        assert sess.wait(lambda: sess.stats.dropped > 0, 20)
    finally:
        gate.set()
        sess.close()
    stats = sess.stats.as_dict()
    assert stats["received"] >= stats["dropped"] + sum(stats["delivered"].values())


@pytest.mark.mqtt
def test_connection_events_reach_on_connection_off_the_network_thread(mqtt_url: str) -> None:
    events: list[tuple[str, str]] = []
    reconnected = threading.Event()

    def on_connection(sess: Session, event: Any) -> None:
        events.append((event.state, threading.current_thread().name))
        if event.state == "connected" and any(s == "disconnected" for s, _ in events):
            reconnected.set()

    sess = Session(transport=mqtt_url, identity=Identity.generate(), on_connection=on_connection,
                   root_topic=f"pye2conn{threading.get_ident()}", env_file=None)
    sess.connect()
    try:
        sess.transport.force_reconnect()  # type: ignore[union-attr]
        assert reconnected.wait(20), events
        assert sess.is_connected
    finally:
        sess.close()
    assert events and all(name.startswith("pye2-dispatch") for _, name in events), events
