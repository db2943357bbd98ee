"""AsyncSession: the sync :class:`~pye2.service.session.Session`, awaitable from asyncio.

See :mod:`pye2.aio` for the design (threads, virtual clock, callbacks,
streams, cancellation). This module only maps each call onto the sync
session: non-blocking reads go straight through; calls that may block
(connect, signing and publishing a command, close) run on the session's
command thread (wall clock) or inline on the loop (virtual clock, where
publishing is an in-memory hand-off); waits go through :mod:`pye2.aio._waits`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from pye2.adapters.system_clock import SystemClock
from pye2.aio._bridge import DEFAULT_BACKLOG, LoopBridge, relay
from pye2.aio._waits import ThreadedWaits, VirtualWaits
from pye2.aio.handles import AsyncConfirmation, AsyncPipeline
from pye2.aio.stream import PayloadStream
from pye2.errors import ConfigError, NodeOffline, PipelineNotFound, TransportError
from pye2.service.confirmations import Confirmation, Expectation
from pye2.service.handles import Pipeline
from pye2.service.session import VIRTUAL_RUN_LIMIT, Session
from pye2.service.stats import SessionStats

__all__ = ["AsyncSession"]

log = logging.getLogger("pye2.aio")

T = TypeVar("T")

#: options of Session that are callbacks: given to AsyncSession, they run on the loop like the others
_CALLBACK_OPTIONS = ("on_connection", "on_node_conflict")


class AsyncSession:
    """A connection to the network for asyncio code: ``async with AsyncSession(...) as session``.

    Args:
        session: an existing (sync) :class:`~pye2.service.session.Session` to drive,
            e.g. ``SimulatedNetwork.session()``; or leave it out and give the
            :class:`Session` arguments (``host=``, ``transport=``, ``name=`` ...).
        on_heartbeat, on_notification, on_payload: as for :class:`Session`, with
            this :class:`AsyncSession` as first argument; plain functions or
            coroutine functions, run on the event loop (never on a network thread).
        callback_backlog: callback calls handed to the loop and not finished yet
            before the session's dispatcher waits for the loop (see :mod:`pye2.aio._bridge`).
        options: the :class:`Session` keyword arguments (``on_connection`` and
            ``on_node_conflict`` also run on the loop).
    """

    def __init__(
        self,
        *,
        session: Session | None = None,
        on_heartbeat: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        on_payload: Callable[..., Any] | None = None,
        callback_backlog: int = DEFAULT_BACKLOG,
        **options: Any,
    ) -> None:
        if session is not None and options:
            raise ConfigError(f"give session= or Session options, not both (got {', '.join(sorted(options))})")
        for name in _CALLBACK_OPTIONS:
            if options.get(name) is not None:
                options[name] = relay(options[name], self._async_of, self._deliver)
        self.session: Session = session if session is not None else Session(**options)
        self._backlog = callback_backlog
        self._bridge: LoopBridge | None = None
        self._waits: ThreadedWaits | VirtualWaits | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._handles: dict[int, AsyncPipeline] = {}
        self._handles_lock = threading.Lock()
        self._streams: set[PayloadStream] = set()
        self._connected = False
        self._closed = False
        self._lost_calls = 0
        for table, callback in (("heartbeat", on_heartbeat), ("notification", on_notification),
                                ("payload", on_payload)):
            if callback is not None:
                self.session.dispatcher.add(table, ("*",), relay(callback, self._async_of, self._deliver))

    # ------------------------------------------------------------------ lifecycle
    async def connect(self) -> AsyncSession:
        """Connect the session (idempotent): build the transport, load the key, subscribe."""
        if self._connected:
            return self
        if self._closed:
            raise TransportError("session is closed")
        loop = asyncio.get_running_loop()
        if self._bridge is None:
            self._bridge = LoopBridge(loop, self.session.stats, backlog=self._backlog)
        sync = self.session
        clock = sync.clock or getattr(sync._transport_arg, "clock", None)
        if clock is not None and not isinstance(clock, SystemClock):
            sync.connect()  # a virtual clock: an in-memory network, nothing blocks
        else:
            await loop.run_in_executor(None, sync.connect)  # sockets, the key file
        if self._connected:  # connected by a concurrent call meanwhile
            return self
        if sync._threaded:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"pye2-aio-{sync.name}")
            bridge = self._bridge
            self._waits = ThreadedWaits(loop, lambda: bridge.on_loop)

            def poke(*_args: Any) -> None:  # every routed message may make a waiter ready
                self._poke()

            for table in ("heartbeat", "notification", "payload"):
                sync.dispatcher.add(table, ("*",), poke)
        else:
            if not all(hasattr(sync.clock, name) for name in ("step", "next_due", "advance")):
                raise ConfigError(f"AsyncSession drives a clock without threads through step/next_due/advance "
                                  f"(pye2_transport_memory.VirtualClock); {type(sync.clock).__name__} has not")
            self._waits = VirtualWaits.for_clock(sync.clock, loop)
            self._bridge.on_task = self._waits.hold
        self._connected = True
        return self

    async def close(self, close_pipelines: bool = False, *, wait: bool | float = False) -> None:
        """Close the session (and, if asked, archive the pipelines it created). Idempotent.

        Streams end (their queued payloads are still read); callback calls not run
        yet are dropped; callback tasks still running are cancelled.
        """
        if self._closed:
            return
        if close_pipelines and self._connected:
            confs = [pipe.close() for pipe in self.pipelines if pipe.owned]
            if wait:
                timeout = self.session.command_timeout if wait is True else float(wait)
                for conf in confs:
                    try:
                        await conf.wait(timeout)
                    except Exception:  # a pipeline that could not be archived must not keep the session open
                        log.warning("archiving a pipeline failed while closing", exc_info=True)
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self.session.close)
            executor.shutdown(wait=False)
        else:
            self.session.close()
        if self._bridge is not None:
            self._bridge.close()
        if isinstance(self._waits, ThreadedWaits):
            self._waits.close()
        elif self._waits is not None:
            self._waits.poke()

    async def __aenter__(self) -> AsyncSession:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._connected else "new")
        return f"<AsyncSession {self.name!r} {self.session.profile.name} {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_connected(self) -> bool:
        return self._connected and not self._closed and self.session.is_connected

    # ------------------------------------------------------------------ plumbing
    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("session is closed")
        if not self._connected:
            raise TransportError("session is not connected: await session.connect() (or async with) first")

    def _poke(self) -> None:
        """Something changed (any thread): waiters re-check their condition."""
        waits = self._waits
        if waits is not None:
            waits.poke()

    def _deliver(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        bridge = self._bridge
        if bridge is None:  # a message during a connect started outside asyncio: nowhere to run it
            self._lost_calls += 1
            log.warning("callback %s dropped: the async session is not connected",
                        getattr(callback, "__qualname__", callback))
            return
        bridge.deliver(callback, args)

    def _async_of(self, obj: Any) -> Any:
        """What a callback gets instead of a sync object: this session, or a pipeline's async handle."""
        if obj is self.session:
            return self
        if isinstance(obj, Pipeline):
            return self._pipeline_of(obj)
        return obj

    def _pipeline_of(self, pipe: Pipeline) -> AsyncPipeline:
        with self._handles_lock:
            handle = self._handles.get(id(pipe))
            if handle is None or handle.pipeline is not pipe:
                handle = self._handles[id(pipe)] = AsyncPipeline(self, pipe)
            return handle

    def _pipeline_callback(self, callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
        return None if callback is None else relay(callback, self._async_of, self._deliver)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a sync call that may block: on the command thread (wall clock), inline (virtual clock)."""
        self._check_open()
        executor = self._executor
        if executor is None:
            return fn(*args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args, **kwargs))

    def _send(self, fn: Callable[..., Confirmation], *args: Any, description: str = "command",
              **kwargs: Any) -> AsyncConfirmation:
        """Hand a command over now (in call order); its errors and outcome come from the await."""
        sent: concurrent.futures.Future[Confirmation]
        executor = self._executor
        if self._closed or not self._connected or executor is None:
            sent = concurrent.futures.Future()
            try:
                self._check_open()
                sent.set_result(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - raised by the await, as every other outcome of the command
                sent.set_exception(exc)
        else:
            try:
                sent = executor.submit(fn, *args, **kwargs)
            except RuntimeError:  # shut down by a close meanwhile
                sent = concurrent.futures.Future()
                sent.set_exception(TransportError("session is closed"))
        return AsyncConfirmation(self, sent, description)

    def _settled(self, conf: Confirmation) -> AsyncConfirmation:
        """An already handed-over confirmation, awaitable."""
        sent: concurrent.futures.Future[Confirmation] = concurrent.futures.Future()
        sent.set_result(conf)
        return AsyncConfirmation(self, sent, conf.description)

    async def _until(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        if self._waits is None:
            self._check_open()
        assert self._waits is not None
        return await self._waits.until(ready, timeout)

    async def _wait_confirmation(self, conf: Confirmation, timeout: float | None) -> bool:
        """Wait for ``conf`` on the session clock; the listener goes with the waiter (cancelled or not)."""

        def listener(_conf: Confirmation) -> None:
            self._poke()

        conf.add_done_callback(listener)
        try:
            return await self._until(lambda: conf.done, timeout)
        finally:
            conf.remove_done_callback(listener)

    def _stream(self, description: str, ended: Callable[[], bool], maxsize: int, policy: str) -> PayloadStream:
        self._check_open()
        stream = PayloadStream(self, description, ended, maxsize=maxsize, policy=policy)
        self._streams.add(stream)
        return stream

    def _forget_stream(self, stream: PayloadStream) -> None:
        self._streams.discard(stream)

    async def flush_callbacks(self) -> None:
        """Wait until every callback call handed to the loop so far ran (coroutine callbacks: finished)."""
        if self._bridge is not None:
            await self._bridge.settle()

    # ------------------------------------------------------------------ state (non-blocking)
    @property
    def name(self) -> str:
        return self.session.name

    @property
    def stats(self) -> SessionStats:
        return self.session.stats

    @property
    def address(self) -> str:
        """This session's own address (what nodes allow-list)."""
        return self.session.address

    def get_client_address(self) -> str:
        return self.session.address

    @property
    def clock(self) -> Any:
        return self.session.clock

    @property
    def command_timeout(self) -> float:
        return self.session.command_timeout

    def get_active_nodes(self) -> list[str]:
        return self.session.get_active_nodes()

    def get_active_pipelines(self, e2id: str) -> dict[str, dict[str, Any]] | None:
        return self.session.get_active_pipelines(e2id)

    def get_node_address(self, e2id: str) -> str | None:
        return self.session.get_node_address(e2id)

    def get_node_alias(self, node: str) -> str | None:
        return self.session.get_node_alias(node)

    def check_node_online(self, e2id: str) -> bool:
        return self.session.check_node_online(e2id)

    def signing_mode(self, node: str) -> bool | None:
        return self.session.signing_mode(node)

    def pin_node(self, name: str, address: str) -> None:
        self.session.pin_node(name, address)

    def forget_node(self, node: str) -> None:
        self.session.forget_node(node)

    # ------------------------------------------------------------------ waiting
    async def wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait on the session clock until ``predicate()`` or ``timeout``; re-checked on every message."""
        await self.connect()
        return await self._until(predicate, timeout)

    async def wait_for_node(self, e2id: str, timeout: float | None = 30.0) -> bool:
        """Wait (on the session's clock) until the node is online; True if it is."""
        return await self.wait(lambda: self.session.check_node_online(e2id), timeout)

    async def wait_for_any_node(self, timeout: float | None = 30.0) -> bool:
        return await self.wait(lambda: bool(self.session.get_active_nodes()), timeout)

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass on the session clock (virtual time moves; messages are processed)."""
        await self.wait(lambda: self._closed, seconds)

    async def run(self, wait: bool | float = True, close_session: bool = True, close_pipelines: bool = False) -> None:
        """``Session.run`` for asyncio: ``wait=True`` until closed (on a virtual clock: until this
        session's pipelines are gone, or a simulated day), a number for that many seconds."""
        await self.connect()
        try:
            if wait is True:
                if isinstance(self._waits, VirtualWaits):
                    sync = self.session
                    await self._until(lambda: self._closed or (sync._ever_created and not sync.router.pipelines),
                                      VIRTUAL_RUN_LIMIT)
                else:
                    await self._until(lambda: self._closed, None)
            elif wait is not False and wait is not None:
                await self.sleep(float(wait))
        finally:
            if close_session:
                await self.close(close_pipelines=close_pipelines, wait=close_pipelines)

    # ------------------------------------------------------------------ commands
    def send_command(self, node: str, action: str, payload: Any, *, expect: list[Expectation] | None = None,
                     description: str | None = None, timeout: float | None = None) -> AsyncConfirmation:
        """Sign and send one command; ``await`` the returned confirmation for the node's answer."""
        return self._send(self.session.send_command, node, action, payload, expect=expect,
                          description=description or f"{action} to {node}", timeout=timeout)

    def send_command_update_pipeline(self, worker: str, stream_config: dict[str, Any]) -> AsyncConfirmation:
        return self._send(self.session.send_command_update_pipeline, worker, stream_config,
                          description=f"update pipeline on {worker}")

    def send_command_delete_pipeline(self, worker: str, stream_name: str) -> AsyncConfirmation:
        return self._send(self.session.send_command_delete_pipeline, worker, stream_name,
                          description=f"archive pipeline {stream_name!r} on {worker}")

    # ------------------------------------------------------------------ pipelines
    async def create_pipeline(
        self,
        *,
        e2id: str | None = None,
        name: str,
        data_source: str = "Void",
        config: dict[str, Any] | None = None,
        plugins: list[dict[str, Any]] | None = None,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        max_wait_time: float = 0,
        wait: bool | float = True,
        node: str | None = None,
        **kwargs: Any,
    ) -> AsyncPipeline:
        """Create (or replace) a pipeline on a node; by default wait for the node's confirmation.

        ``wait=True`` raises :class:`~pye2.errors.CommandFailed` / ``NotAllowed`` /
        ``CommandTimeout`` from the await; ``wait=False`` returns once sent (await
        ``pipeline.confirmation`` later). ``on_data(pipeline, signature, instance, payload)``.
        """
        target = e2id or node
        if not target:
            raise ConfigError("create_pipeline needs e2id= (the node)")
        await self.connect()
        if max_wait_time and not await self.wait_for_node(target, max_wait_time):
            log.warning("node %s is not online after %.1f s; sending anyway", target, max_wait_time)
        pipe = await self._run(self.session.create_pipeline, e2id=target, name=name, data_source=data_source,
                               config=config, plugins=plugins, on_data=self._pipeline_callback(on_data),
                               on_notification=self._pipeline_callback(on_notification), **kwargs)
        handle = self._pipeline_of(pipe)
        if wait:
            await handle.confirmation.result(None if wait is True else float(wait))
        return handle

    async def attach_to_pipeline(self, e2id: str, pipeline_name: str, on_data: Callable[..., Any] | None = None,
                                 on_notification: Callable[..., Any] | None = None,
                                 max_wait_time: float = 0) -> AsyncPipeline:
        """Attach to a pipeline the node already runs (from its heartbeat's pipeline list)."""
        await self.connect()
        if max_wait_time:
            await self._until(lambda: pipeline_name in (self.session.get_active_pipelines(e2id) or {}),
                              max_wait_time)
        pipelines = self.session.get_active_pipelines(e2id)
        if pipelines is None:
            raise NodeOffline(f"node {e2id!r} is not online")
        if pipeline_name not in pipelines:
            raise PipelineNotFound(f"node {e2id!r} has no pipeline {pipeline_name!r} "
                                   f"(it has: {', '.join(sorted(pipelines)) or 'none'})")
        pipe = self.session.attach_to_pipeline(e2id, pipeline_name, self._pipeline_callback(on_data),
                                               self._pipeline_callback(on_notification))
        return self._pipeline_of(pipe)

    def get_pipeline(self, e2id: str, name: str) -> AsyncPipeline | None:
        pipe = self.session.get_pipeline(e2id, name)
        return None if pipe is None else self._pipeline_of(pipe)

    @property
    def pipelines(self) -> list[AsyncPipeline]:
        """Handles of the pipelines this session holds (each once)."""
        return [self._pipeline_of(pipe) for pipe in self.session.pipelines]

    def close_own_pipelines(self) -> list[AsyncConfirmation]:
        """Archive every pipeline this session created; ``await`` each confirmation."""
        return [pipe.close() for pipe in self.pipelines if pipe.owned]

    @property
    def streams(self) -> list[PayloadStream]:
        """The payload streams open on this session."""
        return list(self._streams)
