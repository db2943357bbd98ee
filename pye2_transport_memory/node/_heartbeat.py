"""Heartbeat status of a simulated node: the full field set of node.md section 3.

Machine figures (CPU name, cores, memory, disk, load) are plausible and drawn
from the node's seeded generator, so two runs with one seed report the same
machine. Fields that never change are built once per start.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pye2.domain.codecs.code import compress_text
from pye2.domain.codecs.heartbeat import CLEAR_COUNTERS, HEARTBEAT_V2, encode_heartbeat
from pye2.errors import ConfigError
from pye2_transport_memory.node._notify import CORE_VERSION, SDK_VERSION
from pye2_transport_memory.node._payload import compact_time_text, time_text

__all__ = ["NODE_VERSION", "NO_ERROR_LOG", "NO_LOG", "NO_TIMERS", "Machine", "StatusBuilder", "encode_status"]

NODE_VERSION = CORE_VERSION
NO_LOG = "Device log available only upon request or in special situations"
NO_ERROR_LOG = "Error log available only upon request or in special situations"
NO_TIMERS = "Timers not available in summary"
_NO_GPU = "Pytorch or NVidia-SMI issue"
_CPUS = (" AMD EPYC", " Intel(R) Xeon(R) CPU @ 2.20GHz", " AMD Ryzen 7 5800X 8-Core Processor",
         " Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz")
_GPUS = ("NVIDIA GeForce RTX 3090", "NVIDIA RTX A4000", "NVIDIA GeForce RTX 4080")


@dataclass
class Machine:
    """The simulated box a node runs on (constant for the node's life)."""

    cpu: str
    cores: int
    memory_gb: float
    disk_gb: float
    ip: str
    base_load: float
    gpus: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_rng(cls, rng: random.Random, *, gpu: bool) -> Machine:
        """A deterministic machine for one node."""
        memory = rng.choice((15.5, 23.541, 31.2, 62.7))
        gpus: list[dict[str, Any]] = []
        if gpu:
            name = rng.choice(_GPUS)
            total = rng.choice((16.0, 24.0))
            gpus.append({"NAME": name, "TOTAL_MEM": total, "ALLOCATED_MEM": 0.5, "FREE_MEM": total - 0.5,
                         "MEM_UNIT": "GiB", "GPU_USED": 2.0, "GPU_TEMP": 41, "GPU_TEMP_MAX": 88,
                         "GPU_FAN_SPEED": 30, "GPU_FAN_SPEED_UNIT": "%", "PROCESSES": []})
        return cls(
            cpu=rng.choice(_CPUS),
            cores=rng.choice((2, 4, 8, 16)),
            memory_gb=memory,
            disk_gb=rng.choice((251.972, 468.3, 931.5)),
            ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            base_load=round(rng.uniform(5.0, 30.0), 1),
            gpus=gpus,
        )


def _comm_stats() -> dict[str, Any]:
    return {name: {"SVR": True, "RCV": True, "SND": True, "FAILS": 0, "ERROR": None}
            for name in ("DEFAULT", "COMMANDCONTROL", "HEARTBEATS", "NOTIFICATIONS")}


def _loops_timings() -> dict[str, Any]:
    return {"main_loop_avg_time": 0.1, "comm_loop_avg_time": 0.002}


# Written once: every status holds a fresh dict with these very contents.
_COMM_STATS_JSON = json.dumps(_comm_stats())
_LOOPS_TIMINGS_JSON = json.dumps(_loops_timings())


class StatusBuilder:
    """Builds the status dict of each heartbeat of one node (start to stop).

    Args:
        machine: the node's box.
        rng: the node's generator (load and memory drift).
        interval: heartbeat period (``EE_HB_TIME``).
        started: clock time the node started (``UPTIME``).
    """

    def __init__(self, machine: Machine, rng: random.Random, *, interval: float, started: float) -> None:
        self.machine = machine
        self.rng = rng
        self.interval = interval
        self.started = started
        #: the last status's fields whose JSON is known (field -> (the object it holds, its JSON)),
        #: for :func:`encode_status`: fresh objects of constant contents
        self.fragments: dict[str, tuple[Any, str]] = {}
        gpu_info = "\n\n" + "=" * 40 + " Basic load Info " + "=" * 40 + f"\n  Used CPU: '{machine.cpu}'\n"
        self._static: dict[str, Any] = {
            "EE_FORMATTER": "",
            "PY_VER": "3.11.7",
            "MACHINE_IP": machine.ip,
            "MACHINE_MEMORY": machine.memory_gb,
            "CPU_NR_CORES": machine.cores,
            "GPUS": [dict(g) for g in machine.gpus] if machine.gpus else _NO_GPU,
            "GPU_INFO": gpu_info,
            "DEFAULT_CUDA": "cuda:0" if machine.gpus else "cpu",
            "CPU": machine.cpu,
            "VERSION": f"{NODE_VERSION} | {SDK_VERSION} L-sim-x86_64-with-glibc2.36",
            "LOGGER_VERSION": SDK_VERSION,
            "TOTAL_DISK": machine.disk_gb,
            "STOP_LOG": [],
            "DID": False,
            "COMM_RELAY": "127.0.0.1",
            "R1FS_ID": None,
            "R1FS_ONLINE": False,
            "R1FS_RELAY": None,
            "TEMPERATURE_INFO": {"message": "No temperature sensors found.", "temperatures": {},
                                 "max_temp": 0, "max_temp_sensor": ""},
            "GIT_BRANCH": None,
            "CONDA_ENV": None,
            "SERVING_PIDS": [],
            "IS_ALERT_RAM": False,
        }

    def status(
        self,
        now: float,
        *,
        address: str,
        whitelist: Iterable[str],
        secured: bool,
        supervisor: bool,
        device_status: str,
        config_streams: list[Mapping[str, Any]],
        active_plugins: list[dict[str, Any]],
        counters: Mapping[str, int],
        dct_stats: Mapping[str, Any],
        kind: str = "SIMPLE",
        initiator_id: str | None = None,
        log_lines: list[str] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One heartbeat's status. ``kind``: ``SIMPLE``, ``FULL`` (with logs) or ``TIMERS``."""
        m, rng = self.machine, self.rng
        load = round(min(49.0, max(1.0, m.base_load + rng.uniform(-3.0, 3.0))), 1)
        process_mem = round(0.8 + 0.01 * len(active_plugins), 3)
        status: dict[str, Any] = {
            "CURRENT_TIME": time_text(now),
            "EE_ADDR": address,
            "EE_WHITELIST": list(whitelist),
            "EE_IS_SUPER": supervisor,
            "NR_INFERENCES": counters.get("inferences", 0),
            "NR_PAYLOADS": counters.get("payloads", 0),
            "NR_STREAMS_DATA": counters.get("streams_data", 0),
            "SECURED": secured,
            "EE_HB_TIME": self.interval,
            "DEVICE_STATUS": device_status,
            "AVAILABLE_MEMORY": round(m.memory_gb - process_mem - 1.0 - rng.uniform(0.0, 0.2), 3),
            "PROCESS_MEMORY": process_mem,
            "CPU_USED": load,
            "TIMESTAMP": compact_time_text(now),
            "UPTIME": now - self.started,
            "AVAILABLE_DISK": round(m.disk_gb * 0.3, 3),
            "ACTIVE_PLUGINS": active_plugins,
            "CONFIG_STREAMS": config_streams,
            "DCT_STATS": dict(dct_stats),
            "COMM_STATS": _comm_stats(),
            "IN_KB": round(counters.get("in_bytes", 0) / 1024, 2),
            "OUT_KB": round(counters.get("out_bytes", 0) / 1024, 2),
            "LOOPS_TIMINGS": _loops_timings(),
            "TIMERS": NO_TIMERS,
            "DEVICE_LOG": NO_LOG,
            "ERROR_LOG": NO_ERROR_LOG,
            "INITIATOR_ID": initiator_id,
        }
        status.update(self._static)
        self.fragments = {"COMM_STATS": (status["COMM_STATS"], _COMM_STATS_JSON),
                          "LOOPS_TIMINGS": (status["LOOPS_TIMINGS"], _LOOPS_TIMINGS_JSON)}
        if kind == "FULL":
            status["DEVICE_LOG"] = list(log_lines or [])
            status["ERROR_LOG"] = [line for line in (log_lines or []) if "error" in line.lower()]
        if kind in ("FULL", "TIMERS"):
            status["TIMERS"] = {"main_loop": {"count": int(status["UPTIME"] * 10), "mean": 0.1}}
        if tags:
            status.update(tags)
        return status


def encode_status(status: Mapping[str, Any], version: str, *,
                  active_plugins: tuple[list[dict[str, Any]], str] | None = None,
                  fragments: Mapping[str, tuple[Any, str]] | None = None) -> tuple[dict[str, Any], str | None]:
    """``encode_heartbeat(status, version=version)``, and for v2 the JSON text it compressed.

    The v2 body is built step by step as :mod:`pye2.domain.codecs.heartbeat`
    builds it (the simulator's tests hold them equal byte for byte), keeping
    the text: receivers sharing the node's cache then need not inflate it.
    ``fragments``: top-level field -> (the very object ``status`` holds there,
    its JSON as ``json.dumps`` writes it), written once by their owners
    (``Runtime.active_plugins_json``, ``AllowList.entries_json``) and spliced
    in, not encoded again; ``active_plugins`` is the ``ACTIVE_PLUGINS`` one.
    A fragment whose object is not the one in ``status`` is ignored.

    Raises:
        ConfigError: as ``encode_heartbeat``.
    """
    if version != HEARTBEAT_V2 or not isinstance(status, Mapping):
        return encode_heartbeat(status, version=version), None
    pieces = dict(fragments or {})
    if active_plugins is not None:
        pieces["ACTIVE_PLUGINS"] = active_plugins
    try:
        text = _status_json(status, pieces)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"heartbeat status is not JSON-serialisable: {exc}") from exc
    body: dict[str, Any] = {"ENCODED_DATA": compress_text(text)}
    for key in CLEAR_COUNTERS:
        if key in status:
            body[key] = status[key]
    body["HEARTBEAT_VERSION"] = HEARTBEAT_V2
    return body, text


# A placeholder no status holds: the status is encoded with it standing for each spliced field.
_PLACEHOLDER = "\x00pye2:fragment:5f0e\x00"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)


