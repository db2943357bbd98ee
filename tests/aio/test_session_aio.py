"""AsyncSession on the simulated network's virtual clock: awaits, errors, callbacks, cancellation, streams."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from _scenarios import run

from pye2 import AIXP, Payload
from pye2.aio import AsyncPipeline, AsyncSession
from pye2.errors import CommandFailed, CommandTimeout, ConfigError, NotAllowed, TransportError
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork

COUNTER = {"PROCESS_DELAY": 0.1}


@asynccontextmanager
async def simulated(nodes: int = 1, *, seed: int = 5, network: dict[str, Any] | None = None,
                    session: dict[str, Any] | None = None,
                    **callbacks: Any) -> AsyncIterator[tuple[SimulatedNetwork, AsyncSession]]:
    with SimulatedNetwork(nodes, seed=seed, **(network or {})) as net:
        async with AsyncSession(session=net.session(name="aio", **(session or {})), **callbacks) as s:
            assert await s.wait_for_node(net.node_ids[0], 30)
            yield net, s


def pending_waiters(session: AsyncSession) -> int:
    assert session._waits is not None
    return session._waits.pending()


# ---------------------------------------------------------------------------------------------- callbacks
def test_callbacks_run_on_the_loop_thread_plain_or_coroutine_with_the_async_handles() -> None:
    calls: list[tuple[str, int, Any]] = []

    def on_hb(session: Any, e2id: str, data: Any) -> None:
        calls.append(("heartbeat", threading.get_ident(), session))

    async def on_payload(session: Any, e2id: str, pipeline: str, signature: str, instance: str, data: Any) -> None:
        await asyncio.sleep(0)
        calls.append(("payload", threading.get_ident(), session))

    async def on_data(pipeline: Any, payload: Payload) -> None:
        calls.append(("instance", threading.get_ident(), pipeline))

    async def main() -> None:
        loop_thread = threading.get_ident()
        async with simulated(on_heartbeat=on_hb, on_payload=on_payload, network={"heartbeat_interval": 1}) as (net, s):
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="cb")
            await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params=COUNTER,
                                             on_data=on_data)
            await s.sleep(2)
            await s.flush_callbacks()
            kinds = {kind for kind, _, _ in calls}
            assert kinds == {"heartbeat", "payload", "instance"}, kinds
            assert {thread for _, thread, _ in calls} == {loop_thread}
            assert all(arg is s for kind, _, arg in calls if kind != "instance")
            assert all(arg is pipe for kind, _, arg in calls if kind == "instance")
            assert s.stats.callback_errors == 0

    run(main())


def test_a_raising_callback_plain_or_coroutine_is_logged_and_counted_and_delivery_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    good: list[str] = []
    raised = {"sync": 0, "async": 0}

    def bad_sync(session: Any, e2id: str, data: Any) -> None:
        raised["sync"] += 1
        raise RuntimeError("sync boom")

    async def bad_async(session: Any, e2id: str, data: Any) -> None:
        raised["async"] += 1
        raise RuntimeError("async boom")

    async def main() -> None:
        async with simulated(on_heartbeat=bad_sync, on_notification=bad_async,
                             on_payload=lambda s, *a: good.append(a[0])) as (_net, s):
            s.session.dispatcher.add("heartbeat", ("*",), lambda sess, e2id, data: good.append(e2id))
            await s.sleep(25)
            await s.flush_callbacks()
            assert raised["sync"] >= 2 and raised["async"] >= 1, raised
            assert s.stats.callback_errors == raised["sync"] + raised["async"]
            assert good, "the other callbacks kept receiving"

    with caplog.at_level(logging.ERROR, logger="pye2.aio"):
        run(main())
    assert any("sync boom" in (r.exc_text or "") or "bad_sync" in r.getMessage() for r in caplog.records)
    assert any("bad_async" in r.getMessage() for r in caplog.records)


def test_on_a_virtual_clock_a_coroutine_callback_runs_before_time_moves_on() -> None:
    inline: list[int] = []  # a plain callback, run inside the timer that delivered the payload
    late: list[tuple[int, int]] = []

    async def on_data(pipeline: Any, payload: Payload) -> None:
        late.append((payload["COUNTER"], inline[-1]))  # the newest payload delivered so far

    async def main() -> None:
        async with simulated() as (net, s):
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="order")
            await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c",
                                             params={"PROCESS_DELAY": 0.001, "PLUGIN_LOOP_RESOLUTION": 1000},
                                             on_data=on_data)
            s.session.dispatcher.add("instance_data", (pipe.e2id, "order", "SIMPLE_COUNTER", "c"),
                                     lambda p, data: inline.append(data["COUNTER"]))
            await s.sleep(0.5)
            await s.flush_callbacks()
            assert len(late) >= 100
            assert all(counter == newest for counter, newest in late), late[:5]

    run(main())


# ---------------------------------------------------------------------------------------------- command outcomes
def test_a_refused_command_raises_command_failed_from_the_await() -> None:
    async def main() -> None:
        async with simulated() as (net, s):
            with pytest.raises(CommandFailed, match="does not exist"):
                await s.send_command_delete_pipeline(net.node_ids[0], "no-such-pipeline")
            assert s.stats.commands_failed == 1

    run(main())


def test_silence_raises_command_timeout_after_command_timeout_virtual_seconds() -> None:
    async def main() -> None:
        async with simulated(session={"command_timeout": 5}) as (net, s):
            net.faults.crash(net.node_ids[0])
            start = s.clock.monotonic()
            with pytest.raises(CommandTimeout):
                await s.create_pipeline(e2id=net.node_ids[0], name="lost")
            assert 5.0 <= s.clock.monotonic() - start < 5.5
            assert s.stats.commands_timed_out == 1

    run(main())


def test_a_node_that_does_not_allow_the_session_raises_not_allowed_from_the_await() -> None:
    async def main() -> None:
        network = {"allow_list": [Identity.generate().address(AIXP)], "heartbeat_interval": 10}
        async with simulated(network=network, session={"command_timeout": 60}) as (net, s):
            start = s.clock.time()
            with pytest.raises(NotAllowed) as err:
                await s.create_pipeline(e2id=net.node_ids[0], name="nope")
            assert s.clock.time() - start <= 10.5
            assert s.address in str(err.value)

    run(main())


def test_a_command_that_cannot_be_sent_raises_from_its_await_and_misuse_is_a_clear_error() -> None:
    async def main() -> None:
        with SimulatedNetwork(1, seed=5) as net:
            with pytest.raises(ConfigError, match="not both"):
                AsyncSession(session=net.session(), host="127.0.0.1")
            s = AsyncSession(session=net.session(name="early"))
            with pytest.raises(TransportError, match="not connected"):
                await s.send_command(net.node_ids[0], "UPDATE_CONFIG", {})
            async with s:
                pipe = await s.create_pipeline(e2id=net.node_ids[0], name="p")
                await pipe.close()
                with pytest.raises(ConfigError, match="closed"):  # the sync handle's own check, from the await
                    await pipe.update_acquisition_parameters(URL="x")
            with pytest.raises(TransportError, match="closed"):
                await s.send_command(net.node_ids[0], "UPDATE_CONFIG", {})

    run(main())


def test_instance_commands_and_config_updates_are_awaited_to_the_node() -> None:
    async def main() -> None:
        async with simulated() as (net, s):
            node = net.node_ids[0]
            pipe = await s.create_pipeline(e2id=node, name="counting")
            inst = await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c1", params=COUNTER)
            assert inst == f"{node}##counting##SIMPLE_COUNTER##c1" and inst.confirmation.ok
            await inst.update_instance_config(process_delay=2)
            assert net.nodes[node].pipelines["counting"]["PLUGINS"][0]["INSTANCES"][0]["PROCESS_DELAY"] == 2
            await inst.send_instance_command("RESET")
            assert await pipe.wait_exec(plain_code="_result = 6 * 7") == (42, None)
            await inst.stop()
            assert not net.nodes[node].pipelines["counting"]["PLUGINS"]
            await pipe.close()
            assert pipe.closed and s.get_pipeline(node, "counting") is None
            assert s.stats.commands_failed == 0 and s.stats.commands_timed_out == 0

    run(main())


# ---------------------------------------------------------------------------------------------- cancellation
def test_cancelling_an_await_removes_its_listener_and_waiter_and_virtual_time_stops() -> None:
    async def main() -> None:
        async with simulated(session={"command_timeout": 10}) as (net, s):
            net.faults.crash(net.node_ids[0])
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="lost", wait=False)
            conf = pipe.confirmation.confirmation
            assert conf is not None and not conf.done
            before = len(conf._callbacks)
            task = asyncio.create_task(pipe.confirmation.result())
            while len(conf._callbacks) == before:  # the await registered its listener
                await asyncio.sleep(0)
            assert pending_waiters(s) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(conf._callbacks) == before and pending_waiters(s) == 0
            stopped_at = s.clock.monotonic()
            for _ in range(20):
                await asyncio.sleep(0)
            assert s.clock.monotonic() == stopped_at  # nobody waits: virtual time stands still
            await s.sleep(11)  # the command was not taken back: it times out and is counted
            assert conf.done and isinstance(conf.error, CommandTimeout)
            assert s.stats.commands_timed_out == 1

    run(main())


def test_cancelling_wait_exec_stops_its_one_shot_instance() -> None:
    async def main() -> None:
        async with simulated() as (net, s):
            node = net.node_ids[0]
            pipe = await s.create_pipeline(e2id=node, name="exec")
            task = asyncio.create_task(pipe.wait_exec(plain_code="_result = 1", timeout=30))
            while pending_waiters(s) == 0:
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await s.sleep(3)
            assert net.nodes[node].pipelines["exec"]["PLUGINS"] in (
                [], [{"SIGNATURE": "REST_CUSTOM_EXEC_01", "INSTANCES": []}])
            assert not pipe.instances and pending_waiters(s) == 0
            assert s.stats.commands_failed == 0 and s.stats.commands_timed_out == 0

    run(main())


def test_cancelling_an_async_for_removes_its_waiter_and_closing_the_stream_its_listener() -> None:
    async def main() -> None:
        async with simulated() as (net, s):
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="quiet")  # no instance: nothing comes
            stream = pipe.payloads()
            table = s.session.dispatcher
            key = (pipe.e2id, pipe.name)
            assert len(table.lookup("pipeline_data", [key])) == 1

            async def read() -> None:
                async for _ in stream:
                    pass

            task = asyncio.create_task(read())
            while pending_waiters(s) == 0:
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert pending_waiters(s) == 0 and not stream.closed
            stream.close()
            assert stream.closed and table.lookup("pipeline_data", [key]) == [] and stream not in s.streams
            assert [p async for p in stream] == []

    run(main())


# ---------------------------------------------------------------------------------------------- streams
@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_a_stream_that_is_not_read_drops_with_its_policy_and_counts_in_stats(policy: str) -> None:
    async def main() -> None:
        async with simulated() as (net, s):
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="burst")
            counters: list[int] = []
            inst = await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params=COUNTER,
                                                    on_data=lambda p, data: counters.append(data["COUNTER"]))
            stream = inst.payloads(maxsize=5, policy=policy)
            await s.sleep(3)  # ~30 payloads, nobody reads
            await s.flush_callbacks()
            produced = list(counters)
            assert len(produced) >= 20
            assert stream.dropped == len(produced) - 5 == s.stats.stream_dropped
            assert stream.high_water == 5 and len(stream) == 5
            kept = [(await stream.get(0))["COUNTER"] for _ in range(5)]  # type: ignore[index]
            assert kept == (produced[-5:] if policy == "drop_oldest" else produced[:5])
            assert s.stats.dropped == 0  # the session itself lost nothing
            await s.sleep(0.35)
            queued = len(stream)
            assert queued >= 2
            stream.close()  # what is still queued is dropped, and counted
            assert stream.dropped == len(produced) - 5 + queued == s.stats.stream_dropped

    run(main())


def test_a_stream_ends_after_its_queued_payloads_when_its_pipeline_is_archived() -> None:
    async def main() -> None:
        async with simulated() as (net, s):
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="ending")
            await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params=COUNTER)
            stream = pipe.payloads()
            await s.sleep(1)
            await pipe.close()
            got = [p async for p in stream]
            assert len(got) >= 8 and all(p["STREAM_NAME"] == "ending" for p in got)
            assert stream.closed and stream.dropped == 0

    run(main())


def test_closing_the_session_ends_streams_and_fails_pending_awaits() -> None:
    async def main() -> None:
        with SimulatedNetwork(1, seed=5) as net:
            s = AsyncSession(session=net.session(name="closing", command_timeout=30))
            await s.connect()
            assert await s.wait_for_node(net.node_ids[0], 30)
            pipe = await s.create_pipeline(e2id=net.node_ids[0], name="p")
            await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params=COUNTER)
            net.faults.crash(net.node_ids[0])
            pending = pipe.update_acquisition_parameters(URL="never-confirmed")
            got: list[Payload] = []

            async def read() -> None:
                async for payload in pipe.payloads():
                    got.append(payload)

            reader = asyncio.create_task(read())
            waiter = asyncio.create_task(pending.result())
            while pending_waiters(s) < 2:
                await asyncio.sleep(0)
            await s.close()
            await asyncio.wait_for(reader, 5)  # the async for ended
            with pytest.raises(CommandFailed, match="session closed"):
                await waiter
            assert pending_waiters(s) == 0 and not s.streams and s.closed

    run(main())


def test_two_sessions_on_one_network_share_the_clock_driver() -> None:
    async def main() -> None:
        with SimulatedNetwork(2, seed=5) as net:
            async with AsyncSession(session=net.session(name="a")) as a, \
                    AsyncSession(session=net.session(name="b")) as b:
                assert a._waits is b._waits
                pa, pb = await asyncio.gather(a.create_pipeline(e2id=net.node_ids[0], name="pa"),
                                              b.create_pipeline(e2id=net.node_ids[1], name="pb"))
                assert isinstance(pa, AsyncPipeline) and isinstance(pb, AsyncPipeline)
                assert pa.confirmation.ok and pb.confirmation.ok
                await asyncio.gather(pa.close(), pb.close())
                assert pa.closed and pb.closed

    run(main())
