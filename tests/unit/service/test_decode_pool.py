"""DecodePool and DispatchWorker: parallel decoding keeps arrival order and loses nothing.

* results come back in item order whatever the split, with the helpers really used;
* an exception in ``decode`` comes back in its item's place (logged), the rest is decoded;
* close() with work queued: map() still returns every result (the caller takes the job over);
* the worker applies every item in order, and when a callback blocks mid-batch the
  replacement dispatcher applies the rest of that batch (none is lost, none twice).
"""

from __future__ import annotations

import threading
from typing import Any

from pye2.service.decode_pool import DecodePool
from pye2.service.dispatch import Dispatcher
from pye2.service.inbox import Inbox
from pye2.service.stats import SessionStats
from pye2.service.worker import DispatchWorker


def test_results_are_in_item_order_and_helpers_do_part_of_the_work() -> None:
    seen_threads: set[str] = set()

    def decode(x: int) -> int:
        seen_threads.add(threading.current_thread().name)
        return x * x

    pool: DecodePool[int, int] = DecodePool(decode, threads=3, name="t")
    try:
        for size in (0, 1, 7, 16, 17, 100, 256):
            items = list(range(size))
            assert pool.map(items) == [x * x for x in items]
    finally:
        pool.close()
    assert any(name.startswith("pye2-decode-t-") for name in seen_threads)
    assert threading.current_thread().name in seen_threads


def test_an_exception_is_returned_in_its_place() -> None:
    def decode(x: int) -> int:
        if x == 40:
            raise ValueError("boom")
        return x

    pool: DecodePool[int, int] = DecodePool(decode, threads=2)
    try:
        out = pool.map(list(range(64)))
    finally:
        pool.close()
    assert isinstance(out[40], ValueError)
    assert [v for i, v in enumerate(out) if i != 40] == [i for i in range(64) if i != 40]


def test_map_after_close_runs_inline() -> None:
    pool: DecodePool[int, int] = DecodePool(lambda x: x + 1, threads=2)
    assert pool.map(list(range(32))) == list(range(1, 33))
    pool.close()
    assert pool.map(list(range(32))) == list(range(1, 33))


def test_close_while_jobs_are_queued_still_returns_every_result() -> None:
    gate = threading.Event()
    started = threading.Event()

    def decode(x: int) -> int:
        if x == 20 and threading.current_thread().name.startswith("pye2-decode"):
            started.set()
            gate.wait(10)
        return x

    pool: DecodePool[int, int] = DecodePool(decode, threads=2)
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(pool.map(list(range(32)))))
    t.start()
    assert started.wait(10)
    closer = threading.Thread(target=pool.close)
    closer.start()
    gate.set()
    t.join(10)
    closer.join(10)
    assert result == [list(range(32))]


def _worker(inbox: Inbox[tuple[str, Any]], apply: Any, dispatcher: Dispatcher, threads: int = 2,
            blocked: float = 10.0) -> DispatchWorker:
    return DispatchWorker(inbox, lambda item: item[1] * 10, apply, dispatcher, dispatcher.stats, name="w",
                          blocked_timeout=blocked, decode_threads=threads)


def test_worker_applies_every_item_in_order_with_its_decoded_value() -> None:
    inbox: Inbox[tuple[str, Any]] = Inbox(10_000)
    applied: list[tuple[int, int]] = []
    done = threading.Event()

    def apply(kind: str, body: int, decoded: int) -> None:
        applied.append((body, decoded))
        if len(applied) == 2000:
            done.set()

    worker = _worker(inbox, apply, Dispatcher(SessionStats()))
    for i in range(2000):
        inbox.put(("payload", i))
    worker.start()
    try:
        assert done.wait(20)
    finally:
        worker.stop()
    assert applied == [(i, i * 10) for i in range(2000)]


def test_a_blocked_callback_does_not_lose_the_rest_of_its_batch() -> None:
    stats = SessionStats()
    dispatcher = Dispatcher(stats)
    inbox: Inbox[tuple[str, Any]] = Inbox(10_000)
    release = threading.Event()
    applied: list[int] = []
    done = threading.Event()

    def user_callback(body: int) -> None:
        if body == 5:
            release.wait(30)  # blocks the first dispatcher thread mid-batch

    def apply(kind: str, body: int, decoded: int) -> None:
        dispatcher.call(user_callback, body)
        applied.append(body)
        if len(set(applied) - {5}) == 99:  # 5 itself is appended once its callback returns
            done.set()

    worker = _worker(inbox, apply, dispatcher, blocked=0.3)
    for i in range(100):
        inbox.put(("payload", i))
    worker.start()
    try:
        assert done.wait(20), f"applied {len(set(applied))} of 100"
    finally:
        release.set()
        worker.stop()
    assert 5 in applied  # the blocked thread finishes its item when released
    assert sorted(applied) == list(range(100))  # each once (5 is appended when its callback returns)
    assert [b for b in applied if b != 5] == [i for i in range(100) if i != 5]
    assert stats.as_dict()["slow_callbacks"] == 1
