"""State of one running plugin instance on a simulated node."""

from __future__ import annotations

import json
import math
from collections import deque
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from pye2_transport_memory.node._notify import Notice
from pye2_transport_memory.node._payload import DEFAULT_PLUGIN_VERSION, time_text
from pye2_transport_memory.node.plugin_base import InputItem, PluginContext, SimPlugin

if TYPE_CHECKING:
    from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["InstanceRuntime", "effective_config", "fresh_input", "json_copy", "module_name", "num"]

_ONE_SHOT_KEYS = ("INSTANCE_COMMAND",)
_ABSENT: Any = object()


_MARKS = ("\x00pye2:exec\x00", "\x00pye2:process\x00", "\x00pye2:exec-iteration\x00")
_CHANGING = ("EXEC_TIMESTAMP", "CURRENT_PROCESS_ITERATION", "CURRENT_EXEC_ITERATION")


def _json_pieces(template: dict[str, Any]) -> tuple[str, ...] | None:
    """``json.dumps`` of a report entry split around its changing fields (None if it cannot be)."""
    marked = {**template, **dict(zip(_CHANGING, _MARKS))}
    text = json.dumps(marked)
    pieces: list[str] = []
    for mark in _MARKS:
        before, found, text = text.partition(json.dumps(mark))
        if not found:
            return None
        pieces.append(before)
    pieces.append(text)
    # Checked once against the real thing: an entry whose strings held a mark would not split right.
    sample = {**template, "EXEC_TIMESTAMP": "2000-01-01 00:00:00.000000", "CURRENT_PROCESS_ITERATION": 7,
              "CURRENT_EXEC_ITERATION": 7}
    rebuilt = f"{pieces[0]}{encode_basestring_ascii(sample['EXEC_TIMESTAMP'])}{pieces[1]}7{pieces[2]}7{pieces[3]}"
    return tuple(pieces) if rebuilt == json.dumps(sample) else None


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
        # (settings it derives from, entry template, frequency, its JSON around the changing
        # fields or None) of a reported-only instance
        self._report_for: tuple[tuple[Any, ...], dict[str, Any], float, tuple[str, ...] | None] | None = None

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
        if self.plugin is None:
            return self._reported_only(now)
        elapsed = max(now - self.init_time, 1e-9)
        first_error, last_error = self.first_error_time, self.last_error_time
        exec_time, last_payload = self.exec_time, self.last_payload_time
        return {
            "STREAM_ID": self.pipeline,
            "SIGNATURE": self.signature,
            "INSTANCE_ID": self.instance_id,
            "PROCESS_DELAY": self.config.get("PROCESS_DELAY", 0),
            "FREQUENCY": round(self.exec_iter / elapsed, 1),
            "INIT_TIMESTAMP": self.init_text,
            "EXEC_TIMESTAMP": time_text(exec_time) if exec_time is not None else None,
            "LAST_CONFIG_TIMESTAMP": self.config_text,
            "FIRST_ERROR_TIME": time_text(first_error) if first_error is not None else None,
            "LAST_ERROR_TIME": time_text(last_error) if last_error is not None else None,
            "OUTSIDE_WORKING_HOURS": False,
            "CURRENT_PROCESS_ITERATION": self.process_iter,
            "CURRENT_EXEC_ITERATION": self.exec_iter,
            "LAST_PAYLOAD_TIME": time_text(last_payload) if last_payload is not None else None,
            "TOTAL_PAYLOAD_COUNT": self.payload_count,
            "INFO": None,
        }

    def report_json(self, now: float) -> tuple[dict[str, Any], str]:
        """``report(now)`` and its JSON as ``json.dumps`` writes it (built from cached pieces when it can)."""
        entry = self.report(now)
        known = self._report_for
        if self.plugin is None and known is not None and known[3] is not None:
            head, between, middle, tail = known[3]
            iterations = entry["CURRENT_PROCESS_ITERATION"]
            return entry, (f"{head}{encode_basestring_ascii(entry['EXEC_TIMESTAMP'])}{between}{iterations}"
                           f"{middle}{iterations}{tail}")
        return entry, json.dumps(entry)

    def _reported_only(self, now: float) -> dict[str, Any]:
        """The entry of an admin instance the simulator only reports: what a real one would have done."""
        # Every heartbeat reports it and only the time and iteration count change: the rest is
        # kept while the settings it derives from are the same objects.
        config = self.config
        raw_delay, raw_hz = config.get("PROCESS_DELAY", _ABSENT), config.get("PLUGIN_LOOP_RESOLUTION")
        known = self._report_for
        if known is not None:
            was = known[0]
            if was[0] is not raw_delay or was[1] is not raw_hz or was[2] is not self.config_text \
                    or was[3] is not self.first_error_time or was[4] is not self.last_error_time:
                known = None
        if known is None:
            key = (raw_delay, raw_hz, self.config_text, self.first_error_time, self.last_error_time)
            delay, hz = num(None if raw_delay is _ABSENT else raw_delay, 0.0), num(raw_hz, 20.0)
            freq = 1.0 / max(max(0.0, delay), 1.0 / (hz if hz > 0 else 20.0))
            first_error, last_error = self.first_error_time, self.last_error_time
            template = {
                "STREAM_ID": self.pipeline,
                "SIGNATURE": self.signature,
                "INSTANCE_ID": self.instance_id,
                "PROCESS_DELAY": 0 if raw_delay is _ABSENT else raw_delay,
                "FREQUENCY": round(freq, 1),
                "INIT_TIMESTAMP": self.init_text,
                "EXEC_TIMESTAMP": None,
                "LAST_CONFIG_TIMESTAMP": self.config_text,
                "FIRST_ERROR_TIME": time_text(first_error) if first_error is not None else None,
                "LAST_ERROR_TIME": time_text(last_error) if last_error is not None else None,
                "OUTSIDE_WORKING_HOURS": False,
                "CURRENT_PROCESS_ITERATION": 0,
                "CURRENT_EXEC_ITERATION": 0,
                "LAST_PAYLOAD_TIME": time_text(self.init_time),
                "TOTAL_PAYLOAD_COUNT": 1,
                "INFO": None,
            }
            known = self._report_for = (key, template, freq, _json_pieces(template))
        iterations = int(max(now - self.init_time, 1e-9) * known[2])
        entry = known[1].copy()
        entry["EXEC_TIMESTAMP"] = time_text(now)
        entry["CURRENT_PROCESS_ITERATION"] = entry["CURRENT_EXEC_ITERATION"] = iterations
        return entry
