"""The contract between the simulated node and its plugins and data sources.

A simulated plugin is a class with a ``SIGNATURE`` and ``DEFAULTS``; the node
makes one object per running instance, feeds it the inputs its pipeline's data
source produced, and turns what ``process`` returns into signed payloads.
Users add their own with :meth:`PluginRegistry.register`.

Everything a plugin may touch on its node goes through :class:`NodeApi`
(implemented by the node), so plugins never reach into node internals and the
node's clock is the only time source (``ctx.node.time()``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

__all__ = [
    "DataSourceRegistry",
    "InputItem",
    "NodeApi",
    "PluginContext",
    "PluginRegistry",
    "SimDataSource",
    "SimPlugin",
]


@dataclass(slots=True)
class InputItem:
    """One input of a pipeline iteration, as a real node's DCT delivers it.

    ``TYPE`` is ``"IMG"`` (``img`` holds an H x W x 3 uint8 numpy array) or
    ``"STRUCT_DATA"`` (``struct_data`` holds a dict, e.g. a received payload).
    ``metadata`` becomes the ``_C_*`` fields of payloads.
    """

    type: str
    img: Any = None
    struct_data: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    init_data: Any = None


class NodeApi(Protocol):
    """What a plugin or data source may ask of its node."""

    @property
    def alias(self) -> str:
        """The node's ``EE_ID``."""
        ...

    @property
    def address(self) -> str:
        """The node's own address (profile prefix)."""
        ...

    @property
    def rng(self) -> random.Random:
        """The node's seeded random generator (determinism)."""
        ...

    def time(self) -> float:
        """The network's clock (virtual or wall), seconds since the epoch."""
        ...

    def log(self, message: str) -> None:
        """A line in the node's log (``plugin.P``); nothing is published."""
        ...

    def peers(self) -> list[Mapping[str, Any]]:
        """What the node's network monitor knows of other nodes (and itself).

        One dict per node: ``address``, ``alias``, ``last_seen`` (clock time),
        ``heartbeat`` (the last decoded heartbeat view).
        """
        ...

    def send_command(self, target: str, action: str, payload: Any) -> None:
        """Queue a signed command to ``target`` (alias or address; itself allowed).

        Sent after the current ``process`` call, like a real node.
        """
        ...

    def subscribe(self, address: str, handler: Callable[[str, bytes], None]) -> Callable[[], None]:
        """Subscribe on the node's transport; returns an unsubscribe function."""
        ...

    def publish_payload(self, body: Mapping[str, Any], *, pipeline: str, signature: str, instance_id: str) -> None:
        """Publish an extra payload outside the ``process`` return path."""
        ...


@dataclass(slots=True)
class PluginContext:
    """Per-instance context handed to a plugin's constructor."""

    node: NodeApi
    pipeline: str
    signature: str
    instance_id: str
    pipeline_config: dict[str, Any]
    config: dict[str, Any]
    """The instance's effective config: ``DEFAULTS`` overlaid by what the client sent."""


class SimPlugin:
    """Base class of simulated plugins.

    Subclasses set ``SIGNATURE`` (upper case) and ``DEFAULTS`` and override
    ``process``. The node calls ``process`` every ``PROCESS_DELAY`` seconds
    (at most ``PLUGIN_LOOP_RESOLUTION`` Hz), only when inputs arrived unless
    ``ALLOW_EMPTY_INPUTS`` is true. ``process`` returns one payload body (a
    dict, keys upper-cased by the node), a list of them, or None.
    An exception in ``process`` makes the node publish an ``EXCEPTION``
    notification and back off, as a real node does. Inputs are the plugin's
    own copies (received messages are shared between nodes); a plugin that
    never looks at its inputs sets ``COPY_INPUTS = False`` to skip copying.
    """

    SIGNATURE: ClassVar[str] = ""
    COPY_INPUTS: ClassVar[bool] = True
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "PROCESS_DELAY": 0,
        "ALLOW_EMPTY_INPUTS": False,
        "MAX_INPUTS_QUEUE_SIZE": 1,
        "PLUGIN_LOOP_RESOLUTION": 20,
    }

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    @property
    def config(self) -> dict[str, Any]:
        """The current effective instance config."""
        return self.ctx.config

    def on_config(self, config: dict[str, Any]) -> None:
        """The instance was reconfigured in place (caches survive). ``config`` is the new effective config."""
        self.ctx.config = config

    def on_command(self, command: Any) -> Any:
        """A one-shot ``INSTANCE_COMMAND``; return value is informative only."""
        return None

    def process(self, inputs: list[InputItem]) -> dict[str, Any] | list[dict[str, Any]] | None:
        """One iteration. Override."""
        raise NotImplementedError

    def stop(self) -> None:
        """The instance is being removed."""


class SimDataSource:
    """Base class of simulated data sources (a real node's DCT).

    ``TYPES`` lists the pipeline ``TYPE`` values it serves (case-insensitive).
    The node calls ``start`` once, ``poll`` every ``1 / CAP_RESOLUTION``
    seconds and hands what it returns to every instance of the pipeline;
    ``stop`` when the pipeline goes. Structured sources that receive messages
    push them into their own buffer and return them from ``poll``.
    """

    TYPES: ClassVar[tuple[str, ...]] = ()
    #: default capture resolution in Hz when the pipeline has no CAP_RESOLUTION
    DEFAULT_CAP_RESOLUTION: ClassVar[float] = 1.0

    def __init__(self, node: NodeApi, pipeline: str, config: dict[str, Any]) -> None:
        self.node = node
        self.pipeline = pipeline
        self.config = config

    def start(self) -> None:
        """Begin acquiring (subscribe, open the synthetic video ...)."""

    def poll(self) -> list[InputItem]:
        """Inputs acquired since the last poll (may be empty)."""
        return []

    def on_pipeline_command(self, command: Any) -> None:
        """A ``PIPELINE_COMMAND`` forwarded to the DCT."""

    def stop(self) -> None:
        """Release everything ``start`` acquired."""


class PluginRegistry:
    """Signature -> plugin class (upper-case keys). One per simulated network."""

    def __init__(self, plugins: Iterable[type[SimPlugin]] = ()) -> None:
        self._plugins: dict[str, type[SimPlugin]] = {}
        for cls in plugins:
            self.register(cls)

    def register(self, cls: type[SimPlugin]) -> type[SimPlugin]:
        """Add (or replace) a plugin class; usable as a decorator."""
        if not cls.SIGNATURE:
            raise ValueError(f"{cls.__name__} has no SIGNATURE")
        self._plugins[cls.SIGNATURE.upper()] = cls
        return cls

    def get(self, signature: str) -> type[SimPlugin] | None:
        return self._plugins.get(signature.upper())

    def signatures(self) -> list[str]:
        return sorted(self._plugins)


class DataSourceRegistry:
    """Pipeline ``TYPE`` -> data source class (case-insensitive)."""

    def __init__(self, sources: Iterable[type[SimDataSource]] = ()) -> None:
        self._sources: dict[str, type[SimDataSource]] = {}
        for cls in sources:
            self.register(cls)

    def register(self, cls: type[SimDataSource]) -> type[SimDataSource]:
        for name in cls.TYPES:
            self._sources[name.lower()] = cls
        return cls

    def get(self, type_name: str) -> type[SimDataSource] | None:
        return self._sources.get(type_name.lower())

    def types(self) -> list[str]:
        return sorted(self._sources)
