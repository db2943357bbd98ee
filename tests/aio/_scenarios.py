"""The requirements document's three scenarios, written once for :class:`pye2.aio.AsyncSession`.

Each scenario runs against a *place*: the simulated network on its virtual clock
(:func:`on_simulated_network`) or simulated nodes on a shared real broker, each test
under a private topic root (:func:`on_broker`, the nodes and roots of
``tests/e2e/test_scenarios_brokers.py``). The settings (waits, heartbeat interval,
command timeout, the tutorial's files) and the checks on the results are the sync
scenarios' own, imported from there; what differs is how the code waits: every wait
is an ``await`` on the async session (virtual seconds on the simulated network).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from _brokers import SharedBroker
from test_scenarios_brokers import (
    COMMAND_TIMEOUT,
    HEARTBEAT_INTERVAL,
    PRIMES,
    TUTORIAL_VIDEO,
    WAIT,
    is_prime,
    only_admin_pipelines,
    tutorial_prime,
)

from pye2 import Payload, code_to_base64
from pye2.aio import AsyncSession
from pye2.wire import Identity
from pye2_transport_memory.network import SimulatedNetwork

T = TypeVar("T")

Place = Callable[..., Any]  # (nodes, **callbacks) -> async context manager of (net, session)

#: a whole scenario is bounded in real time too (a hang fails instead of stalling the suite)
REAL_LIMIT = 120.0


def run(coro: Coroutine[Any, Any, T], limit: float = REAL_LIMIT) -> T:
    """Run a test coroutine on a fresh event loop (pytest-asyncio is not needed)."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())


def on_simulated_network(seed: int = 11) -> Place:
    """The simulated network on its virtual clock, with the broker scenarios' heartbeat interval."""

    @asynccontextmanager
    async def place(nodes: int, **callbacks: Any) -> AsyncIterator[tuple[SimulatedNetwork, AsyncSession]]:
        with SimulatedNetwork(nodes, seed=seed, heartbeat_interval=HEARTBEAT_INTERVAL) as net:
            session = AsyncSession(session=net.session(name="aio-sim", command_timeout=COMMAND_TIMEOUT), **callbacks)
            async with session:
                yield net, session

    return place


def on_broker(broker: SharedBroker) -> Place:
    """Simulated nodes on a shared real broker (private root), the session on the same broker and root."""

    @asynccontextmanager
    async def place(nodes: int, **callbacks: Any) -> AsyncIterator[tuple[SimulatedNetwork, AsyncSession]]:
        with SimulatedNetwork(nodes, seed=11, profile=broker.profile, broker=broker.url,
                              heartbeat_interval=HEARTBEAT_INTERVAL) as net:
            identity = Identity.generate()
            net.allow_client(identity.address(broker.profile))
            session = AsyncSession(transport=broker.url, profile=broker.profile, identity=identity,
                                   name=f"aio-{broker.kind}", command_timeout=COMMAND_TIMEOUT, **callbacks)
            async with session:
                yield net, session

    return place


async def hello_world(place: Place) -> None:
    """Every node's heartbeat reaches a coroutine ``on_heartbeat`` with its CPU."""
    seen: list[tuple[str, Any]] = []

    async def on_hb(session: AsyncSession, e2id: str, data: dict[str, Any]) -> None:
        assert isinstance(session, AsyncSession)
        await asyncio.sleep(0)  # a real coroutine: it yields to the loop
        seen.append((e2id, data["CPU"]))

    async with place(3, on_heartbeat=on_hb) as (net, session):
        everyone = set(net.node_ids)
        assert await session.wait(lambda: {e2id for e2id, _ in seen} >= everyone, WAIT), seen
        await session.flush_callbacks()
        heard = list(seen)
        assert {e2id for e2id, _ in heard} == everyone  # no stranger
        for e2id, cpu in heard:
            assert cpu == net.nodes[e2id].machine.cpu, (e2id, cpu)
        assert sorted(session.get_active_nodes()) == sorted(everyone)
        assert session.stats.callback_errors == 0


