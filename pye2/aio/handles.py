"""AsyncConfirmation, AsyncPipeline and AsyncInstance: the sync handles, awaitable.

Each wraps its sync counterpart (:class:`~pye2.service.confirmations.Confirmation`,
:class:`~pye2.service.handles.Pipeline`, :class:`~pye2.service.handles.Instance`)
and keeps its names and arguments. What changes:

* a method that sends a command returns an :class:`AsyncConfirmation` at once;
  the command is handed to the session right away (in call order), and
  ``await`` on it waits for the node's answer: it returns on confirmation and
  raises :class:`~pye2.errors.CommandFailed`, :class:`~pye2.errors.NotAllowed`
  or :class:`~pye2.errors.CommandTimeout` (after the session's
  ``command_timeout``), or the error that kept the command from being sent;
* the calls that make a handle (``create_pipeline``, ``start_plugin_instance``,
  ``start_custom_plugin``) are coroutines that wait for the confirmation
  (``wait=True``, the default; ``wait=False`` returns once sent, with the
  pending ``.confirmation``);
* ``wait_exec`` is a coroutine; ``payloads()`` gives an ``async for`` stream;
* callbacks get the async handles and may be coroutines (see :mod:`pye2.aio`).

Cancelling an ``await`` stops the waiting and removes what it registered
(its listener on the confirmation, its waiter on the clock); ``wait_exec``
also stops its one-shot instance. A command already handed over is not
taken back: it may be on the wire; its outcome is still counted in
``stats``, and a pipeline whose creation was cancelled is still one of the
session's own (``close(close_pipelines=True)`` archives it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pye2.aio.stream import DEFAULT_STREAM_SIZE, PayloadStream
from pye2.domain.pipeline import parse_instance_handle
from pye2.errors import CommandTimeout
from pye2.service.confirmations import Confirmation
from pye2.service.handles import CUSTOM_SIGNATURE, REST_SIGNATURE, Instance, Pipeline

if TYPE_CHECKING:
    from pye2.aio.session import AsyncSession

__all__ = ["AsyncConfirmation", "AsyncInstance", "AsyncPipeline"]


class AsyncConfirmation:
    """An awaitable command outcome: ``await conf`` returns once confirmed, or raises (module docstring)."""

    def __init__(self, session: AsyncSession, sent: concurrent.futures.Future[Confirmation],
                 description: str = "command") -> None:
        self._session = session
        self._sent = sent
        self._description = description

    def __repr__(self) -> str:
        if not self._sent.done():
            return f"<AsyncConfirmation {self._description}: sending>"
        if self._sent.exception() is not None:
            return f"<AsyncConfirmation {self._description}: not sent: {self._sent.exception()}>"
        return f"<AsyncConfirmation {self._sent.result()!r}>"

    @property
    def confirmation(self) -> Confirmation | None:
        """The sync confirmation once the command was handed over (None before, or if that failed)."""
        if self._sent.done() and self._sent.exception() is None:
            return self._sent.result()
        return None

    @property
    def description(self) -> str:
        conf = self.confirmation
        return conf.description if conf is not None else self._description

    @property
    def done(self) -> bool:
        """Settled: confirmed, failed, timed out, or never sent."""
        conf = self.confirmation
        return conf.done if conf is not None else (self._sent.done() and self._sent.exception() is not None)

    @property
    def ok(self) -> bool | None:
        """True confirmed, False failed, None pending."""
        conf = self.confirmation
        if conf is None:
            return False if self.done else None
        return conf.ok

    @property
    def error(self) -> BaseException | None:
        conf = self.confirmation
        if conf is not None:
            return conf.error
        return self._sent.exception() if self._sent.done() else None

    async def _handed_over(self) -> Confirmation:
        """The sync confirmation (raises what kept the command from being sent)."""
        if not self._sent.done():
            # shielded: a cancelled await does not take back a command on its way out
            await asyncio.shield(asyncio.wrap_future(self._sent))
        return self._sent.result()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds of the session clock (None: until settled); True if confirmed."""
        conf = await self._handed_over()
        if not conf.done:
            await self._session._wait_confirmation(conf, timeout)
        return bool(conf.done and conf.ok)

    async def result(self, timeout: float | None = None) -> None:
        """Wait, then raise if the command failed or is still unconfirmed after ``timeout``."""
        conf = await self._handed_over()
        await self.wait(timeout)
        if not conf.done:
            raise CommandTimeout(f"{conf.description}: no confirmation within {timeout} s")
        if not conf.ok:
            assert conf.error is not None
            raise conf.error

    def __await__(self) -> Generator[Any, None, None]:
        return self.result().__await__()


