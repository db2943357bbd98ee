"""Scale out on the broker: sessions in one share group split a node's payload stream.

A simulated node on the shared Mosquitto (``mqtt_url``) or RabbitMQ (``amqp_url``),
on a topic root of its own, publishes numbered payloads. Two sessions in the same
``share_group`` (one process each in real use: here two Session objects, each with
its own broker connection) must receive them between them exactly once: every
number once, none twice, each member some. A third session outside the group gets
all of them. Heartbeats and notifications are not shared: each member knows the
node and has its own commands confirmed. Waits are on conditions, bounded by ``WAIT``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from _brokers import SHARED_KINDS, SharedBroker, shared_broker

from pye2 import Session
from pye2.errors import ConfigError
from pye2.wire import Identity
from pye2_transport_memory.network import SimulatedNetwork

WAIT = 20.0
HEARTBEAT_INTERVAL = 1.0
PAYLOADS = 400
NODE = "sim-node-1"


@pytest.fixture(params=SHARED_KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[SharedBroker]:
    """The shared broker of ``request.param`` with an isolated root (its AMQP exchange removed after)."""
    yield from shared_broker(request)


class Received:
    """The payload numbers one session got (its ``on_payload``), thread-safe."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, session: Session, e2id: str, pipeline: str, signature: str, instance: str,
                 data: Any) -> None:
        if pipeline == "share_test":
            with self._lock:
                self.numbers.append(int(data["N"]))

    def count(self) -> int:
        with self._lock:
            return len(self.numbers)


def emit(net: SimulatedNetwork, count: int) -> None:
    """The node publishes ``count`` signed payloads numbered 0..count-1."""
    with net.lock:
        node = net.nodes[NODE]
        for n in range(count):
            node.emit_payload({"N": n}, pipeline="share_test", signature="SHARE_TEST_01", instance_id="i1",
                              encrypt=False, pipeline_config={})


def test_a_share_group_splits_the_payloads_and_commands_work_from_each_member(broker: SharedBroker) -> None:
    with ExitStack() as stack:
        # The members run the same script with the same key (the default key file), the outsider its own.
        # The nodes list both from their first heartbeat on (allowed later, an older heartbeat still
        # in flight when a command is pending would make it fail as NotAllowed).
        worker_key, other_key = Identity.generate(), Identity.generate()
        net = stack.enter_context(SimulatedNetwork(
            1, seed=16, profile=broker.profile, broker=broker.url, heartbeat_interval=HEARTBEAT_INTERVAL,
            allow_list=[key.address(broker.profile) for key in (worker_key, other_key)]))
        got = {name: Received() for name in ("a", "b", "outside")}
        sessions = {}
        for name in ("a", "b", "outside"):
            in_group = name != "outside"
            session = Session(transport=broker.url, profile=broker.profile, name=f"share-{name}",
                              identity=worker_key if in_group else other_key, on_payload=got[name],
                              command_timeout=WAIT, share_group="workers" if in_group else None)
            stack.callback(session.close)
            sessions[name] = session.connect()
        a, b, outside = sessions["a"], sessions["b"], sessions["outside"]
        for session in sessions.values():  # heartbeats reach every member, not one of them
            assert session.wait_for_node(NODE, WAIT), session.name
        assert a.share_group == b.share_group == "workers" and outside.share_group is None

        emit(net, PAYLOADS)
        assert a.wait(lambda: got["a"].count() + got["b"].count() >= PAYLOADS
                      and got["outside"].count() >= PAYLOADS, WAIT), {k: v.count() for k, v in got.items()}

        # commands from either member are confirmed: notifications reach every member
        from_a = a.create_pipeline(e2id=NODE, name="from_a", data_source="Void", wait=WAIT)
        from_b = b.create_pipeline(e2id=NODE, name="from_b", data_source="Void", wait=WAIT)
        assert from_a.confirmation.done and from_b.confirmation.done
        assert a.wait(lambda: {"from_a", "from_b"} <= set(a.get_active_pipelines(NODE) or {}), WAIT)

        # by now the payloads published before the commands have all arrived: none came twice
        share_a, share_b = got["a"].numbers, got["b"].numbers
        assert len(share_a) == len(set(share_a)) and len(share_b) == len(set(share_b))
        assert not set(share_a) & set(share_b), sorted(set(share_a) & set(share_b))[:10]
        assert sorted(share_a + share_b) == list(range(PAYLOADS))
        assert share_a and share_b, (len(share_a), len(share_b))  # the broker split them
        assert sorted(got["outside"].numbers) == list(range(PAYLOADS))  # outside the group: everything
        for session in (a, b):  # each verified its share, and counts no numbering gap as missed
            assert session.stats.missed_payloads == 0
            assert not session.stats.rejected, session.stats.rejected
        assert outside.stats.missed_payloads == 0 and not outside.stats.rejected


def test_members_that_attach_to_a_pipeline_split_its_data_callbacks(broker: SharedBroker) -> None:
    """One member creates the pipeline, the other attaches to it: its payloads reach ``on_data`` once."""
    with ExitStack() as stack:
        key = Identity.generate()
        net = stack.enter_context(SimulatedNetwork(
            1, seed=17, profile=broker.profile, broker=broker.url, heartbeat_interval=HEARTBEAT_INTERVAL,
            allow_list=[key.address(broker.profile)]))
        data: dict[str, list[int]] = {"a": [], "b": []}
        a, b = (stack.enter_context(Session(transport=broker.url, profile=broker.profile, name=f"share-{n}",
                                            identity=key, command_timeout=WAIT, share_group="attach"))
                for n in ("a", "b"))
        assert a.wait_for_node(NODE, WAIT) and b.wait_for_node(NODE, WAIT)
        a.create_pipeline(e2id=NODE, name="split", data_source="Void", wait=WAIT,
                          on_data=lambda pipe, sig, inst, payload: data["a"].append(int(payload["N"])))
        assert b.wait(lambda: "split" in (b.get_active_pipelines(NODE) or {}), WAIT)
        b.attach_to_pipeline(NODE, "split", on_data=lambda pipe, sig, inst, payload: data["b"].append(
            int(payload["N"])))
        with net.lock:
            for n in range(100):
                net.nodes[NODE].emit_payload({"N": n}, pipeline="split", signature="SHARE_TEST_01",
                                             instance_id="i1", encrypt=False, pipeline_config={})
        assert a.wait(lambda: len(data["a"]) + len(data["b"]) >= 100, WAIT), {k: len(v) for k, v in data.items()}
        assert sorted(data["a"] + data["b"]) == list(range(100))
        assert data["a"] and data["b"]


@pytest.mark.parametrize("group", ["", "a/b", "a+", "#", "x" * 65, "dot.ted", 7])
def test_a_bad_share_group_name_is_a_config_error(group: object) -> None:
    with pytest.raises(ConfigError, match="share_group"):
        Session(transport="sim://", share_group=group)


def test_the_share_group_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYE2_SHARE_GROUP", "from-env")
    assert Session(transport="sim://").share_group == "from-env"
    assert Session(transport="sim://", share_group="given").share_group == "given"
