"""AsyncSession on a wall clock (transport and dispatcher threads): the simulated network in real time,
and the shared Mosquitto / RabbitMQ. Results reach the loop only through its thread-safe calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _brokers import SHARED_KINDS, SharedBroker, shared_broker
from _scenarios import on_broker, run

from pye2 import Payload
from pye2.aio import AsyncSession
from pye2.aio._bridge import LoopBridge
from pye2.errors import CommandFailed, CommandTimeout
from pye2.service.stats import SessionStats
from pye2_transport_memory import SimulatedNetwork

WAIT = 15.0


@pytest.fixture(params=SHARED_KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[SharedBroker]:
    yield from shared_broker(request)


def test_on_a_wall_clock_callbacks_run_on_the_loop_and_awaits_settle_from_other_threads() -> None:
    threads: set[int] = set()
    data: list[Payload] = []

    async def on_data(pipeline: Any, payload: Payload) -> None:
        threads.add(threading.get_ident())
        data.append(payload)

    async def main() -> None:
        loop_thread = threading.get_ident()
        with SimulatedNetwork(1, seed=4, realtime=True, heartbeat_interval=1) as net:
            async with AsyncSession(session=net.session(name="rt", command_timeout=3),
                                    on_heartbeat=lambda s, e2id, d: threads.add(threading.get_ident())) as s:
                assert s.session._threaded and s._executor is not None
                assert await s.wait_for_node(net.node_ids[0], WAIT)
                pipe = await s.create_pipeline(e2id=net.node_ids[0], name="rt")
                inst = await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c",
                                                        params={"PROCESS_DELAY": 0.05}, on_data=on_data)
                async with inst.payloads(maxsize=100) as stream:
                    got = [p async for p in _take(stream, 5)]
                assert [p["INSTANCE_ID"] for p in got] == ["c"] * 5
                assert await s.wait(lambda: len(data) >= 5, WAIT)
                assert threads == {loop_thread}

                with pytest.raises(CommandFailed, match="does not exist"):
                    await s.send_command_delete_pipeline(net.node_ids[0], "no-such-pipeline")

                # cancellation on a wall clock: the listener goes with the waiter
                net.faults.crash(net.node_ids[0])
                lost = await s.create_pipeline(e2id=net.node_ids[0], name="lost", wait=False)
                conf = lost.confirmation.confirmation
                assert conf is not None
                before = len(conf._callbacks)
                waiting = asyncio.create_task(lost.confirmation.result())
                while len(conf._callbacks) == before:
                    await asyncio.sleep(0)
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert len(conf._callbacks) == before
                assert s._waits is not None and s._waits.pending() == 0
                with pytest.raises(CommandTimeout):
                    await lost.confirmation  # the 3 s command timeout, from the clock's thread
                assert s.stats.callback_errors == 0

    run(main())


async def _take(stream: Any, n: int) -> Any:
    async for item in stream:
        yield item
        n -= 1
        if n == 0:
            return


def test_a_loop_that_does_not_keep_up_holds_the_dispatcher_at_the_backlog() -> None:
    """Deliveries past the backlog wait in the delivering thread (the session's inbox then drops)."""

    async def main() -> None:
        stats = SessionStats()
        bridge = LoopBridge(asyncio.get_running_loop(), stats, backlog=3)
        ran: list[int] = []
        handed: list[int] = []

        async def callback(n: int) -> None:
            ran.append(n)

        def dispatcher() -> None:
            for n in range(10):
                bridge.deliver(callback, (n,))
                handed.append(n)

        thread = threading.Thread(target=dispatcher)
        thread.start()
        thread.join(0.3)  # the loop is stalled meanwhile (this very call blocks it): nothing is drained
        assert thread.is_alive() and handed == [0, 1, 2] and bridge.pending() == 3 and ran == []
        while thread.is_alive() or bridge.pending() or bridge.running_tasks:
            await asyncio.sleep(0)  # the loop runs again: the queue drains, the thread goes on
        thread.join()
        assert ran == list(range(10)) and handed == list(range(10))
        assert stats.callback_errors == 0

    run(main())


def test_commands_and_outcomes_on_a_real_broker(broker: SharedBroker) -> None:
    events: list[tuple[Any, str, int]] = []

    async def on_connection(session: Any, event: Any) -> None:  # a Session option: it runs on the loop too
        events.append((session, event.state, threading.get_ident()))

    async def main() -> None:
        place = on_broker(broker)
        async with place(1, on_connection=on_connection) as (_net, s):
            loop_thread = threading.get_ident()
            assert await s.wait_for_node("sim-node-1", WAIT)
            pipe = await s.create_pipeline(e2id="sim-node-1", name="cmds")
            inst = await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c",
                                                    params={"PROCESS_DELAY": 0.2})
            await inst.update_instance_config(process_delay=0.1)
            await inst.send_instance_command("RESET")
            assert await pipe.wait_exec(plain_code="_result = 6 * 7", timeout=WAIT) == (42, None)
            with pytest.raises(CommandFailed, match="does not exist"):
                await s.send_command_delete_pipeline("sim-node-1", "no-such-pipeline")
            await pipe.close()
            assert pipe.closed
            assert s.stats.commands_timed_out == 0 and s.stats.callback_errors == 0, s.stats.as_dict()
            await s.flush_callbacks()
            states = [state for _, state, _ in events]
            assert "connected" in states, states
            assert all(session is s for session, _, _ in events) and {t for _, _, t in events} == {loop_thread}

    run(main())
