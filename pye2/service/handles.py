"""Pipeline and Instance: the user's handles on what runs on a node.

A :class:`Pipeline` keeps the pipeline's config as a
:class:`~pye2.domain.pipeline.PipelineConfig` value; each edit builds a new
value and sends it (the original SDK resent the whole config with
``UPDATE_CONFIG``; instance config updates use ``UPDATE_PIPELINE_INSTANCE``).
Every method that sends a command leaves a
:class:`~pye2.service.confirmations.Confirmation` (returned, or on the
handle's ``.confirmation``) that resolves from the node's notifications.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pye2.domain.codecs.code import code_to_base64
from pye2.domain.notifications import ExpectedResponse
from pye2.domain.pipeline import InstanceConfig, PipelineConfig, parse_instance_handle, upper_keys
from pye2.errors import CommandTimeout, ConfigError, Pye2Error
from pye2.service.confirmations import Confirmation, Expectation
from pye2.service.payload import Payload

if TYPE_CHECKING:
    from pye2.service.session import Session

__all__ = ["Instance", "Pipeline"]

log = logging.getLogger("pye2.pipeline")

CUSTOM_SIGNATURE = "CUSTOM_EXEC_01"
REST_SIGNATURE = "REST_CUSTOM_EXEC_01"


def _read_code(plain_code: str | None, plain_code_path: str | Path | None) -> str:
    if (plain_code is None) == (plain_code_path is None):
        raise ConfigError("give exactly one of plain_code= or plain_code_path=")
    if plain_code_path is not None:
        return Path(plain_code_path).read_text("utf-8")
    assert plain_code is not None
    return plain_code


def _custom_adapter(on_data: Callable[..., Any]) -> Callable[[Any, Payload], None]:
    """Custom-code callbacks get ``(pipeline, result)`` or, with 3 parameters, ``(pipeline, result, payload)``.

    Only payloads produced by the code (``EXEC_RESULT``/``EXEC_ERRORS``) reach them;
    the node's status payloads do not.
    """
    try:
        params = [p for p in inspect.signature(on_data).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        wants_payload = len(params) >= 3 or any(
            p.kind == p.VAR_POSITIONAL for p in inspect.signature(on_data).parameters.values())
    except (TypeError, ValueError):
        wants_payload = False

    def adapter(pipeline: Any, payload: Payload) -> None:
        if "specificValue" in payload:  # legacy cavi2 shape
            values = payload.get("specificValue") or {}
            if "exec_result" not in values and "exec_errors" not in values:
                return
            result = values.get("exec_result")
        elif not any(k in payload for k in ("EXEC_RESULT", "EXEC_INFO", "EXEC_ERRORS")):
            return  # status payloads (working-hours start, idle...) carry no result
        else:
            result = payload.get("EXEC_RESULT", payload.get("EXEC_INFO"))
        if wants_payload:
            on_data(pipeline, result, payload)
        else:
            on_data(pipeline, result)

    adapter.__qualname__ = getattr(on_data, "__qualname__", "custom_on_data")
    return adapter


class Instance(str):
    """A started plugin instance; also its handle string ``"node##pipeline##SIGNATURE##instance"``."""

    pipeline: Pipeline
    signature: str
    instance_id: str
    confirmation: Confirmation

    def __new__(cls, pipeline: Pipeline, signature: str, instance_id: str,
                confirmation: Confirmation) -> Instance:
        obj = super().__new__(cls, f"{pipeline.e2id}##{pipeline.name}##{signature}##{instance_id}")
        obj.pipeline = pipeline
        obj.signature = signature
        obj.instance_id = instance_id
        obj.confirmation = confirmation
        return obj

    @property
    def config(self) -> dict[str, Any]:
        """The instance parameters as last sent."""
        inst = self.pipeline.config.get_instance(self.signature, self.instance_id)
        return dict(inst.params) if inst else {}

    def update_instance_config(self, config: dict[str, Any] | None = None, **kwargs: Any) -> Confirmation:
        """Change parameters in place on the node (caches survive)."""
        return self.pipeline.update_instance_config(self.signature, self.instance_id, config, **kwargs)

    def send_instance_command(self, command: Any, **params: Any) -> Confirmation:
        """A one-shot ``INSTANCE_COMMAND`` (confirmed by 101/-101)."""
        return self.pipeline.send_instance_command(self.signature, self.instance_id, command, **params)

    def stop(self) -> Confirmation:
        """Remove the instance from its pipeline."""
        return self.pipeline.stop_plugin_instance(self.signature, self.instance_id)

    close = stop


class Pipeline:
    """A pipeline on one node. Made by ``Session.create_pipeline`` / ``attach_to_pipeline``."""

    def __init__(self, session: Session, e2id: str, config: PipelineConfig, *, owned: bool) -> None:
        self.session = session
        self.e2id = e2id
        #: the address of the node the pipeline lives on (None until the node has been heard from);
        #: only messages signed by it reach this pipeline's callbacks
        self.node_address: str | None = None
        self.config = config
        self.owned = owned
        self.closed = False
        assert session.confirmations is not None, "pipelines are made by a connected session"
        self.confirmation: Confirmation = session.confirmations.register(f"pipeline {config.name}", [])
        self.instances: dict[tuple[str, str], Instance] = {}
        self._removers: list[Callable[[], None]] = []
        #: (SIGNATURE, instance id) -> removers of the callbacks registered for it (a stop removes just those)
        self._instance_removers: dict[tuple[str, str], list[Callable[[], None]]] = {}
        #: config edits (read the current config, send the new one) one at a time: concurrent wait_exec calls
        self._edit = threading.RLock()
        self._exec_ids = itertools.count()

    # ---------------------------------------------------------------- construction
    @classmethod
    def _create(cls, session: Session, e2id: str, name: str, data_source: str, config: dict[str, Any],
                plugins: list[dict[str, Any]], on_data: Callable[..., Any] | None,
                on_notification: Callable[..., Any] | None, kwargs: dict[str, Any]) -> Pipeline:
        pcfg = PipelineConfig.create(name, data_source, config=config, **kwargs)
        if plugins:
            pcfg = PipelineConfig.from_dict({**pcfg.to_dict(), "PLUGINS": plugins})
        pipe = cls(session, e2id, pcfg, owned=True)
        pipe._listen(on_data, on_notification)
        session.router.register(pipe)
        try:
            pipe.confirmation = pipe._deploy(f"create pipeline {name!r} on {e2id}")
        except Pye2Error:  # never sent: leave no handle behind
            pipe._on_archived()
            session.router.unregister(pipe)
            raise
        return pipe

    @classmethod
    def _attach(cls, session: Session, e2id: str, stored: dict[str, Any], on_data: Callable[..., Any] | None,
                on_notification: Callable[..., Any] | None) -> Pipeline:
        pipe = cls(session, e2id, PipelineConfig.from_dict(stored), owned=False)
        pipe.confirmation = session.confirmations.register("attach", [])  # type: ignore[union-attr]
        pipe._listen(on_data, on_notification)
        session.router.register(pipe)
        return pipe

    def _listen(self, on_data: Callable[..., Any] | None, on_notification: Callable[..., Any] | None) -> None:
        d = self.session.dispatcher
        if on_data is not None:
            self._removers.append(d.add("pipeline_data", (self.e2id, self.name), on_data))
        if on_notification is not None:
            self._removers.append(d.add("pipeline_notification", (self.e2id, self.name), on_notification))

    def _instance_keys(self, signature: str, instance_id: str) -> list[tuple[str, ...]]:
        nodes = dict.fromkeys([self.e2id, self.node_address, self.session.get_node_alias(self.target)])
        return [(node, self.name, signature.upper(), instance_id) for node in nodes if node]

    def _listen_instance(self, signature: str, instance_id: str, on_data: Callable[..., Any] | None,
                         on_notification: Callable[..., Any] | None) -> list[Callable[[], None]]:
        """Register the instance's callbacks; returns their removers (also kept for the pipeline's close)."""
        d = self.session.dispatcher
        added = []
        for key in self._instance_keys(signature, instance_id):  # messages may name the node either way
            if on_data is not None:
                added.append(d.add("instance_data", key, on_data))
            if on_notification is not None:
                added.append(d.add("instance_notification", key, on_notification))
        self._removers.extend(added)
        self._instance_removers.setdefault((signature.upper(), instance_id), []).extend(added)
        return added

    def _deploy(self, description: str, extra: list[Expectation] | None = None, *,
                config: PipelineConfig | None = None) -> Confirmation:
        """Send the whole pipeline (``config``, default the current one); adopt it once it is sent.

        If sending raises, the handle keeps its previous config, so a later update
        does not quietly carry a change that never left.
        """
        new = self.config if config is None else config
        expect = [Expectation(self.e2id, ExpectedResponse.pipeline_ok(self.name)), *(extra or [])]
        conf = self.session.send_command(self.target, "UPDATE_CONFIG", new.to_dict(), expect=expect,
                                         description=description)
        self.config = new
        return conf

    def _check_open(self) -> None:
        if self.closed:
            raise ConfigError(f"pipeline {self.name!r} on {self.e2id} is closed")

    # ---------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def target(self) -> str:
        """Where this pipeline's commands go: its node's address once known (never re-resolved by name), else its name."""
        return self.node_address or self.e2id

    @property
    def data_source(self) -> str:
        return self.config.type

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} on {self.e2id} ({len(self.config.instances)} instance(s))>"

    def P(self, *args: Any, **kwargs: Any) -> None:
        """Print a line to stdout, as the original SDK's ``P`` did (it is the user's own print)."""
        print(*args, flush=True)

    # ---------------------------------------------------------------- instances
    def start_plugin_instance(
        self,
        *,
        signature: str,
        instance_id: str,
        params: dict[str, Any] | None = None,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Instance:
        """Add a plugin instance and send the updated pipeline.

        ``on_data(pipeline, payload)`` gets this instance's payloads. Returns the
        :class:`Instance` (a ``str`` handle, as in the original SDK).
        """
        self._check_open()
        inst_cfg = InstanceConfig.create(signature, instance_id, params or {}, **kwargs)
        added = self._listen_instance(signature, instance_id, on_data, on_notification)
        try:
            with self._edit:
                conf = self._deploy(
                    f"start {signature}/{instance_id} in {self.name!r} on {self.e2id}",
                    [Expectation(self.e2id, ExpectedResponse.instance_configured(self.name, signature, instance_id))],
                    config=self.config.with_instance(inst_cfg))
        except Pye2Error:
            for remove in added:
                remove()
            self._removers[:] = [r for r in self._removers if r not in added]
            mine = self._instance_removers.get((signature.upper(), instance_id), [])
            mine[:] = [r for r in mine if r not in added]
            raise
        inst = Instance(self, signature, instance_id, conf)
        self.instances[(signature.upper(), instance_id)] = inst
        return inst

    create_plugin_instance = start_plugin_instance

    def stop_plugin_instance(self, signature: str, instance_id: str | None = None, /) -> Confirmation:
        """Remove an instance (also accepts the handle string) and send the updated pipeline."""
        self._check_open()
        if instance_id is None:
            handle = parse_instance_handle(str(signature))
            signature, instance_id = handle.signature, handle.instance_id
        with self._edit:
            real_sig = next((i.signature for i in self.config.instances
                             if i.signature.upper() == signature.upper() and i.instance_id == instance_id), signature)
            conf = self._deploy(f"stop {real_sig}/{instance_id} in {self.name!r} on {self.e2id}",
                                config=self.config.without_instance(real_sig, instance_id))
        self.instances.pop((real_sig.upper(), instance_id), None)
        # just the callbacks registered so far: an instance started again under the same id keeps its own
        removers = self._instance_removers.pop((real_sig.upper(), instance_id), [])

        def forget(done: Confirmation) -> None:
            # payloads the instance sent before the node applied the stop still reach its callbacks
            if done.ok:
                for remove in removers:
                    remove()

        conf.add_done_callback(forget)
        return conf

    def start_custom_plugin(
        self,
        *,
        instance_id: str,
        plain_code: str | None = None,
        plain_code_path: str | Path | None = None,
        params: dict[str, Any] | None = None,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        check: bool = True,
        **kwargs: Any,
    ) -> Instance:
        """Run custom Python code on the node (``CUSTOM_EXEC_01``).

        ``on_data(pipeline, result)`` or ``on_data(pipeline, result, payload)``
        gets each result. The code is checked locally first (``check=True``):
        code the node would refuse raises :class:`~pye2.errors.CodeCheckError`.
        """
        code = _read_code(plain_code, plain_code_path)
        b64 = code_to_base64(code, check=check)
        return self.start_plugin_instance(
            signature=CUSTOM_SIGNATURE, instance_id=instance_id, params={**(params or {}), "CODE": b64},
            on_data=_custom_adapter(on_data) if on_data is not None else None,
            on_notification=on_notification, **kwargs,
        )

    def stop_custom_instance(self, instance_id: str) -> Confirmation:
        return self.stop_plugin_instance(CUSTOM_SIGNATURE, instance_id)

    def attach_to_instance(self, signature: str, instance_id: str, on_data: Callable[..., Any],
                           on_notification: Callable[..., Any] | None = None) -> Instance:
        """Receive an existing instance's payloads with ``on_data(pipeline, payload)``."""
        self._listen_instance(signature, instance_id, on_data, on_notification)
        conf = self.session.confirmations.register("attach", [])  # type: ignore[union-attr]
        inst = Instance(self, signature, instance_id, conf)
        self.instances[(signature.upper(), instance_id)] = inst
        return inst

    attach_to_plugin_instance = attach_to_instance

    def attach_to_custom_instance(self, instance_id: str, on_data: Callable[..., Any],
                                  on_notification: Callable[..., Any] | None = None) -> Instance:
        return self.attach_to_instance(CUSTOM_SIGNATURE, instance_id, _custom_adapter(on_data), on_notification)

    def update_instance_config(self, signature: str, instance_id: str, config: dict[str, Any] | None = None,
                               **kwargs: Any) -> Confirmation:
        """``UPDATE_PIPELINE_INSTANCE``: merge parameters into a running instance."""
        self._check_open()
        delta = upper_keys({**(config or {}), **kwargs})
        updated = self.config.with_instance_config(signature, instance_id, delta)
        payload = {"NAME": self.name, "SIGNATURE": signature, "INSTANCE_ID": instance_id, "INSTANCE_CONFIG": delta}
        conf = self.session.send_command(
            self.target, "UPDATE_PIPELINE_INSTANCE", payload,
            expect=[Expectation(self.e2id, ExpectedResponse.pipeline_ok(self.name)),
                    Expectation(self.e2id, ExpectedResponse.instance_configured(self.name, signature, instance_id))],
            description=f"update {signature}/{instance_id} in {self.name!r} on {self.e2id}")
        self.config = updated
        return conf

    def send_instance_command(self, signature: str, instance_id: str, command: Any, **params: Any) -> Confirmation:
        """A one-shot command to an instance (``INSTANCE_COMMAND``; confirmed by 101)."""
        self._check_open()
        body: Any = command
        if params:
            body = {**(command if isinstance(command, dict) else {"COMMAND": command}),
                    "COMMAND_PARAMS": upper_keys(params)}
        payload = {"NAME": self.name, "SIGNATURE": signature, "INSTANCE_ID": instance_id,
                   "INSTANCE_CONFIG": {"INSTANCE_COMMAND": body}}
        return self.session.send_command(
            self.target, "UPDATE_PIPELINE_INSTANCE", payload,
            expect=[Expectation(self.e2id, ExpectedResponse.instance_command(self.name, signature, instance_id))],
            description=f"command to {signature}/{instance_id} in {self.name!r} on {self.e2id}")

    def send_pipeline_command(self, command: Any, **params: Any) -> Confirmation:
        """``PIPELINE_COMMAND`` for the pipeline's data source (no confirmation code exists; resolves at once)."""
        self._check_open()
        body = command if isinstance(command, dict) else {str(command): True}
        if params:
            body = {**body, "COMMAND_PARAMS": upper_keys(params)}
        return self.session.send_command(self.target, "PIPELINE_COMMAND",
                                         {"NAME": self.name, "PIPELINE_COMMAND": body},
                                         description=f"pipeline command to {self.name!r} on {self.e2id}")

    def update_acquisition_parameters(self, config: dict[str, Any] | None = None, **kwargs: Any) -> Confirmation:
        """Change top-level pipeline settings (``URL``, ``CAP_RESOLUTION``...) and resend."""
        self._check_open()
        return self._deploy(f"update pipeline {self.name!r} on {self.e2id}",
                            config=self.config.with_config(config, **kwargs))

    # ---------------------------------------------------------------- one-shot code
    def wait_exec(self, *, plain_code: str | None = None, plain_code_path: str | Path | None = None,
                  params: dict[str, Any] | None = None, timeout: float | None = None) -> tuple[Any, Any]:
        """Run code once on the node (``REST_CUSTOM_EXEC_01``) and return ``(result, error)``.

        Raises :class:`~pye2.errors.CommandTimeout` if no answer arrives in time.
        """
        box: dict[str, Any] = {}

        def keep(answer: tuple[Any, Any]) -> None:
            box["result"] = answer

        instance_id = self._start_exec(plain_code, plain_code_path, params, keep)
        limit = self.session.command_timeout if timeout is None else timeout
        try:
            if not self.session.wait(lambda: "result" in box or self.closed, limit):
                raise CommandTimeout(f"wait_exec on {self.name!r}: no result within {limit} s")
        finally:
            if not self.closed:
                self.stop_plugin_instance(REST_SIGNATURE, instance_id)
        result: tuple[Any, Any] = box.get("result", (None, "pipeline closed"))
        return result

    def _start_exec(self, plain_code: str | None, plain_code_path: str | Path | None, params: dict[str, Any] | None,
                    on_result: Callable[[tuple[Any, Any]], Any]) -> str:
        """Start a one-shot ``REST_CUSTOM_EXEC_01`` instance; ``on_result((result, error))`` gets its answer.

        Returns the instance id (the caller stops it). Shared by :meth:`wait_exec` and the asyncio facade.
        """
        code = _read_code(plain_code, plain_code_path)
        b64 = code_to_base64(code, check=True)
        # an instance of its own per call: calls one after another, or at once, never share one
        instance_id = f"{self.name}_rest_custom_exec_synchronous_{next(self._exec_ids)}"

        def on_data(_pipe: Pipeline, payload: Payload) -> None:
            if "REST_EXECUTION_RESULT" in payload or "REST_EXECUTION_ERROR" in payload:
                on_result((payload.get("REST_EXECUTION_RESULT"), payload.get("REST_EXECUTION_ERROR")))
            elif "specificValue" in payload:  # legacy cavi2 shape
                sv = payload.get("specificValue") or {}
                if "rest_execution_result" in sv:
                    on_result((sv.get("rest_execution_result"), sv.get("rest_execution_error")))

        now = self.session.clock.time() if self.session.clock else 0.0
        self.start_plugin_instance(
            signature=REST_SIGNATURE, instance_id=instance_id, on_data=on_data,
            # a real node runs an instance of a Void pipeline only when it allows empty inputs
            params={"ALLOW_EMPTY_INPUTS": True, **(params or {}), "REQUEST": {"DATA": {"CODE": b64}, "TIMESTAMP": now},
                    "RESULT_KEY": "REST_EXECUTION_RESULT", "ERROR_KEY": "REST_EXECUTION_ERROR"},
        )
        return instance_id

    # ---------------------------------------------------------------- closing
    def close(self) -> Confirmation:
        """Archive the pipeline on the node (``ARCHIVE_CONFIG``; confirmed by code 4)."""
        if self.closed:
            return self.session.confirmations.register("close (already closed)", [])  # type: ignore[union-attr]
        conf = self.session.send_command(self.target, "ARCHIVE_CONFIG", self.name,
                                         expect=[Expectation(self.e2id, ExpectedResponse.pipeline_archived(self.name))],
                                         description=f"archive pipeline {self.name!r} on {self.e2id}")
        return conf

    def _on_archived(self) -> None:
        """The node reported the pipeline archived (by us or anyone)."""
        self.closed = True
        for remove in self._removers:
            remove()
        self._removers.clear()
