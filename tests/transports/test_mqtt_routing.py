"""The MQTT subscription table's lock-free routing (``SubscriptionTable.candidates``), pure.

The network thread routes every message without the transport's lock, from snapshots
that each change of the table replaces: a change is seen at once (also by the per-topic
cache used without subscription identifiers) and a reader racing a writer never fails.
"""

from __future__ import annotations

import threading

from pye2.ports.transport import Delivery
from pye2_transport_mqtt._subscriptions import MqttSubscription, SubscriptionTable


def _sub(topic_filter: str, active: bool = True) -> MqttSubscription:
    sub = MqttSubscription(topic_filter, lambda _d: None, lambda _s: None)
    if active:
        sub.activate()
    return sub


def test_topic_cache_follows_every_change() -> None:
    table = SubscriptionTable()
    exact = _sub("a/b")
    table.add(exact, 0)
    assert table.candidates("a/b", None) == (exact,)
    plus = _sub("a/+")
    table.add(plus, 0)
    assert set(table.candidates("a/b", None)) == {exact, plus}  # not the cached answer
    table.remove(exact)
    assert table.candidates("a/b", None) == (plus,)
    table.clear()
    assert table.candidates("a/b", None) == ()


def test_candidates_include_inactive_handles_and_route_skips_them() -> None:
    table = SubscriptionTable()
    waiting = _sub("x/y", active=False)
    sub_id = table.add(waiting, 0)[0].sub_id
    assert table.candidates("x/y", [sub_id]) == (waiting,)
    assert table.route("x/y", [sub_id]) == []
    waiting.activate()
    assert table.route("x/y", [sub_id]) == [waiting]


def test_several_ids_route_to_each_filter_once() -> None:
    table = SubscriptionTable()
    first, second = _sub("m/#"), _sub("m/+")
    id1 = table.add(first, 0)[0].sub_id
    id2 = table.add(second, 0)[0].sub_id
    assert table.candidates("m/n", [id2, id1, id2, 999]) == (second, first)
    assert table.candidates("m/n", [999]) == ()


def test_many_topics_keep_routing_right_past_the_cache_bound() -> None:
    table = SubscriptionTable()
    even = _sub("t/+/0")
    table.add(even, 0)
    for n in range(10_000):
        assert table.candidates(f"t/{n}/{n % 2}", None) == ((even,) if n % 2 == 0 else ())


def test_routing_while_another_thread_changes_the_table() -> None:
    table = SubscriptionTable()
    steady = _sub("s/#")
    table.add(steady, 0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            while not stop.is_set():
                extra = [_sub(f"s/{n}") for n in range(20)]
                for sub in extra:
                    table.add(sub, 0)
                for sub in extra:
                    table.remove(sub)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for n in range(20_000):
            found = table.candidates(f"s/{n % 20}", None)
            assert steady in found and len(found) <= 2
            assert all(isinstance(s, MqttSubscription) for s in found)
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert table.candidates("s/1", None) == (steady,)
    assert steady.deliver(Delivery("s/1", b"ok"))
