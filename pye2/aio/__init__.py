"""pye2 for asyncio: :class:`AsyncSession`, a thin facade over the sync :class:`~pye2.Session`.

::

    from pye2.aio import AsyncSession

    async def main() -> None:
        async with AsyncSession(transport="sim://", on_heartbeat=on_hb) as session:
            await session.wait_for_node("sim-node-1")
            pipeline = await session.create_pipeline(e2id="sim-node-1", name="p")  # raises if refused
            counter = await pipeline.start_plugin_instance(signature="SIMPLE_COUNTER", instance_id="c")
            async with counter.payloads() as stream:
                async for payload in stream:
                    ...
            await pipeline.close()

Why a separate class, not ``Session`` made async-capable
--------------------------------------------------------
The sync API's calls block by contract (``create_pipeline(wait=True)``,
``Confirmation.result``, ``wait_exec``) and return plain values; making the
same names return awaitables when a loop is running would give one method
two return types, which neither type checkers nor readers can follow, and
``Session`` is shared by everyone's sync scripts, so its behaviour must not
depend on whether a loop happens to be running. A facade keeps every piece
of protocol, trust and accounting logic in one place (the sync session does
all the work, unchanged); this package only decides which thread runs what
and turns waits into awaits. Every name and argument is the sync one, so
code moves between the two by adding ``await``.

Threads and the event loop
--------------------------
The loop is never blocked by pye2:

* On a wall clock (MQTT, AMQP, ``sim://?realtime=1``) the sync session keeps
  its transport threads and its dispatcher thread. Calls that may block
  (connect, signing and publishing a command: AMQP waits for the broker's
  confirm, close) run on one command thread per session, in call order.
  Results come back with the loop's thread-safe calls: a confirmation's
  done-callback and every routed message "poke" the waiters, which re-check
  on the loop through one coalesced ``call_soon_threadsafe``.
* On the simulated network's virtual clock there are no threads; messages
  are processed as the clock advances. Time moves while someone awaits the
  session (a confirmation, ``wait_for_node``, ``sleep``, a stream's next
  payload): one driver task per clock and loop runs the clock's timers one
  at a time, on the loop's thread, handing the loop back every half
  millisecond of work and whenever a waiter is ready, so other tasks and
  timers run and the woken task acts before time moves on. When nobody
  awaits the session, virtual time stands still (``asyncio.sleep`` does not
  move it; ``await session.sleep(s)`` does). Timeouts are virtual seconds.
  See :mod:`pye2.aio._waits`.

Callbacks
---------
``on_heartbeat``, ``on_notification``, ``on_payload``, ``on_connection``,
``on_node_conflict`` and every pipeline and instance ``on_data`` /
``on_notification`` run on the event loop, never on a network thread, in
message order, with the async handles (:class:`AsyncSession`,
:class:`AsyncPipeline`) in place of the sync ones. A callback may be a
coroutine function: each call becomes a task of its own (started in message
order; they overlap if they await). An exception, plain or from a task, is
logged and counted in ``stats.callback_errors`` and never stops delivery.
Calls queued for the loop are bounded (``callback_backlog``); past it the
dispatcher waits, so a loop that does not keep up makes the session's inbox
drop, with its policy and its counter (``stats.dropped``), as a slow callback
does in the sync API. Coroutine callbacks already started are not bounded
(one may await the session, which needs the dispatcher); to bound the work in
flight, read a stream. On a virtual clock a coroutine callback runs (up to its
first await) before the next timer. See :mod:`pye2.aio._bridge`.

Streams
-------
``pipeline.payloads()`` and ``instance.payloads()`` give an ``async for``
stream: bounded, with the inbox's drop policies and counters; drops are
also counted in ``stats.stream_dropped`` (see :mod:`pye2.aio.stream`).

Errors and cancellation
-----------------------
``await`` on a command raises what the sync ``Confirmation.result`` raises
(:class:`~pye2.errors.CommandFailed`, :class:`~pye2.errors.NotAllowed`,
:class:`~pye2.errors.CommandTimeout`) or the error that kept it from being
sent. Cancelling an await removes what it registered (the listener on the
confirmation, the waiter on the clock; ``wait_exec`` also stops its
instance); a command already handed over is not taken back (see
:mod:`pye2.aio.handles`).

Limits
------
A session belongs to the event loop it connected on. On a virtual clock the
simulation runs on the loop's thread: the loop is held for one slice (half a
millisecond of timers) or one timer that cannot be split, whichever is longer
(``tests/aio/test_loop_lag.py``: a stream of 10,000 payloads per virtual
second, ~2,500 per wall second on this machine, delays a 1 ms ticker by
0.9 ms median, 1.5-1.8 ms at the 99th percentile, ~3 ms at most, in loop CPU
time). On a wall clock the loop shares the interpreter with the transport
and dispatcher threads: the GIL, not pye2, then adds up to its switch
interval (``sys.getswitchinterval()``, 5 ms) to a tick now and then.
"""

from __future__ import annotations

from pye2.aio.handles import AsyncConfirmation, AsyncInstance, AsyncPipeline
from pye2.aio.session import AsyncSession
from pye2.aio.stream import PayloadStream

__all__ = ["AsyncConfirmation", "AsyncInstance", "AsyncPipeline", "AsyncSession", "PayloadStream"]
