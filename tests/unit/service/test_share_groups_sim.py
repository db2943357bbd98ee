"""Share groups on the simulated network (virtual clock): the hub takes turns among a group's members.

The same properties as ``tests/e2e/test_share_groups.py`` on Mosquitto and
RabbitMQ, deterministic here: payloads split between the members (round robin:
each gets every other one), a session outside the group gets all, heartbeats
and notifications reach every member so commands are confirmed from each.
"""

from __future__ import annotations

from typing import Any

import pytest

from pye2 import Session
from pye2.errors import ConfigError
from pye2.ports.transport import Handler, Subscription, Transport
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork

NODE = "sim-node-1"


@pytest.fixture()
def net() -> Any:
    with SimulatedNetwork(nodes=1, seed=16) as network:
        yield network


def numbers_of(got: list[Any]) -> list[int]:
    """The numbers of the test's payloads (the node's own pipelines send others)."""
    return [int(data["N"]) for data in got if "N" in data]


def emit(net: SimulatedNetwork, count: int, pipeline: str = "share_test") -> None:
    with net.lock:
        for n in range(count):
            net.nodes[NODE].emit_payload({"N": n}, pipeline=pipeline, signature="SHARE_TEST_01", instance_id="i1",
                                         encrypt=False, pipeline_config={})


def test_members_split_the_payloads_in_turn_and_each_has_its_commands_confirmed(net: SimulatedNetwork) -> None:
    key = Identity.generate()
    got: dict[str, list[Any]] = {"a": [], "b": [], "outside": []}
    sessions = {
        name: net.session(identity=key if name != "outside" else None, name=f"share-{name}",
                          share_group=None if name == "outside" else "workers",
                          on_payload=lambda s, e2id, pipe, sig, inst, data, name=name: got[name].append(data))
        for name in got}
    for session in sessions.values():
        session.connect()
        assert session.wait_for_node(NODE, 30)  # every member hears the heartbeats
    emit(net, 50)
    a, b = numbers_of(got["a"]), numbers_of(got["b"])
    assert sorted(a + b) == list(range(50)) and not set(a) & set(b)
    assert len(a) == len(b) == 25  # the hub's round robin
    assert numbers_of(got["outside"]) == list(range(50))
    for name in ("a", "b"):  # notifications reach every member: each one's command is confirmed
        pipe = sessions[name].create_pipeline(e2id=NODE, name=f"from_{name}", data_source="Void", wait=True)
        assert pipe.confirmation.ok
    assert {"from_a", "from_b"} <= set(net.nodes[NODE].pipelines)
    for session in sessions.values():
        assert session.stats.missed_payloads == 0  # the members' gaps are the other member's share
        assert not session.stats.rejected
        session.close()


def test_a_member_that_leaves_leaves_the_stream_to_the_others(net: SimulatedNetwork) -> None:
    got: dict[str, list[Any]] = {"a": [], "b": []}
    a, b = (net.session(name=f"share-{name}", share_group="workers",
                        on_payload=lambda s, e2id, pipe, sig, inst, data, name=name: got[name].append(data))
            for name in got)
    a.connect()
    b.connect()
    a.close()
    emit(net, 10)
    assert numbers_of(got["b"]) == list(range(10)) and numbers_of(got["a"]) == []
    b.close()


def test_payload_gaps_are_counted_outside_a_group_only(net: SimulatedNetwork) -> None:
    member, other, alone = net.session(share_group="gaps"), net.session(share_group="gaps"), net.session()
    for session in (member, other, alone):
        session.connect()
    emit(net, 2)  # every session has a baseline of the node's payload numbers
    net.faults.drop(topic=net.profile.payloads, count=1)  # one payload lost on the way, for everyone
    emit(net, 6)
    assert alone.stats.missed_payloads == 1  # a session that gets every payload counts the gap
    assert member.stats.missed_payloads == 0 and other.stats.missed_payloads == 0  # a member sees gaps anyway
    for session in (member, other, alone):
        session.close()


class _PlainTransport:
    """A transport with no share groups: the memory transport behind the bare Transport port."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.name = "plain"
        self.capabilities = inner.capabilities

    def connect(self) -> None:
        self._inner.connect()

    def subscribe(self, address: str, handler: Handler) -> Subscription:
        return self._inner.subscribe(address, handler)

    def publish(self, address: str, body: bytes) -> None:
        self._inner.publish(address, body)

    def close(self) -> None:
        self._inner.close()

    @property
    def is_connected(self) -> bool:
        return self._inner.is_connected


def test_a_transport_without_share_groups_refuses_the_option(net: SimulatedNetwork) -> None:
    session = Session(transport=_PlainTransport(net.transport()), clock=net.clock, identity=Identity.generate(),
                      share_group="workers")
    with pytest.raises(ConfigError, match="share_group='workers' needs a transport with shared subscriptions"):
        session.connect()
    assert not session.is_connected
