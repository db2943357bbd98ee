"""The event loop is never blocked by pye2 while payloads flow on the simulated network.

A ticker task asks for a wake-up every millisecond and records how late each one
comes, while another task reads a stream of 10,000 payloads per (virtual) second
with ``async for``: the simulated node, the hub and the session all run on the
loop's thread here (virtual clock, no threads), so this is the worst case for
the loop; the clock driver gives it back every half millisecond of work.

The figures are printed (``pytest -s``): the payload rate in virtual and in
wall-clock time, the ticker's lateness (median, 99th percentile, maximum) and
the longest stretch the clock driver held the loop, in wall and in CPU time.
The machine is shared: a preempted process makes single ticks late whatever
the loop does (the wall/CPU difference of the driver's slices shows it). So
the bounds are: the median tick and the driver's longest slice in CPU time
(what pye2 itself holds the loop for) below a few milliseconds, and generous
ones on the 99th percentile and the maximum, which only a loop really blocked
for a while (a whole batch of timers run at once) exceeds.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _scenarios import run

from pye2.aio import AsyncSession
from pye2_transport_memory import SimulatedNetwork

PAYLOADS = 12_000
RATE = {"PROCESS_DELAY": 0.0001, "PLUGIN_LOOP_RESOLUTION": 10_000}  # 10,000 payloads per virtual second
TICK = 0.001
MEDIAN_LIMIT = 0.002
SLICE_CPU_LIMIT = 0.005
P99_LIMIT = 0.020
MAX_LIMIT = 0.100


async def ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(TICK)
        lateness.append(loop.time() - asked - TICK)


def test_the_loop_lags_a_few_milliseconds_at_most_during_a_10k_msg_per_s_stream() -> None:
    async def main() -> dict[str, float]:
        with SimulatedNetwork(1, seed=3) as net:
            async with AsyncSession(session=net.session(name="lag")) as s:
                node = net.node_ids[0]
                assert await s.wait_for_node(node, 30)
                pipe = await s.create_pipeline(e2id=node, name="fast")
                inst = await pipe.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c", params=RATE)
                stop = asyncio.Event()
                lateness: list[float] = []
                ticks = asyncio.create_task(ticker(stop, lateness))
                counters: list[int] = []
                started_virtual, started_wall = s.clock.monotonic(), time.perf_counter()
                async with inst.payloads() as stream:
                    async for payload in stream:
                        counters.append(payload["COUNTER"])
                        if len(counters) >= PAYLOADS:
                            break
                wall = time.perf_counter() - started_wall
                virtual = s.clock.monotonic() - started_virtual
                stop.set()
                await ticks
                assert stream.dropped == 0 and s.stats.dropped == 0
                assert counters == list(range(counters[0], counters[0] + PAYLOADS))  # every one, in order
                lateness.sort()
                return {"virtual_rate": PAYLOADS / virtual, "wall_rate": PAYLOADS / wall, "ticks": len(lateness),
                        "median": statistics.median(lateness), "p99": lateness[int(len(lateness) * 0.99)],
                        "max": lateness[-1], "slice": s._waits.longest_slice,  # type: ignore[union-attr]
                        "slice_cpu": s._waits.longest_slice_cpu}  # type: ignore[union-attr]

    figures = run(main())
    print(f"\nloop lag during a payload stream: {figures['virtual_rate']:,.0f} msg/s of virtual time "
          f"({figures['wall_rate']:,.0f} msg/s of wall time), {figures['ticks']:.0f} ticks of {TICK * 1000:.0f} ms: "
          f"lateness median {figures['median'] * 1000:.2f} ms, p99 {figures['p99'] * 1000:.2f} ms, "
          f"max {figures['max'] * 1000:.2f} ms; longest driver slice {figures['slice'] * 1000:.2f} ms "
          f"({figures['slice_cpu'] * 1000:.2f} ms CPU)")
    assert figures["virtual_rate"] >= 5_000
    assert figures["ticks"] >= 100
    assert figures["median"] < MEDIAN_LIMIT, figures
    assert figures["slice_cpu"] < SLICE_CPU_LIMIT, figures
    assert figures["p99"] < P99_LIMIT, figures
    assert figures["max"] < MAX_LIMIT, figures