async def distributed_primes(place: Place) -> None:
    """The tutorial's job: results reach a coroutine ``on_data``; the initiator archives its pipeline."""
    results: list[Any] = []

    async def on_data(pipeline: Any, result: Any, payload: Payload) -> None:
        assert pipeline.name == "test_dist_jobs"
        results.append(result)

    async with place(3) as (net, session):
        initiator = net.nodes["sim-node-1"]

        def knows_everyone() -> bool:
            with net.lock:
                return {p.get("alias") for p in initiator.peers()} >= set(net.node_ids)

        assert await session.wait(knows_everyone, WAIT), "the initiator never heard every node's heartbeat"
        root = session.session.profile
        pipeline = await session.create_pipeline(
            e2id="sim-node-1", name="test_dist_jobs", data_source="IotQueueListener",
            config={"STREAM_CONFIG_METADATA": {"TOPIC": root.payloads}, "RECONNECTABLE": True})
        instance = await pipeline.start_custom_plugin(
            instance_id="inst02", plain_code_path=PRIMES / "chain_dist_example_initiator.py",
            params={"MAX_TRIES": 10, "MAX_RUN_TIME": 5, "N_WORKERS": 2,
                    "WORKER_CODE": code_to_base64((PRIMES / "chain_dist_example_worker.py").read_text())},
            on_data=on_data, process_delay=0.2)
        assert pipeline.confirmation.ok and instance.confirmation.ok

        assert await session.wait(lambda: pipeline.closed and bool(results) and results[-1]["STATUS"] == "DONE",
                                  WAIT), (pipeline.closed, results[-1:] or "no result at all")
        final = results[-1]
        workers = final["RESULTS"]
        assert set(workers) == {"sim-node-2", "sim-node-3"}
        assert all(workers.values()), workers
        found = [n for numbers in workers.values() for n in numbers]
        assert all(tutorial_prime(n) for n in found), found
        assert any(is_prime(n) for n in found)
        assert all(r["STATUS"] == "IN_PROGRESS" for r in results[:-1])
        assert await session.wait(only_admin_pipelines(net), WAIT), {n: set(x.pipelines) for n, x in net.nodes.items()}


async def person_tracking(place: Place) -> None:
    """Annotated JPEG frames read with ``async for`` from the instance's payload stream."""
    frames: list[Payload] = []
    async with place(1) as (net, session):
        pipeline = await session.create_pipeline(e2id="sim-node-1", name="RealTimePersonTracking",
                                                 data_source="VideoFile", config={"URL": TUTORIAL_VIDEO})
        instance = await pipeline.start_plugin_instance(signature="OBJECT_TRACKING_01",
                                                        instance_id="EXAMPLE_OBJECT_TRACKING",
                                                        params={"OBJECT_TYPE": ["person"]})
        async with instance.payloads() as stream:
            async for payload in stream:
                if payload.get_image_as_PIL() is not None:  # the first payload is a status without an image
                    frames.append(payload)
                if len(frames) >= 3:
                    break
        assert stream.closed and stream.dropped == 0
        for payload in frames:
            image = payload.get_image_as_PIL()
            assert image.format == "JPEG"
            assert image.size == (payload["_C_FRAME_W"], payload["_C_FRAME_H"]) == (640, 360)
            assert payload["SIGNATURE"] == "OBJECT_TRACKING_01"
            assert payload["INSTANCE_ID"] == "EXAMPLE_OBJECT_TRACKING"
            assert {obj["TYPE"] for obj in payload["OBJECTS"]} <= {"person"}
            assert payload["NR_OBJECTS"] == len(payload["OBJECTS"])
        assert any(p["NR_OBJECTS"] > 0 for p in frames), "the synthetic video has people in it"

        await pipeline.close()  # returns once the node confirmed the archive
        assert await session.wait(lambda: pipeline.closed, WAIT)
        with net.lock:
            assert "RealTimePersonTracking" not in net.nodes["sim-node-1"].pipelines