class AsyncInstance(str):
    """A started plugin instance; also its handle string ``"node##pipeline##SIGNATURE##instance"``."""

    pipeline: AsyncPipeline
    instance: Instance
    confirmation: AsyncConfirmation

    def __new__(cls, pipeline: AsyncPipeline, instance: Instance, confirmation: AsyncConfirmation) -> AsyncInstance:
        obj = super().__new__(cls, str(instance))
        obj.pipeline = pipeline
        obj.instance = instance
        obj.confirmation = confirmation
        return obj

    @property
    def signature(self) -> str:
        return self.instance.signature

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @property
    def config(self) -> dict[str, Any]:
        """The instance parameters as last sent."""
        return self.instance.config

    def update_instance_config(self, config: dict[str, Any] | None = None, **kwargs: Any) -> AsyncConfirmation:
        """Change parameters in place on the node; ``await`` the result."""
        return self.pipeline.update_instance_config(self.signature, self.instance_id, config, **kwargs)

    def send_instance_command(self, command: Any, **params: Any) -> AsyncConfirmation:
        """A one-shot ``INSTANCE_COMMAND`` (confirmed by 101/-101); ``await`` the result."""
        return self.pipeline.send_instance_command(self.signature, self.instance_id, command, **params)

    def stop(self) -> AsyncConfirmation:
        """Remove the instance from its pipeline; ``await`` the result."""
        return self.pipeline.stop_plugin_instance(self.signature, self.instance_id)

    close = stop

    def payloads(self, *, maxsize: int = DEFAULT_STREAM_SIZE, policy: str = "drop_oldest") -> PayloadStream:
        """This instance's payloads as an ``async for`` stream (see :mod:`pye2.aio.stream`)."""
        pipe = self.pipeline.pipeline
        key = (self.signature.upper(), self.instance_id)
        stream = self.pipeline._session._stream(
            f"{pipe.name}/{self.signature}/{self.instance_id} on {pipe.e2id}",
            lambda: pipe.closed or key not in pipe.instances, maxsize, policy)
        stream._listen(pipe._listen_instance(self.signature, self.instance_id, PayloadStream._feeder(stream), None))
        return stream


