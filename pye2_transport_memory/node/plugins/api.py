"""The API behind the ``plugin`` object that custom code sees on a simulated node.

A real node hands custom code the plugin instance itself; here it is a
:class:`PluginApi` built per instance (it survives reconfiguration, so the
caches do too) that exposes the same surface the README tutorials and PyE2
examples use (node.md section 7 and 8). Custom code never holds it: it gets
:func:`~.facade.plugin_facade` of it, which exposes exactly
:data:`CUSTOM_CODE_METHODS`, :data:`CUSTOM_CODE_VALUES` and
:data:`CUSTOM_CODE_MODULES` (the node, its identity and its transport stay
out of reach):

* ``cfg_<key>``: read-only view of every key of the instance config
  (lower-cased; a key never configured raises ``AttributeError``);
* state: ``int_cache`` (-> 0), ``obj_cache`` (-> None), ``str_cache``,
  ``float_cache``, ``state``;
* helpers: ``np`` (numpy whose ``np.random`` is seeded from the node),
  ``datetime`` (a class whose ``now()`` follows the node's clock),
  ``timedelta``, ``time()``, ``sleep()`` (never blocks the clock), ``json``,
  ``re``, ``deque``, ``defaultdict``, ``deepcopy``, ``uuid()``, ``P()``;
* identity: ``node_addr``, ``ee_id``;
* ``dataapi_*``, ``deapi_get_wokers`` and ``cmdapi_*`` (commands go through
  :meth:`NodeApi.send_command`, so the node sends them after ``process``).

``deapi_get_wokers`` returns node **aliases** (``EE_ID``) in both wire
profiles: the tutorial's initiator matches ``payload['EE_ID']`` against the
returned workers, so only aliases let it collect results; the cmdapi
helpers accept an alias or an address as target.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import re
from collections import defaultdict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pye2.errors import ConfigError, ExtraMissing

if TYPE_CHECKING:
    from pye2_transport_memory.node.plugin_base import InputItem, PluginContext

__all__ = [
    "CUSTOM_CODE_METHODS",
    "CUSTOM_CODE_MODULES",
    "CUSTOM_CODE_VALUES",
    "ONLINE_WINDOW",
    "PluginApi",
    "clock_datetime",
]

logger = logging.getLogger(__name__)

#: a peer heard within this many seconds counts as online (the SDKs' rule)
ONLINE_WINDOW = 60.0

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

#: methods of :class:`PluginApi` custom code may call through ``plugin``
CUSTOM_CODE_METHODS = (
    "get_stream_id", "get_signature", "get_instance_id", "time", "sleep", "uuid", "P", "now_str",
    "dataapi_inputs", "dataapi_struct_datas", "dataapi_struct_data", "dataapi_images", "dataapi_image",
    "dataapi_inputs_metadata", "deapi_get_wokers", "deapi_get_workers",
    "cmdapi_register_command", "cmdapi_start_pipeline", "cmdapi_start_simple_custom_pipeline",
    "cmdapi_archive_pipeline", "cmdapi_stop_pipeline", "cmdapi_update_instance_config",
    "cmdapi_send_instance_command",
)
#: values custom code may read through ``plugin`` (besides ``cfg_*``)
CUSTOM_CODE_VALUES = (
    "int_cache", "obj_cache", "str_cache", "float_cache", "state", "datetime", "timedelta", "timezone",
    "deque", "defaultdict", "node_addr", "e2_addr", "ee_id", "e2_id",
)
#: helpers custom code gets as restricted views (no submodules, file I/O or process-wide settings)
CUSTOM_CODE_MODULES = ("np", "json", "re", "deepcopy")


def clock_datetime(clock: Callable[[], float]) -> type[_dt.datetime]:
    """A ``datetime.datetime`` subclass whose ``now``/``utcnow``/``today`` read ``clock``.

    Custom code measures elapsed time with ``plugin.datetime.now()``; on a
    virtual clock that must follow simulated time, not the wall clock.
    """

    class datetime(_dt.datetime):
        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> datetime:
            return cls.fromtimestamp(clock(), tz)

        @classmethod
        def utcnow(cls) -> datetime:
            return cls.fromtimestamp(clock(), _dt.timezone.utc).replace(tzinfo=None)

        @classmethod
        def today(cls) -> datetime:
            return cls.now()

    return datetime


class _SeededRandom:
    """``np.random`` stand-in: the legacy functions come from a seeded RandomState."""

    def __init__(self, np_module: Any, seed: int) -> None:
        self._module = np_module.random
        self._state = np_module.random.RandomState(seed)

    def __getattr__(self, name: str) -> Any:
        # Seeded first so randint/rand/choice are reproducible; the rest
        # (default_rng, Generator, ...) comes from numpy itself.
        try:
            return getattr(self._state, name)
        except AttributeError:
            return getattr(self._module, name)


class _SeededNumpy:
    """numpy as custom code sees it: the real module, with a per-instance seeded ``random``."""

    def __init__(self, np_module: Any, seed: int) -> None:
        self._np = np_module
        self.random = _SeededRandom(np_module, seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._np, name)


def _target(dest: str | None, node_address: str | None) -> str | None:
    if dest is not None and node_address is not None and dest != node_address:
        raise ConfigError(f"conflicting targets dest={dest!r} and node_address={node_address!r}")
    return dest if dest is not None else node_address


class PluginApi:
    """What custom code reaches as ``plugin``. Built once per plugin instance."""

    _ctx: PluginContext
    _inputs: list[InputItem]
    _np: Any

    def __init__(self, ctx: PluginContext) -> None:
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_inputs", [])
        object.__setattr__(self, "_np", None)
        self.int_cache: defaultdict[str, int] = defaultdict(int)
        self.obj_cache: defaultdict[str, Any] = defaultdict(lambda: None)
        self.str_cache: defaultdict[str, str] = defaultdict(str)
        self.float_cache: defaultdict[str, float] = defaultdict(float)
        self.state: dict[str, Any] = {}
        self.datetime = clock_datetime(ctx.node.time)
        self.timedelta = _dt.timedelta
        self.timezone = _dt.timezone
        self.json = json
        self.re = re
        self.deque = deque
        self.defaultdict = defaultdict
        self.deepcopy = copy.deepcopy
        self._seed = ctx.node.rng.getrandbits(32)

    # -- config --------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally: cfg_* lookups land here.
        if name.startswith("cfg_"):
            wanted = name[4:].upper()
            config = self._ctx.config
            for key, value in config.items():
                if key.upper() == wanted:
                    return value
        raise AttributeError(f"'plugin' has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("cfg_"):
            raise AttributeError(f"{name} is read-only (it mirrors the instance config)")
        object.__setattr__(self, name, value)

    def set_inputs(self, inputs: list[InputItem]) -> None:
        """The inputs of the current iteration (called by the plugin before running code)."""
        object.__setattr__(self, "_inputs", list(inputs))

    # -- helpers -------------------------------------------------------------
    @property
    def np(self) -> Any:
        """numpy, with ``np.random`` seeded from the node's rng (reproducible runs)."""
        if self._np is None:
            try:
                import numpy
            except ImportError as exc:  # pragma: no cover - numpy is in the images extra
                raise ExtraMissing("plugin.np needs numpy: pip install 'pye2[images]'") from exc
            object.__setattr__(self, "_np", _SeededNumpy(numpy, self._seed))
        return self._np

    @property
    def node_addr(self) -> str:
        """The node's own address."""
        return self._ctx.node.address

    @property
    def e2_addr(self) -> str:
        """Legacy name of :attr:`node_addr`."""
        return self._ctx.node.address

    @property
    def ee_id(self) -> str:
        """The node's alias (``EE_ID``)."""
        return self._ctx.node.alias

    @property
    def e2_id(self) -> str:
        """Legacy name of :attr:`ee_id`."""
        return self._ctx.node.alias

    def get_stream_id(self) -> str:
        """Name of the pipeline this instance runs in."""
        return self._ctx.pipeline

    def get_signature(self) -> str:
        """This instance's plugin signature."""
        return self._ctx.signature

    def get_instance_id(self) -> str:
        """This instance's id."""
        return self._ctx.instance_id

    def time(self) -> float:
        """The node's clock (virtual in simulations), seconds since the epoch."""
        return self._ctx.node.time()

    def sleep(self, seconds: float) -> None:
        """Cooperative pause; never blocks the (virtual) clock, so it returns at once."""

    def uuid(self, size: int = 13) -> str:
        """A random hex id of ``size`` characters from the node's seeded rng."""
        if not isinstance(size, int) or size <= 0:
            raise ConfigError(f"uuid size must be a positive int, not {size!r}")
        return "".join(f"{self._ctx.node.rng.getrandbits(4):x}" for _ in range(size))

    def P(self, msg: Any, color: str | None = None, **_: Any) -> None:
        """A line in the node log, prefixed with the instance path; nothing is published."""
        ctx = self._ctx
        self._ctx.node.log(f"[{ctx.pipeline}:{ctx.signature}:{ctx.instance_id}] {msg}")

    def now_str(self) -> str:
        """The node's clock as ``YYYY-mm-dd HH:MM:SS.ffffff``."""
        return self.datetime.now().strftime(_TIME_FORMAT)

    # -- data API ------------------------------------------------------------
    def dataapi_inputs(self) -> list[InputItem]:
        """All inputs of the current iteration."""
        return list(self._inputs)

    def dataapi_struct_datas(self) -> list[Any]:
        """``STRUCT_DATA`` of every structured input of this iteration."""
        return [item.struct_data for item in self._inputs if item.struct_data is not None]

    def dataapi_struct_data(self) -> Any:
        """``STRUCT_DATA`` of the first input, or None."""
        datas = self.dataapi_struct_datas()
        return datas[0] if datas else None

    def dataapi_images(self) -> list[Any]:
        """Every image input of this iteration."""
        return [item.img for item in self._inputs if item.img is not None]

    def dataapi_image(self) -> Any:
        """The first image input, or None."""
        images = self.dataapi_images()
        return images[0] if images else None

    def dataapi_inputs_metadata(self) -> dict[str, Any]:
        """Metadata of the first input (``frame_current``, ``fps``...), or {}."""
        return dict(self._inputs[0].metadata) if self._inputs else {}

    # -- network (deAPI) -----------------------------------------------------
    def deapi_get_wokers(self, n_workers: int) -> list[str]:  # the original API's spelling
        """Up to ``n_workers`` online nodes, as aliases (2024 behaviour, see module doc).

        A node qualifies when heard within 60 s and its last heartbeat says
        ``DEVICE_STATUS == "ONLINE"`` (or does not say). Other nodes come
        first (sorted by alias), the node itself last, so work is spread.
        Fewer than ``n_workers`` are returned when fewer qualify.
        """
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 0:
            raise ConfigError(f"n_workers must be a non-negative int, not {n_workers!r}")
        node = self._ctx.node
        now = node.time()
        others: dict[str, str] = {}
        for peer in node.peers():
            alias, address = peer.get("alias"), peer.get("address")
            last_seen, heartbeat = peer.get("last_seen"), peer.get("heartbeat") or {}
            if not alias or not isinstance(last_seen, (int, float)) or now - last_seen > ONLINE_WINDOW:
                continue
            if str(heartbeat.get("DEVICE_STATUS", "ONLINE")).upper() != "ONLINE":
                continue
            if address == node.address or alias == node.alias:
                continue
            others[str(alias)] = str(address)
        ranked = sorted(others) + [node.alias]
        chosen = ranked[:n_workers]
        if len(chosen) < n_workers:
            self.P(f"deapi_get_wokers: only {len(chosen)}/{n_workers} workers online")
        return chosen

    deapi_get_workers = deapi_get_wokers

    # -- commands (cmdAPI) ---------------------------------------------------
    def _send(self, target: str | None, action: str, payload: Any) -> None:
        if isinstance(payload, dict) and "TIME" not in payload:
            payload = {**payload, "TIME": self.now_str()}
        self._ctx.node.send_command(target or self._ctx.node.address, action, payload)

    def cmdapi_register_command(self, node_address: str | None, command_type: str, command_content: Any) -> None:
        """Send any command to a node (default: this node)."""
        self._send(node_address, str(command_type), command_content)

    def cmdapi_start_pipeline(self, config: dict[str, Any], node_address: str | None = None,
                              dest: str | None = None) -> None:
        """Send ``UPDATE_CONFIG`` with a full pipeline config."""
        if not isinstance(config, dict) or "NAME" not in config or "TYPE" not in config:
            raise ConfigError("a pipeline config needs NAME and TYPE")
        self._send(_target(dest, node_address), "UPDATE_CONFIG", dict(config))

    def cmdapi_start_simple_custom_pipeline(
        self,
        base64code: str | None = None,
        dest: str | None = None,
        node_address: str | None = None,
        name: str | None = None,
        instance_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Start a ``Void`` pipeline running ``CUSTOM_EXEC_01`` (instance ``SIMPLE_C_EXEC``).

        ``dest`` (2024) and ``node_address`` (today) both name the target
        (alias or address; default this node). Extra keywords become
        instance parameters. Returns the pipeline name (8 hex characters
        from the node's rng unless given).
        """
        if not isinstance(base64code, str) or not base64code:
            raise ConfigError("base64code must be a non-empty base64 string")
        if instance_config is not None and not isinstance(instance_config, dict):
            raise ConfigError("instance_config must be a dict")
        name = name or self.uuid(8)
        instance = {"INSTANCE_ID": "SIMPLE_C_EXEC", "CODE": base64code, **(instance_config or {}), **kwargs}
        pipeline = {
            "NAME": name,
            "TYPE": "Void",
            "LIVE_FEED": False,
            "PLUGINS": [{"SIGNATURE": "CUSTOM_EXEC_01", "INSTANCES": [instance]}],
        }
        self._send(_target(dest, node_address), "UPDATE_CONFIG", pipeline)
        return name

    def cmdapi_archive_pipeline(self, dest: str | None = None, node_address: str | None = None,
                                name: str | None = None) -> None:
        """Send ``ARCHIVE_CONFIG`` (payload: the bare name; default this pipeline on this node)."""
        self._send(_target(dest, node_address), "ARCHIVE_CONFIG", name or self._ctx.pipeline)

    def cmdapi_stop_pipeline(self, dest: str | None = None, node_address: str | None = None,
                             name: str | None = None) -> None:
        """Send ``DELETE_CONFIG`` (default this pipeline on this node)."""
        self._send(_target(dest, node_address), "DELETE_CONFIG", name or self._ctx.pipeline)

    def cmdapi_update_instance_config(self, pipeline: str, signature: str, instance_id: str,
                                      instance_config: dict[str, Any], node_address: str | None = None,
                                      dest: str | None = None) -> None:
        """Send ``UPDATE_PIPELINE_INSTANCE`` with a config delta."""
        if not isinstance(instance_config, dict):
            raise ConfigError("instance_config must be a dict")
        payload = {"NAME": pipeline, "SIGNATURE": signature, "INSTANCE_ID": instance_id,
                   "INSTANCE_CONFIG": dict(instance_config)}
        self._send(_target(dest, node_address), "UPDATE_PIPELINE_INSTANCE", payload)

    def cmdapi_send_instance_command(self, pipeline: str, signature: str, instance_id: str,
                                     instance_command: Any, node_address: str | None = None,
                                     dest: str | None = None) -> None:
        """Send an ``INSTANCE_COMMAND`` to one instance (as a one-key config update)."""
        self.cmdapi_update_instance_config(pipeline, signature, instance_id,
                                           {"INSTANCE_COMMAND": instance_command},
                                           node_address=node_address, dest=dest)
