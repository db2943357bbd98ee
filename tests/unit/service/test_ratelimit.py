"""LogLimiter: one line per key per interval, bounded in keys and in bytes whatever the keys."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from pye2.service.ratelimit import SHORT, LogLimiter, make_key

MB = 1024 * 1024


def _key_bytes(key: Any) -> int:
    """Memory of one stored key: the key and, for a tuple, its parts."""
    if isinstance(key, tuple):
        return sys.getsizeof(key) + sum(sys.getsizeof(part) for part in key)
    return sys.getsizeof(key)


def test_once_per_interval_per_key() -> None:
    limiter = LogLimiter(interval=60.0)
    assert limiter.allow(("node-a", "signature"), 0.0)
    assert not limiter.allow(("node-a", "signature"), 10.0)
    assert limiter.allow(("node-b", "signature"), 10.0)
    assert limiter.allow(("node-a", "replay"), 10.0)
    assert not limiter.allow(("node-a", "signature"), 59.9)
    assert limiter.allow(("node-a", "signature"), 60.0)
    assert not limiter.allow(("node-a", "signature"), 61.0)
    assert limiter.suppressed == 3


def test_a_clock_that_steps_back_allows_the_line() -> None:
    limiter = LogLimiter(interval=60.0)
    assert limiter.allow(("k",), 1000.0)
    assert limiter.allow(("k",), 5.0)
    assert not limiter.allow(("k",), 6.0)


def test_least_recently_used_keys_are_forgotten_first() -> None:
    limiter = LogLimiter(max_keys=3, interval=60.0)
    for name in ("a", "b", "c"):
        assert limiter.allow((name,), 0.0)
    assert not limiter.allow(("a",), 1.0)  # "a" used again: now the most recent
    assert limiter.allow(("d",), 1.0)  # evicts "b", the least recently used
    assert len(limiter) == 3
    assert not limiter.allow(("a",), 2.0) and not limiter.allow(("c",), 2.0)
    assert limiter.allow(("b",), 2.0)  # forgotten: allowed again


def test_ten_thousand_distinct_megabyte_keys_stay_bounded() -> None:
    """The attack: every message names a new 1 MB sender. At most max_keys small keys are kept."""
    limiter = LogLimiter(max_keys=1024, interval=60.0)
    base = "s" * MB
    start = time.perf_counter()
    allowed = 0
    for i in range(10_000):
        sender = f"{i:08d}" + base  # distinct, 1 MB each (built one at a time, like arriving messages)
        allowed += limiter.allow((sender, "signature"), float(i) / 1000)
    elapsed = time.perf_counter() - start
    keys = limiter.stored_keys()
    assert allowed == 10_000
    assert len(keys) == len(limiter) <= 1024
    total = sum(_key_bytes(key) for key in keys)
    assert total < MB, total
    assert total < 100 * 1024  # in fact about 40 bytes a key
    assert elapsed < 30, elapsed


@pytest.mark.parametrize("part", [
    "x" * (10 * MB),
    b"\x00" * (10 * MB),
    bytearray(5 * MB),
    memoryview(b"y" * MB),
    ["z" * MB] * 1000,
    {"k": "v" * MB},
    1 << 100_000,
    object(),
], ids=["str", "bytes", "bytearray", "memoryview", "list", "dict", "huge-int", "object"])
def test_any_part_gives_a_small_key(part: object) -> None:
    key = make_key((part, "reason"))
    assert _key_bytes(key) < 200
    assert make_key((part, "reason")) == key  # stable


def test_short_string_keys_are_kept_as_they_are() -> None:
    assert make_key(("node-1", "signature")) == ("node-1", "signature")
    long = "n" * (SHORT + 1)
    assert isinstance(make_key((long, "signature")), bytes)
    assert make_key(("a", "b", "c", "d", "e")) != make_key(("a", "b", "c", "d", "f"))


def test_distinct_long_keys_stay_distinct() -> None:
    a = "a" * MB
    assert make_key((a + "1",)) != make_key((a + "2",))  # differ at the tail
    assert make_key(("1" + a,)) != make_key(("2" + a,))  # at the head
    assert make_key((a,)) != make_key((a + "a",))  # in length
    assert make_key(("x" * 100, "y")) != make_key(("x" * 100 + "y",))  # parts are separated
    assert make_key(("1" * 100,)) != make_key((b"1" * 100,)) != make_key((1,))


def test_threads_share_one_limiter() -> None:
    limiter = LogLimiter(max_keys=64, interval=1e9)
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [limiter.allow((f"k{i % 100}", "r"), 0.0) for i in range(2000)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(limiter) <= 64
    assert results.count(False) == limiter.suppressed
    assert results.count(True) + limiter.suppressed == 16_000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        LogLimiter(max_keys=0)
    with pytest.raises(ValueError):
        LogLimiter(interval=-1)