@functools.lru_cache(maxsize=64)
def _key_head(key: str) -> str:
    """What ``json.dumps`` writes before a top-level value: ``"KEY": ``."""
    return f"{json.dumps(key)}: "


def _status_json(status: Mapping[str, Any], fragments: Mapping[str, tuple[Any, str]]) -> str:
    """``json.dumps(dict(status))`` (default separators and ASCII escapes, as a node's json.dumps).

    Each usable fragment's field is written as a placeholder, then the text
    is cut at the placeholders and joined with the fragments' JSON. The cut
    is only taken when the placeholder occurs exactly once per fragment, each
    time right after its own key (a value holding the placeholder text makes
    one more occurrence): otherwise the status is written whole.
    """
    if type(status) is not dict or not fragments:
        return json.dumps(dict(status))
    used = [(key, value) for key, value in fragments.items()
            if type(key) is str and key in status and status[key] is value[0]]
    if not used:
        return json.dumps(status)
    order = {key: index for index, key in enumerate(status)}
    used.sort(key=lambda item: order[item[0]])
    for key, _ in used:
        status[key] = _PLACEHOLDER
    try:
        text = json.dumps(status)
    finally:
        for key, (original, _) in used:
            status[key] = original
    pieces = text.split(_PLACEHOLDER_JSON)
    if len(pieces) != len(used) + 1:  # cannot happen; kept exact all the same
        return json.dumps(status)
    out = [pieces[0]]
    for (key, (_, written)), piece, before in zip(used, pieces[1:], pieces[:-1], strict=True):
        if not before.endswith(_key_head(key)):
            return json.dumps(status)
        out.append(written)
        out.append(piece)
    return "".join(out)
