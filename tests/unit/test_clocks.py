"""VirtualClock and SystemClock: timers, cancellation, and waits (no timing assertions)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from pye2.adapters.system_clock import SystemClock
from pye2.errors import ConfigError
from pye2.ports.clock import Clock, Timer
from pye2_transport_memory import VirtualClock
from pye2_transport_memory.clock import DEFAULT_EPOCH

WAIT = 10.0  # generous bound for real-time waits; never asserted on


# -- VirtualClock ------------------------------------------------------------------


def test_virtual_clock_implements_the_port() -> None:
    clock = VirtualClock()
    assert isinstance(clock, Clock)
    assert isinstance(clock.call_later(1, lambda: None), Timer)


def test_time_starts_at_a_fixed_epoch_and_moves_only_when_advanced() -> None:
    clock = VirtualClock()
    assert clock.time() == DEFAULT_EPOCH and clock.monotonic() == 0.0
    assert clock.advance(90.5) == 0
    assert clock.time() == DEFAULT_EPOCH + 90.5 and clock.monotonic() == 90.5
    assert VirtualClock(start=10.0).time() == 10.0


def test_timers_run_in_due_order_fifo_for_ties_at_their_due_time() -> None:
    clock = VirtualClock()
    ran: list[tuple[str, float]] = []

    def note(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, clock.monotonic()))

    for name, delay in [("c", 3), ("a1", 1), ("b", 2), ("a2", 1), ("a3", 1)]:
        clock.call_later(delay, note(name))
    assert clock.advance(10) == 5
    assert ran == [("a1", 1), ("a2", 1), ("a3", 1), ("b", 2), ("c", 3)]
    assert clock.monotonic() == 10


def test_cancelled_timer_does_not_run() -> None:
    clock = VirtualClock()
    ran: list[str] = []
    keep = clock.call_later(1, lambda: ran.append("keep"))
    drop = clock.call_later(1, lambda: ran.append("drop"))
    drop.cancel()
    drop.cancel()
    assert clock.pending() == 1
    clock.advance(2)
    assert ran == ["keep"]
    assert drop.cancelled and not drop.done and keep.done
    keep.cancel()  # after it ran: no effect
    assert not keep.cancelled and clock.pending() == 0


def test_timers_scheduled_by_timers_run_if_due_within_the_window() -> None:
    clock = VirtualClock()
    ran: list[tuple[str, float]] = []

    def first() -> None:
        ran.append(("first", clock.monotonic()))
        clock.call_later(2, lambda: ran.append(("inside", clock.monotonic())))
        clock.call_later(10, lambda: ran.append(("outside", clock.monotonic())))

    clock.call_later(1, first)
    clock.advance(5)
    assert ran == [("first", 1), ("inside", 3)]
    assert clock.next_due() == 11 and clock.pending() == 1
    clock.advance(6)
    assert ran[-1] == ("outside", 11)


def test_zero_and_negative_delays_run_on_the_next_advance() -> None:
    clock = VirtualClock()
    ran: list[int] = []
    clock.call_later(0, lambda: ran.append(0))
    clock.call_later(-5, lambda: ran.append(-5))
    assert ran == []
    assert clock.advance(0) == 2
    assert ran == [0, -5] and clock.monotonic() == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1"])
def test_bad_delay_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError):
        VirtualClock().call_later(bad, lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_bad_advance_is_a_config_error(bad: float) -> None:
    with pytest.raises(ConfigError):
        VirtualClock().advance(bad)


def test_step_jumps_to_the_next_timer() -> None:
    clock = VirtualClock()
    ran: list[int] = []
    clock.call_later(7, lambda: ran.append(7))
    assert clock.step() is True
    assert ran == [7] and clock.monotonic() == 7
    assert clock.step() is False and clock.monotonic() == 7


def test_run_until_jumps_timer_to_timer_and_stops_when_true() -> None:
    clock = VirtualClock()
    count = [0]
    for delay in (1, 2, 3, 4):
        clock.call_later(delay, lambda: count.__setitem__(0, count[0] + 1))
    assert clock.run_until(lambda: count[0] >= 3) is True
    assert clock.monotonic() == 3 and clock.pending() == 1


def test_run_until_stops_at_the_timeout() -> None:
    clock = VirtualClock()
    ran: list[int] = []
    clock.call_later(1, lambda: ran.append(1))
    clock.call_later(20, lambda: ran.append(20))
    assert clock.run_until(lambda: False, timeout=5) is False
    assert ran == [1] and clock.monotonic() == 5


def test_run_until_with_a_time_based_predicate_reaches_the_deadline() -> None:
    clock = VirtualClock()
    assert clock.run_until(lambda: clock.monotonic() >= 30, timeout=30) is True


def test_run_until_without_timers_returns_at_once() -> None:
    clock = VirtualClock()
    assert clock.run_until(lambda: False) is False
    assert clock.monotonic() == 0  # no timeout: time does not move
    assert clock.wait_until(lambda: False, 2.5) is False
    assert clock.monotonic() == 2.5


def test_run_until_gives_up_after_max_steps(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock()

    def tick() -> None:
        clock.call_later(1, tick)

    clock.call_later(1, tick)
    with caplog.at_level(logging.WARNING, logger="pye2_transport_memory.clock"):
        assert clock.run_until(lambda: False, max_steps=50) is False
    assert clock.monotonic() == 50
    assert any("50 timers" in r.getMessage() for r in caplog.records)


def test_failing_timer_is_logged_and_later_timers_run(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock()
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("timer bug")

    clock.call_later(1, broken)
    clock.call_later(2, lambda: ran.append("after"))
    with caplog.at_level(logging.ERROR, logger="pye2_transport_memory.clock"):
        clock.advance(3)
    assert ran == ["after"] and clock.timer_errors == 1
    assert any(r.exc_info for r in caplog.records)


def test_call_later_from_many_threads_runs_every_timer_once() -> None:
    clock = VirtualClock()
    ran: list[int] = []
    lock = threading.Lock()

    def schedule(base: int) -> None:
        for i in range(100):
            clock.call_later(i % 7, functools.partial(_append, lock, ran, base + i))

    workers = [threading.Thread(target=schedule, args=(k * 1000,)) for k in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    assert clock.pending() == 400
    assert clock.advance(7) == 400
    assert sorted(ran) == sorted(k * 1000 + i for k in range(4) for i in range(100))


def _append(lock: threading.Lock, items: list[int], item: int) -> None:
    with lock:
        items.append(item)


# -- SystemClock -------------------------------------------------------------------


@pytest.fixture
def system_clock() -> Iterator[SystemClock]:
    clock = SystemClock()
    yield clock
    clock.close()


def test_system_clock_implements_the_port(system_clock: SystemClock) -> None:
    assert isinstance(system_clock, Clock)
    assert system_clock.time() > DEFAULT_EPOCH
    first = system_clock.monotonic()
    assert system_clock.monotonic() >= first


def test_system_timers_fire_in_due_order(system_clock: SystemClock) -> None:
    ran: list[str] = []
    done = threading.Event()
    # Scheduled out of order; the gaps only need to exceed the time between two calls.

    def last() -> None:
        ran.append("late")
        done.set()

    system_clock.call_later(0.5, last)
    system_clock.call_later(0.0, lambda: ran.append("now"))
    system_clock.call_later(0.25, lambda: ran.append("soon"))
    assert done.wait(WAIT)
    assert ran == ["now", "soon", "late"]


def test_system_timer_cancel(system_clock: SystemClock) -> None:
    ran: list[str] = []
    witness = threading.Event()
    system_clock.call_later(0.05, lambda: ran.append("cancelled")).cancel()
    system_clock.call_later(0.1, witness.set)  # due after the cancelled one
    assert witness.wait(WAIT)
    assert ran == []


def test_system_timer_error_is_logged_and_later_timers_fire(
    system_clock: SystemClock, caplog: pytest.LogCaptureFixture
) -> None:
    witness = threading.Event()

    def broken() -> None:
        raise RuntimeError("timer bug")

    with caplog.at_level(logging.ERROR, logger="pye2.adapters.system_clock"):
        system_clock.call_later(0, broken)
        system_clock.call_later(0.01, witness.set)
        assert witness.wait(WAIT)
    assert any(r.exc_info and "timer bug" in str(r.exc_info[1]) for r in caplog.records)


def test_system_wait_until_wakes_on_the_given_condition(system_clock: SystemClock) -> None:
    condition = threading.Condition()
    state = {"ready": False}

    def make_ready() -> None:
        with condition:
            state["ready"] = True
            condition.notify_all()

    system_clock.call_later(0.05, make_ready)
    assert system_clock.wait_until(lambda: state["ready"], WAIT, condition) is True


def test_system_wait_until_wakes_on_notify_all(system_clock: SystemClock) -> None:
    state = {"ready": False}

    def make_ready() -> None:
        state["ready"] = True
        system_clock.notify_all()

    threading.Thread(target=make_ready).start()
    assert system_clock.wait_until(lambda: state["ready"], WAIT) is True


def test_system_wait_until_returns_false_on_timeout(system_clock: SystemClock) -> None:
    assert system_clock.wait_until(lambda: False, 0.01) is False


def test_system_clock_close_then_reuse(system_clock: SystemClock) -> None:
    ran: list[str] = []
    system_clock.call_later(WAIT * 100, lambda: ran.append("dropped"))
    system_clock.close()
    system_clock.close()
    witness = threading.Event()
    system_clock.call_later(0, witness.set)
    assert witness.wait(WAIT)
    assert ran == []


def test_system_clock_bad_delay_is_a_config_error(system_clock: SystemClock) -> None:
    with pytest.raises(ConfigError):
        system_clock.call_later(float("nan"), lambda: None)