class AsyncPipeline:
    """A pipeline on one node (see the module docstring). Made by ``AsyncSession.create_pipeline`` / ``attach``."""

    def __init__(self, session: AsyncSession, pipeline: Pipeline) -> None:
        self._session = session
        self.pipeline = pipeline
        self.instances: dict[tuple[str, str], AsyncInstance] = {}

    # -- the sync handle's state ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def e2id(self) -> str:
        return self.pipeline.e2id

    @property
    def node_address(self) -> str | None:
        return self.pipeline.node_address

    @property
    def config(self) -> Any:
        """The pipeline's config as last sent (:class:`~pye2.domain.pipeline.PipelineConfig`)."""
        return self.pipeline.config

    @property
    def owned(self) -> bool:
        return self.pipeline.owned

    @property
    def closed(self) -> bool:
        return self.pipeline.closed

    @property
    def data_source(self) -> str:
        return self.pipeline.data_source

    @property
    def confirmation(self) -> AsyncConfirmation:
        """The outcome of the last whole-pipeline deploy (creation, at first)."""
        return self._session._settled(self.pipeline.confirmation)

    def __repr__(self) -> str:
        return f"<AsyncPipeline {self.name!r} on {self.e2id} ({len(self.config.instances)} instance(s))>"

    # -- instances ---------------------------------------------------------------------------------
    async def start_plugin_instance(
        self,
        *,
        signature: str,
        instance_id: str,
        params: dict[str, Any] | None = None,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        wait: bool | float = True,
        **kwargs: Any,
    ) -> AsyncInstance:
        """Add a plugin instance, send the pipeline, and (``wait``) await the node's confirmation.

        ``on_data(pipeline, payload)`` gets the instance's payloads (``pipeline`` is
        this :class:`AsyncPipeline`); it may be a coroutine function.
        """
        s = self._session
        inst = await s._run(self.pipeline.start_plugin_instance, signature=signature, instance_id=instance_id,
                            params=params, on_data=s._pipeline_callback(on_data),
                            on_notification=s._pipeline_callback(on_notification), **kwargs)
        return await self._adopt(inst, wait)

    create_plugin_instance = start_plugin_instance

    async def start_custom_plugin(
        self,
        *,
        instance_id: str,
        plain_code: str | None = None,
        plain_code_path: str | Path | None = None,
        params: dict[str, Any] | None = None,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        check: bool = True,
        wait: bool | float = True,
        **kwargs: Any,
    ) -> AsyncInstance:
        """Run custom Python code on the node (``CUSTOM_EXEC_01``); ``on_data(pipeline, result[, payload])``."""
        s = self._session
        inst = await s._run(self.pipeline.start_custom_plugin, instance_id=instance_id, plain_code=plain_code,
                            plain_code_path=plain_code_path, params=params, on_data=s._pipeline_callback(on_data),
                            on_notification=s._pipeline_callback(on_notification), check=check, **kwargs)
        return await self._adopt(inst, wait)

    async def _adopt(self, inst: Instance, wait: bool | float) -> AsyncInstance:
        conf = self._session._settled(inst.confirmation)
        handle = AsyncInstance(self, inst, conf)
        self.instances[(inst.signature.upper(), inst.instance_id)] = handle
        if wait:
            await conf.result(None if wait is True else float(wait))
        return handle

    def attach_to_instance(self, signature: str, instance_id: str, on_data: Callable[..., Any],
                           on_notification: Callable[..., Any] | None = None) -> AsyncInstance:
        """Receive an existing instance's payloads with ``on_data(pipeline, payload)`` (registration only)."""
        s = self._session
        relay = s._pipeline_callback(on_data)
        assert relay is not None
        inst = self.pipeline.attach_to_instance(signature, instance_id, relay, s._pipeline_callback(on_notification))
        return self._attached(inst)

    attach_to_plugin_instance = attach_to_instance

    def attach_to_custom_instance(self, instance_id: str, on_data: Callable[..., Any],
                                  on_notification: Callable[..., Any] | None = None) -> AsyncInstance:
        """Receive an existing custom-code instance's results with ``on_data(pipeline, result[, payload])``."""
        s = self._session
        relay = s._pipeline_callback(on_data)
        assert relay is not None
        inst = self.pipeline.attach_to_custom_instance(instance_id, relay, s._pipeline_callback(on_notification))
        return self._attached(inst)

    def _attached(self, inst: Instance) -> AsyncInstance:
        handle = AsyncInstance(self, inst, self._session._settled(inst.confirmation))
        self.instances[(inst.signature.upper(), inst.instance_id)] = handle
        return handle

    def stop_plugin_instance(self, signature: str, instance_id: str | None = None, /) -> AsyncConfirmation:
        """Remove an instance (also accepts the handle string); ``await`` the result."""
        if instance_id is None:
            handle = parse_instance_handle(str(signature))
            signature, instance_id = handle.signature, handle.instance_id
        self.instances.pop((signature.upper(), instance_id), None)
        return self._session._send(self.pipeline.stop_plugin_instance, signature, instance_id,
                                   description=f"stop {signature}/{instance_id}")

    def stop_custom_instance(self, instance_id: str) -> AsyncConfirmation:
        return self.stop_plugin_instance(CUSTOM_SIGNATURE, instance_id)

    def update_instance_config(self, signature: str, instance_id: str, config: dict[str, Any] | None = None,
                               **kwargs: Any) -> AsyncConfirmation:
        """``UPDATE_PIPELINE_INSTANCE``: merge parameters into a running instance; ``await`` the result."""
        return self._session._send(self.pipeline.update_instance_config, signature, instance_id, config,
                                   description=f"update {signature}/{instance_id}", **kwargs)

    def send_instance_command(self, signature: str, instance_id: str, command: Any, **params: Any) -> AsyncConfirmation:
        """A one-shot command to an instance (confirmed by 101); ``await`` the result."""
        return self._session._send(self.pipeline.send_instance_command, signature, instance_id, command,
                                   description=f"command to {signature}/{instance_id}", **params)

    def send_pipeline_command(self, command: Any, **params: Any) -> AsyncConfirmation:
        """``PIPELINE_COMMAND`` (no confirmation code exists: settles once sent)."""
        return self._session._send(self.pipeline.send_pipeline_command, command,
                                   description=f"pipeline command to {self.name!r}", **params)

    def update_acquisition_parameters(self, config: dict[str, Any] | None = None, **kwargs: Any) -> AsyncConfirmation:
        """Change top-level pipeline settings and resend; ``await`` the result."""
        return self._session._send(self.pipeline.update_acquisition_parameters, config,
                                   description=f"update pipeline {self.name!r}", **kwargs)

    def close(self) -> AsyncConfirmation:
        """Archive the pipeline on the node (``ARCHIVE_CONFIG``; confirmed by code 4); ``await`` the result."""
        return self._session._send(self.pipeline.close, description=f"archive pipeline {self.name!r}")

    # -- streams and one-shot code -------------------------------------------------------------------
    def payloads(self, *, maxsize: int = DEFAULT_STREAM_SIZE, policy: str = "drop_oldest") -> PayloadStream:
        """Every payload of this pipeline as an ``async for`` stream (see :mod:`pye2.aio.stream`)."""
        pipe = self.pipeline
        stream = self._session._stream(f"{pipe.name} on {pipe.e2id}", lambda: pipe.closed, maxsize, policy)
        stream._listen([self._session.session.dispatcher.add("pipeline_data", (pipe.e2id, pipe.name),
                                                              PayloadStream._feeder(stream))])
        pipe._removers.append(stream._removers[-1])  # an archive removes it with the pipeline's own
        return stream

    async def wait_exec(self, *, plain_code: str | None = None, plain_code_path: str | Path | None = None,
                        params: dict[str, Any] | None = None, timeout: float | None = None) -> tuple[Any, Any]:
        """Run code once on the node (``REST_CUSTOM_EXEC_01``) and return ``(result, error)``.

        Raises :class:`~pye2.errors.CommandTimeout` if no answer arrives within ``timeout``
        (default: the session's ``command_timeout``) seconds of the session clock.
        """
        s = self._session
        pipe = self.pipeline
        box: dict[str, tuple[Any, Any]] = {}

        def keep(answer: tuple[Any, Any]) -> None:  # dispatcher thread, or the loop on a virtual clock
            box["result"] = answer
            s._poke()

        instance_id = await s._run(pipe._start_exec, plain_code, plain_code_path, params, keep)
        limit = s.session.command_timeout if timeout is None else timeout
        try:
            if not await s._until(lambda: "result" in box or pipe.closed, limit):
                raise CommandTimeout(f"wait_exec on {pipe.name!r}: no result within {limit} s")
        finally:
            if not pipe.closed:  # also when cancelled: the one-shot instance goes
                s._send(pipe.stop_plugin_instance, REST_SIGNATURE, instance_id, description="stop wait_exec")
        return box.get("result", (None, "pipeline closed"))

