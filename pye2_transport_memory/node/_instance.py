"""State of one running plugin instance on a simulated node."""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from pye2_transport_memory.node._notify import Notice
from pye2_transport_memory.node._payload import DEFAULT_PLUGIN_VERSION, time_text
from pye2_transport_memory.node.plugin_base import InputItem, PluginContext, SimPlugin

if TYPE_CHECKING:
    from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["InstanceRuntime", "effective_config", "fresh_input", "json_copy", "module_name", "num"]

_ONE_SHOT_KEYS = ("INSTANCE_COMMAND",)


def num(value: Any, default: float) -> float:
    """``value`` as a finite float, else ``default`` (configs come from the wire)."""
    if isinstance(value, bool):
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts and lists; other values are shared)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def fresh_input(item: InputItem) -> InputItem:
    """The input a plugin may mutate: received messages are shared between nodes, so copy them."""
    if not isinstance(item.struct_data, (dict, list)):
        return item
    return InputItem(item.type, img=item.img, struct_data=json_copy(item.struct_data),
                     metadata=dict(item.metadata), init_data=item.init_data)


def effective_config(cls: type[SimPlugin] | None, stored: dict[str, Any]) -> dict[str, Any]:
    """Base defaults, the plugin's defaults, then what the client sent (one-shot keys excluded)."""
    merged = dict(SimPlugin.DEFAULTS)
    if cls is not None:
        merged.update(cls.DEFAULTS)
    merged.update({k: v for k, v in stored.items() if k not in _ONE_SHOT_KEYS})
    return merged


def module_name(cls: type[SimPlugin] | None, signature: str) -> str:
    """``MODULE`` of plugin notifications (a real node names the plugin class, ``...Plugin``)."""
    if cls is None:
        return "".join(part.capitalize() for part in signature.split("_")) + "Plugin"
    name = str(getattr(cls, "MODULE", "") or cls.__name__)
    return name if name.endswith("Plugin") else name + "Plugin"


class InstanceRuntime:
    """Counters, queue and timer of one instance (its plugin object lives in ``plugin``)."""

    def __init__(self, pipeline: str, signature: str, instance_id: str, stored: dict[str, Any],
                 cls: type[SimPlugin] | None, node: SimulatedNode, pipeline_config: dict[str, Any]) -> None:
        now = node.time()
        self.pipeline = pipeline
        self.signature = signature
        self.instance_id = instance_id
        self.cls = cls
        self.stored = stored
        self.config = effective_config(cls, stored)
        self.ctx = PluginContext(node, pipeline, signature, instance_id, pipeline_config, self.config)
        self.plugin: SimPlugin | None = None
        self.version = str(getattr(cls, "VERSION", DEFAULT_PLUGIN_VERSION))
        self.module = module_name(cls, signature)
        self.queue: deque[InputItem] = deque(maxlen=self._queue_size())
        self.commands: deque[Any] = deque()
        self.timer: Any = None
        self.alive = True
        self.config_notice = False
        self.init_time = now
        self.init_text = time_text(now)
        self.config_time = now
        self.config_text = self.init_text
        self.last_run = -math.inf
        self.exec_time: float | None = None
        self.backoff_until = -math.inf
        self.first_error_time: float | None = None
        self.last_error_time: float | None = None
        self.process_iter = 0
        self.exec_iter = 0
        self.payload_count = 0
        self.last_payload_time: float | None = None

    def _queue_size(self) -> int:
        return max(1, int(num(self.config.get("MAX_INPUTS_QUEUE_SIZE"), 1)))

    # -- derived settings --------------------------------------------------------------
    @property
    def process_delay(self) -> float:
        """``PROCESS_DELAY`` (seconds between two runs), 0 when absent or invalid."""
        return max(0.0, num(self.config.get("PROCESS_DELAY"), 0.0))

    @property
    def loop_resolution(self) -> float:
        """``PLUGIN_LOOP_RESOLUTION`` in Hz (20 by default)."""
        hz = num(self.config.get("PLUGIN_LOOP_RESOLUTION"), 20.0)
        return hz if hz > 0 else 20.0

    @property
    def tick(self) -> float:
        """One plugin loop iteration."""
        return 1.0 / self.loop_resolution

    @property
    def period(self) -> float:
        """Seconds between two runs: ``PROCESS_DELAY``, at least one loop tick."""
        return max(self.process_delay, self.tick)

    @property
    def allow_empty(self) -> bool:
        """Runs without inputs (``ALLOW_EMPTY_INPUTS``)."""
        return bool(self.config.get("ALLOW_EMPTY_INPUTS"))

    @property
    def paused(self) -> bool:
        """``FORCED_PAUSE`` or ``DISABLED``."""
        return bool(self.config.get("FORCED_PAUSE")) or bool(self.config.get("DISABLED"))

    # -- changes ------------------------------------------------------------------------
    def apply(self, stored: dict[str, Any], now: float) -> None:
        """New stored config: recompute the effective one and tell the plugin (caches survive)."""
        self.stored = stored
        self.config = effective_config(self.cls, stored)
        self.config_time = now
        self.config_text = time_text(now)
        if self.queue.maxlen != self._queue_size():
            self.queue = deque(self.queue, maxlen=self._queue_size())
        if self.plugin is not None:
            self.plugin.on_config(self.config)
        self.ctx.config = self.config

    def cancel_timer(self) -> None:
        """Cancel the pending run, if any."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def notice(self, ntype: str, text: str, code: int | None, **kw: Any) -> Notice:
        """A plugin-level notification about this instance."""
        pcfg = self.ctx.pipeline_config
        kw.setdefault("initiator_id", pcfg.get("INITIATOR_ID"))
        kw.setdefault("session_id", pcfg.get("SESSION_ID"))
        return Notice(self.module, ntype, text, code, stream=self.pipeline, signature=self.signature,
                      instance_id=self.instance_id, version=self.version, **kw)

    # -- reporting -------------------------------------------------------------------------
    def report(self, now: float) -> dict[str, Any]:
        """One ``ACTIVE_PLUGINS`` entry."""
        elapsed = max(now - self.init_time, 1e-9)
        last_payload: float | None
        if self.plugin is None:  # reported-only admin instance: what a real one would have done
            freq = 1.0 / self.period
            iterations = int(elapsed * freq)
            exec_time: float | None = now
            payloads, last_payload = 1, self.init_time
        else:
            freq = self.exec_iter / elapsed
            iterations = self.process_iter
            exec_time, payloads, last_payload = self.exec_time, self.payload_count, self.last_payload_time
        return {
            "STREAM_ID": self.pipeline,
            "SIGNATURE": self.signature,
            "INSTANCE_ID": self.instance_id,
            "PROCESS_DELAY": self.config.get("PROCESS_DELAY", 0),
            "FREQUENCY": round(freq, 1),
            "INIT_TIMESTAMP": self.init_text,
            "EXEC_TIMESTAMP": time_text(exec_time) if exec_time is not None else None,
            "LAST_CONFIG_TIMESTAMP": self.config_text,
            "FIRST_ERROR_TIME": time_text(self.first_error_time) if self.first_error_time is not None else None,
            "LAST_ERROR_TIME": time_text(self.last_error_time) if self.last_error_time is not None else None,
            "OUTSIDE_WORKING_HOURS": False,
            "CURRENT_PROCESS_ITERATION": iterations,
            "CURRENT_EXEC_ITERATION": iterations if self.plugin is None else self.exec_iter,
            "LAST_PAYLOAD_TIME": time_text(last_payload) if last_payload is not None else None,
            "TOTAL_PAYLOAD_COUNT": payloads,
            "INFO": None,
        }
