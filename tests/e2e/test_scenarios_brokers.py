"""The requirements document's three scenarios through a ``pye2.Session`` over REAL brokers.

The same scenarios as ``tests/examples`` and ``tests/unit/service/test_session_sim.py``,
but the simulated nodes and the session talk through the shared Mosquitto
(``mqtt_url``) or RabbitMQ (``amqp_url``), on the wall clock. Each test has a topic
root of its own (``pye2e2e<8 hex>``), so tests never hear each other, and nodes beat
every second so nothing waits for the default 10 s. Every wait is on a condition
(``Session.wait`` / ``SimulatedNetwork.run_until``), bounded by ``WAIT``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _brokers import SHARED_KINDS, SharedBroker, shared_broker

from pye2 import Payload, Session, code_to_base64
from pye2.wire import Identity
from pye2_transport_memory.network import SimulatedNetwork

ROOT = Path(__file__).resolve().parents[2]
PRIMES = ROOT / "examples" / "distributed_primes"
TUTORIAL_VIDEO = "http://commondatastorage.googleapis.com/gtv-videos-bucket/sample/ForBiggerBlazes.mp4"
WAIT = 15.0
HEARTBEAT_INTERVAL = 1.0
COMMAND_TIMEOUT = 10.0


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def tutorial_prime(n: int) -> bool:
    """A prime, or 1: the tutorial's worker tests divisors in ``range(2, int(num**0.5) + 1)``,
    empty for 1, so it reports 1 as a prime (see tests/examples/test_examples.py)."""
    return n == 1 or is_prime(n)


@pytest.fixture(params=SHARED_KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[SharedBroker]:
    """The shared broker of ``request.param`` with an isolated root (its AMQP exchange removed after)."""
    yield from shared_broker(request)


@contextmanager
def running(broker: SharedBroker, nodes: int, **session_options: Any) -> Iterator[tuple[SimulatedNetwork, Session]]:
    """Simulated nodes on the broker, and a connected session on the same broker and root.

    Predicates that read node state under ``net.lock`` are waited on with ``session.wait``:
    ``net.run_until`` evaluates its predicate holding the clock's waiter lock, which node
    timers take while holding ``net.lock`` (to wake waiters), so locking there could deadlock.
    The session's condition is notified on every message (heartbeats each second).
    """
    with SimulatedNetwork(nodes, seed=11, profile=broker.profile, broker=broker.url,
                          heartbeat_interval=HEARTBEAT_INTERVAL) as net:
        identity = Identity.generate()
        net.allow_client(identity.address(broker.profile))  # the nodes take commands from their allow-list only
        session = Session(transport=broker.url, profile=broker.profile, identity=identity,
                          name=f"e2e-{broker.kind}", command_timeout=COMMAND_TIMEOUT, **session_options)
        try:
            session.connect()
            yield net, session
        finally:
            session.close()


def only_admin_pipelines(net: SimulatedNetwork) -> Callable[[], bool]:
    """A predicate for ``Session.wait`` (not ``net.run_until``, see :func:`running`)."""

    def check() -> bool:
        with net.lock:
            return all(set(node.pipelines) == {"admin_pipeline"} for node in net.nodes.values())

    return check


def test_hello_world_every_node_reports_its_cpu(broker: SharedBroker) -> None:
    seen: list[tuple[str, Any]] = []
    with running(broker, 3, on_heartbeat=lambda s, e2id, data: seen.append((e2id, data["CPU"]))) as (net, session):
        everyone = set(net.node_ids)
        assert session.wait(lambda: {e2id for e2id, _ in seen} >= everyone, WAIT), seen
        heard = list(seen)
        assert {e2id for e2id, _ in heard} == everyone  # the isolated root: no stranger
        for e2id, cpu in heard:
            assert cpu == net.nodes[e2id].machine.cpu, (e2id, cpu)
        assert sorted(session.get_active_nodes()) == sorted(everyone)


def test_distributed_primes_collects_primes_and_leaves_no_pipeline(broker: SharedBroker) -> None:
    results: list[Any] = []
    with running(broker, 3) as (net, session):
        initiator = net.nodes["sim-node-1"]

        def knows_everyone() -> bool:
            with net.lock:
                return {p.get("alias") for p in initiator.peers()} >= set(net.node_ids)

        assert session.wait(knows_everyone, WAIT), "the initiator never heard every node's heartbeat"
        pipeline = session.create_pipeline(
            e2id="sim-node-1", name="test_dist_jobs", data_source="IotQueueListener",
            # the tutorial's listener topic, on this test's root
            config={"STREAM_CONFIG_METADATA": {"TOPIC": broker.profile.payloads}, "RECONNECTABLE": True})
        instance = pipeline.start_custom_plugin(
            instance_id="inst02", plain_code_path=PRIMES / "chain_dist_example_initiator.py",
            params={"MAX_TRIES": 10, "MAX_RUN_TIME": 5, "N_WORKERS": 2,
                    "WORKER_CODE": code_to_base64((PRIMES / "chain_dist_example_worker.py").read_text())},
            on_data=lambda pipe, result, payload: results.append(result), process_delay=0.2)
        assert pipeline.confirmation.wait(WAIT) and instance.confirmation.wait(WAIT)

        # after MAX_RUN_TIME (5 s of real time) the initiator reports DONE and archives its own
        # pipeline; the payload and the notification may arrive in either order (AMQP: two queues)
        assert session.wait(lambda: pipeline.closed and bool(results) and results[-1]["STATUS"] == "DONE",
                            WAIT), (pipeline.closed, results[-1:] or "no result at all")
        final = results[-1]
        assert final["STATUS"] == "DONE", final
        workers = final["RESULTS"]
        assert set(workers) == {"sim-node-2", "sim-node-3"}  # others first, the initiator last
        assert all(workers.values()), workers
        found = [n for numbers in workers.values() for n in numbers]
        assert all(tutorial_prime(n) for n in found), found
        assert any(is_prime(n) for n in found)
        assert all(r["STATUS"] == "IN_PROGRESS" for r in results[:-1])
        assert session.wait(only_admin_pipelines(net), WAIT), {n: set(x.pipelines) for n, x in net.nodes.items()}


def test_person_tracking_returns_annotated_jpeg_frames(broker: SharedBroker) -> None:
    frames: list[Payload] = []

    def on_instance_data(pipeline: Any, payload: Payload) -> None:
        if payload.get_image_as_PIL() is not None:  # the first payload is a status without an image
            frames.append(payload)

    with running(broker, 1) as (net, session):
        pipeline = session.create_pipeline(e2id="sim-node-1", name="RealTimePersonTracking",
                                           data_source="VideoFile", config={"URL": TUTORIAL_VIDEO})
        instance = pipeline.start_plugin_instance(signature="OBJECT_TRACKING_01",
                                                  instance_id="EXAMPLE_OBJECT_TRACKING",
                                                  params={"OBJECT_TYPE": ["person"]}, on_data=on_instance_data)
        assert pipeline.confirmation.wait(WAIT) and instance.confirmation.wait(WAIT)
        assert session.wait(lambda: len(frames) >= 3, WAIT), f"{len(frames)} frames"
        for payload in frames:
            image = payload.get_image_as_PIL()
            assert image.format == "JPEG"
            assert image.size == (payload["_C_FRAME_W"], payload["_C_FRAME_H"]) == (640, 360)
            assert payload["SIGNATURE"] == "OBJECT_TRACKING_01"
            assert payload["INSTANCE_ID"] == "EXAMPLE_OBJECT_TRACKING"
            assert {obj["TYPE"] for obj in payload["OBJECTS"]} <= {"person"}
            assert payload["NR_OBJECTS"] == len(payload["OBJECTS"])
        assert any(p["NR_OBJECTS"] > 0 for p in frames), "the synthetic video has people in it"

        closing = pipeline.close()
        assert closing.wait(WAIT), closing
        # the handle is marked closed by the same notification, just after the confirmation
        assert session.wait(lambda: pipeline.closed, WAIT)
        with net.lock:
            assert "RealTimePersonTracking" not in net.nodes["sim-node-1"].pipelines
