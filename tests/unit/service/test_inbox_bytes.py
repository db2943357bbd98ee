"""The inbox's byte bound: what a sender can make us hold is bounded in bytes, every drop reported once."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import pytest

from pye2.errors import ConfigError
from pye2.service.inbox import Inbox, body_size
from pye2.service.stats import SessionStats

MB = 1024 * 1024


def _message(n: int, size: int) -> tuple[str, bytes]:
    return ("payload", n.to_bytes(4, "big") + bytes(size - 4))


def _number(item: tuple[str, bytes]) -> int:
    return int.from_bytes(item[1][:4], "big")


def test_250_messages_of_4_mb_keep_at_most_64_mb_queued() -> None:
    stats = SessionStats()
    dropped: list[tuple[str, bytes, int]] = []

    def on_overflow(item: tuple[str, bytes, int]) -> None:
        dropped.append(item)
        stats.bump("dropped")

    inbox: Inbox[tuple[str, bytes, int]] = Inbox(100_000, max_bytes=64 * MB, on_overflow=on_overflow)
    for n in range(250):
        stats.count_received()
        inbox.put(("payload", bytes(4 * MB), n))  # (zeroed on demand: cheap to make)
        assert inbox.bytes <= 64 * MB
    assert inbox.bytes == 16 * 4 * MB and len(inbox) == 16
    assert len(dropped) == inbox.dropped == stats.dropped == 250 - 16
    assert stats.in_flight == 16
    kept = inbox.drain()
    assert [m[2] for m in kept] == list(range(234, 250))  # drop_oldest keeps the newest
    assert sorted(m[2] for m in dropped) == list(range(234))  # each drop reported exactly once
    assert inbox.bytes == 0


def test_drop_newest_refuses_what_does_not_fit() -> None:
    dropped: list[tuple[str, bytes]] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(100, "drop_newest", max_bytes=10 * MB, on_overflow=dropped.append)
    results = [inbox.put(_message(n, 4 * MB)) for n in range(5)]
    assert results == [True, True, False, False, False]
    assert inbox.bytes == 8 * MB
    assert inbox.put(_message(99, 2 * MB))  # still fits
    assert [_number(m) for m in dropped] == [2, 3, 4] and inbox.dropped == 3
    assert [_number(m) for m in inbox.drain()] == [0, 1, 99]


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_an_item_larger_than_the_bound_is_refused_and_reported(policy: str, caplog: pytest.LogCaptureFixture) -> None:
    dropped: list[tuple[str, bytes]] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(100, policy, max_bytes=MB, on_overflow=dropped.append)
    assert inbox.put(_message(1, MB // 2))
    with caplog.at_level(logging.WARNING, logger="pye2.service.inbox"):
        assert not inbox.put(_message(2, MB + 1))
    assert [_number(m) for m in dropped] == [2] and inbox.dropped == 1
    assert [_number(m) for m in inbox.drain()] == [1]  # nothing evicted for it
    assert any("larger than the inbox's byte bound" in r.getMessage() for r in caplog.records)


def test_drop_oldest_evicts_as_many_as_needed() -> None:
    dropped: list[tuple[str, bytes]] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(100, max_bytes=32 * MB, on_overflow=dropped.append)
    for n in range(32):
        inbox.put(_message(n, MB))
    assert not inbox.put(_message(32, 2 * MB))  # 2 MB = max_bytes / 16: an ordinary message, room made for it
    assert [_number(m) for m in dropped] == [0, 1]
    assert inbox.bytes == 32 * MB and len(inbox) == 31


def test_a_big_message_that_does_not_fit_is_refused_instead_of_evicting_many_small_ones() -> None:
    dropped: list[tuple[str, bytes]] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(1000, max_bytes=10 * MB, on_overflow=dropped.append)
    for n in range(100):
        inbox.put(_message(n, MB // 10))
    assert not inbox.put(_message(100, 5 * MB))  # a flood of big messages does not push the small ones out
    assert [_number(m) for m in dropped] == [100] and len(inbox) == 100
    inbox.put(_message(101, MB // 20))  # a small one is taken, the oldest making room as usual
    assert [_number(m) for m in dropped] == [100, 0] and len(inbox) == 100


def test_the_item_bound_still_applies() -> None:
    inbox: Inbox[tuple[str, bytes]] = Inbox(3, max_bytes=100 * MB)
    for n in range(5):
        inbox.put(_message(n, 10))
    assert len(inbox) == 3 and inbox.dropped == 2 and inbox.bytes == 30


def test_get_batch_and_drain_keep_the_byte_count() -> None:
    inbox: Inbox[tuple[str, bytes]] = Inbox(100, max_bytes=MB)
    for n in range(10):
        inbox.put(_message(n, 1000))
    assert inbox.bytes == 10_000
    batch = inbox.get_batch(3, timeout=0)
    assert [_number(m) for m in batch] == [0, 1, 2] and inbox.bytes == 7000
    batch = inbox.get_batch(100, timeout=0)
    assert len(batch) == 7 and inbox.bytes == 0
    inbox.put(_message(1, 500))
    assert inbox.drain() and inbox.bytes == 0
    assert inbox.get_batch(5, timeout=0) == [] and inbox.bytes == 0


def test_size_of_is_used_and_the_default_counts_the_bytes_in_the_item() -> None:
    assert body_size(("payload", b"abc")) == 3
    assert body_size(b"abcd") == 4 and body_size(memoryview(b"ab")) == 2 and body_size("abc") == 3
    assert body_size(("connection", object())) == 0
    assert body_size(object()) == 0
    sized: Inbox[tuple[str, bytes]] = Inbox(100, max_bytes=100, size_of=lambda item: len(item[1]))
    sized.put(("payload", b"x" * 60))
    assert sized.bytes == 60
    assert not sized.put(("payload", b"y" * 60))  # evicts the first
    assert sized.bytes == 60 and sized.dropped == 1


def test_after_close_puts_are_refused_and_reported_and_discard_drops_the_rest() -> None:
    dropped: list[Any] = []
    inbox: Inbox[int] = Inbox(10, on_overflow=dropped.append)
    inbox.put(1)
    inbox.put(2)
    inbox.close()
    assert not inbox.put(3)
    assert dropped == [3]
    assert inbox.discard() == 2
    assert dropped == [3, 1, 2] and inbox.dropped == 3 and len(inbox) == 0 and inbox.bytes == 0
    assert inbox.discard() == 0


def test_a_failing_on_overflow_does_not_hide_the_other_drops(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []

    def on_overflow(item: int) -> None:
        seen.append(item)
        if item == 0:
            raise RuntimeError("boom")

    inbox: Inbox[bytes] = Inbox(100, max_bytes=160, on_overflow=lambda b: on_overflow(b[0]))
    for n in range(16):
        inbox.put(bytes([n]) * 10)
    with caplog.at_level(logging.ERROR):
        inbox.put(b"\x63" * 10)  # evicts 0 (whose callback raises)
        inbox.put(b"\x64" * 10)  # and 1: every drop is still reported
    assert sorted(seen) == [0, 1]


def test_drops_are_logged_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    inbox: Inbox[int] = Inbox(1)
    with caplog.at_level(logging.WARNING, logger="pye2.service.inbox"):
        for n in range(2501):
            inbox.put(n)
    lines = [r.getMessage() for r in caplog.records if "inbox full" in r.getMessage()]
    assert len(lines) == 3  # the first drop, then at 1000 and 2000
    assert inbox.dropped == 2500


def test_bad_bounds() -> None:
    with pytest.raises(ConfigError):
        Inbox(10, max_bytes=0)
    with pytest.raises(ConfigError):
        Inbox(0)
    with pytest.raises(ConfigError):
        Inbox(10, "drop_random")


def test_concurrent_producers_count_every_message_once() -> None:
    """received == taken + dropped + queued, and stats.dropped == inbox.dropped (no double count)."""
    stats = SessionStats()
    inbox: Inbox[tuple[str, bytes]] = Inbox(
        50, max_bytes=64 * 1024, on_overflow=lambda _item: stats.bump("dropped"))
    taken: Counter[str] = Counter()
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() or len(inbox):
            for _ in inbox.get_batch(7, timeout=0.01):
                stats.count_delivered("payload")
                taken["n"] += 1

    def produce(seed: int) -> None:
        for n in range(3000):
            stats.count_received()
            inbox.put(("payload", bytes((n * seed) % 3000)))
            assert stats.in_flight >= 0

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [threading.Thread(target=produce, args=(seed,)) for seed in (1, 3, 7, 11)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    stop.set()
    consumer.join()
    s = stats.as_dict()
    assert s["received"] == 12_000
    assert s["dropped"] == inbox.dropped > 0
    assert s["received"] == sum(s["delivered"].values()) + s["dropped"] + s["in_flight"]
    assert s["in_flight"] == len(inbox) == 0 and inbox.bytes == 0
    assert taken["n"] == sum(s["delivered"].values())


def test_short_of_bytes_the_bulky_messages_go_first_and_order_is_kept() -> None:
    dropped: list[int] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(1000, max_bytes=MB, on_overflow=lambda item: dropped.append(_number(item)))
    assert inbox.bulky_bytes == 64 * 1024
    n = 0
    for _ in range(5):  # small, bulky, small, bulky, ... (the flood mixed with ordinary traffic)
        for _ in range(20):
            assert inbox.put(_message(n, 1024))
            n += 1
        assert inbox.put(_message(n, 150 * 1024))
        n += 1
    bulky = {20, 41, 62, 83, 104}
    assert inbox.bytes == 100 * 1024 + 5 * 150 * 1024
    for _ in range(400):  # ordinary traffic keeps coming while the consumer is behind
        inbox.put(_message(n, 1024))
        n += 1
    assert set(dropped) <= bulky and dropped == sorted(dropped)  # only bulky ones, oldest of them first
    assert dropped == [20, 41]  # 400 KB more needed 2 of them (300 KB), no small one
    assert inbox.bytes <= MB
    taken = [_number(item) for item in inbox.drain()]
    assert taken == sorted(taken)  # arrival order across both lanes
    assert set(taken) | set(dropped) == set(range(n))


def test_short_of_bytes_with_no_bulky_message_left_the_oldest_go() -> None:
    dropped: list[int] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(1000, max_bytes=MB, on_overflow=lambda item: dropped.append(_number(item)))
    inbox.put(_message(0, 200 * 1024))
    for n in range(1, 900):
        inbox.put(_message(n, 1024))
    assert dropped[0] == 0  # the bulky one first
    assert dropped[1:] == list(range(1, len(dropped)))  # then the oldest small ones
    batch = [_number(item) for item in inbox.get_batch(10_000)]
    assert batch == list(range(len(dropped), 900))


def test_short_of_slots_the_oldest_goes_even_if_small() -> None:
    dropped: list[int] = []
    inbox: Inbox[tuple[str, bytes]] = Inbox(3, max_bytes=MB, on_overflow=lambda item: dropped.append(_number(item)))
    inbox.put(_message(0, 1024))
    inbox.put(_message(1, 100 * 1024))
    inbox.put(_message(2, 1024))
    inbox.put(_message(3, 1024))
    assert dropped == [0]
    assert [_number(item) for item in inbox.get_batch(2)] == [1, 2]
    assert [_number(item) for item in inbox.get_batch(2)] == [3]
    assert len(inbox) == 0 and inbox.bytes == 0
