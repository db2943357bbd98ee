"""Running pipelines on a simulated node: data sources, instances, payloads.

Everything runs on clock timers, never threads: a data source is polled every
``1 / CAP_RESOLUTION`` seconds (push sources ask for a poll when data
arrives), and an instance runs at most every ``max(PROCESS_DELAY,
1 / PLUGIN_LOOP_RESOLUTION)`` seconds, only when inputs wait for it unless
``ALLOW_EMPTY_INPUTS``. A new instance sends 120, 112 and the working-hours
status payload, runs one loop tick later, and a run after a (re)configuration
sends 100 "exec ok post config". A failing ``process`` sends an EXCEPTION
notification and backs the instance off (10 s by default).
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from pye2_transport_memory.node._admin import ADMIN_PIPELINE, MAX_ADMIN_DELAY
from pye2_transport_memory.node._instance import InstanceRuntime, fresh_input, num
from pye2_transport_memory.node._notify import ABNORMAL, EXCEPTION, NORMAL, Notice, instance_label
from pye2_transport_memory.node._payload import decorate_payload, status_payload, time_text
from pye2_transport_memory.node.plugin_base import InputItem, SimDataSource, SimPlugin

if TYPE_CHECKING:
    from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["PipelineRuntime", "Runtime"]

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = 10.0
# Keys a client may change without the data source being restarted.
_NON_DCT_KEYS = frozenset({"PLUGINS", "INITIATOR_ID", "INITIATOR_ADDR", "MODIFIED_BY_ID", "MODIFIED_BY_ADDR",
                           "SESSION_ID", "LAST_UPDATE_TIME", "VALIDATED", "DEFAULT_PLUGIN", "TIME", "OWNER"})


class PipelineRuntime:
    """One running pipeline: its data source and its instances."""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.config = config
        self.source: SimDataSource | None = None
        self.poll_timer: Any = None
        self.instances: dict[tuple[str, str], InstanceRuntime] = {}
        self.last_data = 0.0
        self.data_count = 0
        self.poll_failed = False


def _instance_configs(config: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """``(SIGNATURE upper, INSTANCE_ID) -> (signature as sent, instance config)``."""
    out: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    plugins = config.get("PLUGINS")
    for entry in plugins if isinstance(plugins, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("SIGNATURE"), str):
            continue
        instances = entry.get("INSTANCES")
        for inst in instances if isinstance(instances, list) else []:
            if isinstance(inst, dict):
                out[(entry["SIGNATURE"].upper(), str(inst.get("INSTANCE_ID")))] = (entry["SIGNATURE"], inst)
    return out


class Runtime:
    """All pipelines of one node while it runs."""

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.pipelines: dict[str, PipelineRuntime] = {}

    # -- pipelines -----------------------------------------------------------------
    def start_pipeline(self, name: str, config: dict[str, Any]) -> None:
        """Start a pipeline from its stored config (DCT, then every instance)."""
        pipe = PipelineRuntime(name, config)
        self.pipelines[name] = pipe
        self._start_source(pipe)
        for signature, inst_cfg in _instance_configs(config).values():
            self._create_instance(pipe, signature, inst_cfg)

    def stop_pipeline(self, name: str) -> None:
        """Stop every instance and the data source of a pipeline."""
        pipe = self.pipelines.pop(name, None)
        if pipe is None:
            return
        for inst in list(pipe.instances.values()):
            self._stop_instance(inst)
        self._stop_source(pipe)

    def stop_all(self) -> None:
        """Stop every pipeline (node stop/crash)."""
        for name in list(self.pipelines):
            self.stop_pipeline(name)

    def update_pipeline(self, name: str, config: dict[str, Any]) -> None:
        """Apply a merged config: restart the DCT if its keys changed, diff the instances."""
        pipe = self.pipelines.get(name)
        if pipe is None:
            self.start_pipeline(name, config)
            return
        old = pipe.config
        pipe.config = config
        if {k: v for k, v in old.items() if k not in _NON_DCT_KEYS} != \
                {k: v for k, v in config.items() if k not in _NON_DCT_KEYS}:
            self._stop_source(pipe)
            self._start_source(pipe)
        wanted = _instance_configs(config)
        for key, inst in list(pipe.instances.items()):
            if key not in wanted:
                self._stop_instance(inst)
        for key, (signature, inst_cfg) in wanted.items():
            current = pipe.instances.get(key)
            if current is None:
                self._create_instance(pipe, signature, inst_cfg)
            else:
                current.ctx.pipeline_config = config
                if current.stored != inst_cfg:
                    self.reconfigure_instance(name, key[0], key[1], inst_cfg, config_changed=True)

    def update_pipeline_config(self, name: str, config: dict[str, Any]) -> None:
        """A new stored config object for a pipeline whose DCT and instance set did not change."""
        pipe = self.pipelines.get(name)
        if pipe is not None:
            pipe.config = config
            for inst in pipe.instances.values():
                inst.ctx.pipeline_config = config

    def pipeline_command(self, name: str, command: Any) -> None:
        """Forward a ``PIPELINE_COMMAND`` to the pipeline's data source."""
        pipe = self.pipelines.get(name)
        if pipe is not None and pipe.source is not None:
            pipe.source.on_pipeline_command(command)

    # -- data sources ----------------------------------------------------------------
    def _start_source(self, pipe: PipelineRuntime) -> None:
        node, config = self.node, pipe.config
        type_name = str(config.get("TYPE", ""))
        if type_name.lower() == "void":
            return
        cls = node.sources.get(type_name)
        if cls is None:
            node.notify(Notice("CaptureManager", ABNORMAL,
                               f"Unknown data capture type '{type_name}' for pipeline '{pipe.name}'", -3,
                               stream=pipe.name, initiator_id=config.get("INITIATOR_ID"),
                               session_id=config.get("SESSION_ID")))
            return
        try:
            source = cls(node, pipe.name, config)
            source.start()
        except Exception as exc:  # a source is user code: report, keep the node alive
            log.exception("node %s: data source %s of %s failed to start", node.alias, type_name, pipe.name)
            node.notify(Notice("CaptureManager", EXCEPTION,
                               f"Failed to start capture for pipeline '{pipe.name}': {exc}", -2,
                               stream=pipe.name, info=traceback.format_exc(),
                               initiator_id=config.get("INITIATOR_ID"), session_id=config.get("SESSION_ID")))
            return
        pipe.source = source
        pipe.last_data = node.time()
        node.notify(Notice(
            "CaptureManager", NORMAL,
            f"Started capture thread for pipeline {pipe.name} (url:{config.get('URL')} "
            f"live:{config.get('LIVE_FEED', False)} recon:{config.get('RECONNECTABLE', True)})", 1,
            stream=pipe.name, displayed=None, initiator_id=config.get("INITIATOR_ID"),
            session_id=config.get("SESSION_ID")))
        set_wake = getattr(source, "set_wake", None)
        if callable(set_wake):
            set_wake(lambda p=pipe: self._poll_soon(p))
        else:
            self._schedule_poll(pipe)

    def _stop_source(self, pipe: PipelineRuntime) -> None:
        if pipe.poll_timer is not None:
            pipe.poll_timer.cancel()
            pipe.poll_timer = None
        source, pipe.source = pipe.source, None
        if source is not None:
            try:
                source.stop()
            except Exception:
                log.exception("node %s: data source of %s failed to stop", self.node.alias, pipe.name)

    def _poll_period(self, pipe: PipelineRuntime) -> float:
        assert pipe.source is not None
        hz = num(pipe.config.get("CAP_RESOLUTION"), type(pipe.source).DEFAULT_CAP_RESOLUTION)
        return 1.0 / hz if hz > 0 else 1.0

    def _schedule_poll(self, pipe: PipelineRuntime, *, rearm: bool = True) -> None:
        pipe.poll_timer = self.node.call_later(self._poll_period(pipe), lambda: self._poll(pipe, rearm=rearm))

    def _poll_soon(self, pipe: PipelineRuntime) -> None:
        if pipe.poll_timer is None and pipe.source is not None:
            pipe.poll_timer = self.node.call_later(0.0, lambda: self._poll(pipe, rearm=False))

    def _poll(self, pipe: PipelineRuntime, *, rearm: bool) -> None:
        pipe.poll_timer = None
        source = pipe.source
        if source is None or self.pipelines.get(pipe.name) is not pipe:
            return
        try:
            items = list(source.poll())
            pipe.poll_failed = False
        except Exception as exc:  # noqa: BLE001 - plugin/source code is user code
            items = []
            if not pipe.poll_failed:
                pipe.poll_failed = True
                self.node.notify(Notice("CaptureManager", EXCEPTION,
                                        f"Data acquisition failed for pipeline '{pipe.name}': {exc}", -2,
                                        stream=pipe.name, info=traceback.format_exc()))
        if items:
            now = self.node.time()
            pipe.last_data = now
            pipe.data_count += len(items)
            self.node.counters["streams_data"] += len(items)
            for inst in pipe.instances.values():
                inst.queue.extend(items)
                self._wake(inst)
        if pipe.source is source and (rearm or int(getattr(source, "backlog", 0)) > 0):
            self._schedule_poll(pipe, rearm=rearm)

    # -- instances ---------------------------------------------------------------------
    def _plugin_class(self, pipe: PipelineRuntime, signature: str) -> type[SimPlugin] | None:
        if pipe.name == ADMIN_PIPELINE:
            return self.node.admin_plugins.get(signature.upper())
        return self.node.plugins.get(signature)

    def _create_instance(self, pipe: PipelineRuntime, signature: str, inst_cfg: dict[str, Any]) -> None:
        node, config = self.node, pipe.config
        iid = inst_cfg.get("INSTANCE_ID")

        def fail(text: str, code: int | None, **kw: Any) -> None:
            node.notify(Notice("BusinessManager", EXCEPTION, f"Error loading business plugin <{signature}:{iid}> - "
                               f"{text}", code, stream=pipe.name, signature=signature.upper(),
                               initiator_id=config.get("INITIATOR_ID"), session_id=config.get("SESSION_ID"), **kw))

        if not isinstance(iid, str) or not iid:
            fail("missing INSTANCE_ID.", -100)
            return
        admin = pipe.name == ADMIN_PIPELINE
        if admin and num(inst_cfg.get("PROCESS_DELAY"), 0) > MAX_ADMIN_DELAY:
            log.info("node %s: %s refuses PROCESS_DELAY above %d s; skipped", node.alias, signature, MAX_ADMIN_DELAY)
            return
        cls = self._plugin_class(pipe, signature)
        if cls is None and not admin:
            fail("No code/script defined.", None, instance_id=iid)
            return
        inst = InstanceRuntime(pipe.name, signature.upper(), iid, inst_cfg, cls, node, config)
        if cls is not None:
            try:
                inst.plugin = cls(inst.ctx)
            except Exception as exc:
                log.exception("node %s: plugin %s:%s failed to initialise", node.alias, signature, iid)
                fail(str(exc), -100, instance_id=iid, info=traceback.format_exc())
                return
        pipe.instances[(inst.signature, iid)] = inst
        if inst.plugin is None:  # admin instance the simulator only reports (no behaviour to simulate)
            return
        node.notify(inst.notice(NORMAL, "Plugin configured while being stopped", 120, displayed=None))
        if inst.paused:
            return
        self._start_shift(inst)

    def _start_shift(self, inst: InstanceRuntime) -> None:
        label = instance_label(inst.pipeline, inst.signature, inst.instance_id)
        self.node.notify(inst.notice(NORMAL, "Starting new working hours shift NON-STOP", 112,
                                     info=f"Plugin {label} starting new shift NON-STOP"))
        self._emit(inst, status_payload(**self._payload_kw(inst)))
        inst.config_notice = True
        self._schedule(inst, inst.tick)

    def _stop_instance(self, inst: InstanceRuntime) -> None:
        inst.alive = False
        inst.cancel_timer()
        pipe = self.pipelines.get(inst.pipeline)
        if pipe is not None:
            pipe.instances.pop((inst.signature, inst.instance_id), None)
        if inst.plugin is not None:
            try:
                inst.plugin.stop()
            except Exception:
                log.exception("node %s: plugin %s failed to stop", self.node.alias, inst.instance_id)

    def find_instance(self, pipeline: str, signature: str, instance_id: str) -> InstanceRuntime | None:
        """The running instance, if any."""
        pipe = self.pipelines.get(pipeline)
        return None if pipe is None else pipe.instances.get((signature.upper(), instance_id))

    def reconfigure_instance(self, pipeline: str, signature: str, instance_id: str, stored: dict[str, Any],
                             *, command: Any = None, has_command: bool = False, config_changed: bool) -> None:
        """Apply a new stored instance config in place (caches survive) and/or queue an instance command.

        ``config_changed``: the update carried config keys, so a 100 follows the next run.
        """
        pipe = self.pipelines.get(pipeline)
        if pipe is None:
            return
        inst = pipe.instances.get((signature.upper(), instance_id))
        if inst is None:
            self._create_instance(pipe, signature, stored)
            inst = pipe.instances.get((signature.upper(), instance_id))
            if inst is not None and has_command:
                inst.commands.append(command)
            return
        was_paused = inst.paused
        if stored != inst.stored:
            inst.apply(stored, self.node.time())
        if has_command:
            inst.commands.append(command)
        if inst.plugin is None:
            return
        if config_changed:
            inst.config_notice = True
        if inst.paused and not was_paused:
            inst.cancel_timer()
            self.node.notify(inst.notice(NORMAL, "Plugin paused", 110))
        elif was_paused and not inst.paused:
            self.node.notify(inst.notice(NORMAL, "Plugin resumed", 111))
        self._schedule(inst, 0.0, replace=True)

    def _payload_kw(self, inst: InstanceRuntime) -> dict[str, Any]:
        now = self.node.time()
        return {"pipeline": inst.pipeline, "pipeline_config": inst.ctx.pipeline_config, "signature": inst.signature,
                "instance_id": inst.instance_id, "iteration": inst.process_iter, "now_text": time_text(now),
                "alive_minutes": round((now - inst.init_time) / 60.0, 2), "process_delay": inst.process_delay,
                "loop_resolution": inst.loop_resolution, "version": inst.version}

    def _emit(self, inst: InstanceRuntime, body: dict[str, Any]) -> None:
        inst.payload_count += 1
        inst.last_payload_time = self.node.time()
        self.node.emit_payload(body, pipeline=inst.pipeline, signature=inst.signature,
                               instance_id=inst.instance_id, encrypt=bool(inst.config.get("ENCRYPT_PAYLOAD")),
                               pipeline_config=inst.ctx.pipeline_config)

    def _emit_output(self, inst: InstanceRuntime, output: Any, inputs: list[InputItem]) -> None:
        outputs = output if isinstance(output, list) else [output]
        for item in outputs:
            if item is None:
                continue
            if not isinstance(item, dict):
                log.warning("node %s: %s returned %s, not a dict; ignored", self.node.alias, inst.instance_id,
                            type(item).__name__)
                continue
            kw = self._payload_kw(inst)
            self._emit(inst, decorate_payload(item, [i.metadata for i in inputs], **kw))

    def extra_payload(self, body: dict[str, Any], pipeline: str, signature: str, instance_id: str) -> None:
        """``NodeApi.publish_payload``: a payload outside the ``process`` return path."""
        inst = self.find_instance(pipeline, signature, instance_id)
        if inst is None:
            log.warning("node %s: payload for unknown instance %s:%s:%s dropped", self.node.alias, pipeline,
                        signature, instance_id)
            return
        self._emit_output(inst, body, [])

    # -- scheduling ---------------------------------------------------------------------
    def _schedule(self, inst: InstanceRuntime, delay: float, *, replace: bool = False) -> None:
        if not inst.alive or inst.paused:
            return
        if inst.timer is not None:
            if not replace:
                return
            inst.cancel_timer()
        inst.timer = self.node.call_later(max(0.0, delay), lambda: self._run(inst))

    def _wake(self, inst: InstanceRuntime) -> None:
        if inst.timer is None and inst.plugin is not None:
            self._schedule(inst, inst.last_run + inst.period - self.node.time())

    def _run(self, inst: InstanceRuntime) -> None:
        inst.timer = None
        node = self.node
        if not inst.alive or inst.paused or inst.plugin is None:
            return
        now = node.time()
        if now < inst.backoff_until:
            self._schedule(inst, inst.backoff_until - now)
            return
        while inst.commands:
            self._run_command(inst, inst.commands.popleft())
        if inst.queue:
            item = inst.queue.popleft()
            inputs = [fresh_input(item) if getattr(type(inst.plugin), "COPY_INPUTS", True) else item]
        elif inst.allow_empty:
            inputs = []
        else:
            node.flush_outbox()
            return  # waits for data (a poll wakes it)
        inst.process_iter += 1
        inst.last_run = now
        try:
            output = inst.plugin.process(inputs)
        except Exception as exc:  # noqa: BLE001 - plugin/source code is user code
            self._failed(inst, exc, inputs)
            node.flush_outbox()
            return
        inst.exec_iter += 1
        inst.exec_time = now
        self._emit_output(inst, output, inputs)
        if inst.config_notice:
            inst.config_notice = False
            label = instance_label(inst.pipeline, inst.signature, inst.instance_id)
            node.notify(inst.notice(NORMAL, f" >>>>>>> Instance {label} exec ok post config "
                                            f"(itr {inst.process_iter}). <<<<<<<", 100, displayed=False,
                                    extra={"PLUGIN_RUNNING": True}))
        node.flush_outbox()
        if inst.allow_empty or inst.queue:
            self._schedule(inst, inst.period)

    def _run_command(self, inst: InstanceRuntime, command: Any) -> None:
        assert inst.plugin is not None
        label = instance_label(inst.pipeline, inst.signature, inst.instance_id)
        try:
            inst.plugin.on_command(command)
        except Exception as exc:  # noqa: BLE001 - plugin/source code is user code
            self.node.notify(inst.notice(EXCEPTION, f"Instance command failed on {label}: {exc}", -101,
                                         info=traceback.format_exc()))
        else:
            self.node.notify(inst.notice(NORMAL, f"Instance command executed on {label}", 101))

    def _failed(self, inst: InstanceRuntime, exc: Exception, inputs: list[InputItem]) -> None:
        now = self.node.time()
        payload = getattr(exc, "payload", None)
        if isinstance(payload, dict):
            self._emit_output(inst, payload, inputs)
        backoff = num(getattr(exc, "backoff", DEFAULT_BACKOFF), DEFAULT_BACKOFF)
        info = getattr(exc, "info", None)
        if not isinstance(info, str):
            info = f"Reset/sleep plugin for {backoff:g}s. Error in plugin process: {traceback.format_exc()}"
        if inst.first_error_time is None:
            inst.first_error_time = now
        inst.last_error_time = now
        inst.backoff_until = now + backoff
        label = instance_label(inst.pipeline, inst.signature, inst.instance_id)
        self.node.notify(inst.notice(EXCEPTION, f"Exception in {label}", None, info=info))
        log.info("node %s: %s raised %r; backing off %gs", self.node.alias, label, exc, backoff)
        self._schedule(inst, backoff)

    # -- reporting ------------------------------------------------------------------------
    def active_plugins(self) -> list[dict[str, Any]]:
        """``ACTIVE_PLUGINS`` of the heartbeat."""
        now = self.node.time()
        return [inst.report(now) for pipe in self.pipelines.values() for inst in pipe.instances.values()]

    def active_plugins_json(self) -> tuple[list[dict[str, Any]], str]:
        """``ACTIVE_PLUGINS`` and its JSON as ``json.dumps`` writes it (most entries from cached pieces)."""
        now = self.node.time()
        entries, texts = [], []
        for pipe in self.pipelines.values():
            for inst in pipe.instances.values():
                entry, text = inst.report_json(now)
                entries.append(entry)
                texts.append(text)
        return entries, "[" + ", ".join(texts) + "]"

    def dct_stats(self) -> dict[str, Any]:
        """``DCT_STATS`` of the heartbeat."""
        now = self.node.time()
        stats: dict[str, Any] = {}
        for pipe in self.pipelines.values():
            if pipe.source is None:
                continue
            stats[pipe.name] = {"TYPE": pipe.config.get("TYPE"), "FLOW": "buff",
                                "IDLE": round(now - pipe.last_data, 1), "IDLE_ALERT": False,
                                "NR_DATA": pipe.data_count,
                                "CFG_DPS": num(pipe.config.get("CAP_RESOLUTION"),
                                               type(pipe.source).DEFAULT_CAP_RESOLUTION)}
        return stats

