"""The pipeline config model: what ``UPDATE_CONFIG`` carries (protocol.md 6.2).

A pipeline (stream) has a ``NAME``, a data source ``TYPE``, free top-level
settings (``URL``, ``LIVE_FEED``, ``STREAM_CONFIG_METADATA``...) and plugin
instances grouped by signature::

    {"NAME": ..., "SESSION_ID": ..., "DEFAULT_PLUGIN": False,
     "PLUGINS": [{"SIGNATURE": ..., "INSTANCES": [{"INSTANCE_ID": ..., **params}]}],
     "TYPE": ..., **config}

Values are frozen; edits return new values. Starting or stopping an instance
is an edit followed by resending the whole config, as the original SDK does.
:meth:`PipelineConfig.from_dict` reads what nodes report in ``CONFIG_STREAMS``
(including the keys nodes add, which land in ``config``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pye2.errors import ConfigError, DecodeError

__all__ = [
    "HANDLE_SEPARATOR",
    "InstanceConfig",
    "InstanceHandle",
    "PipelineConfig",
    "format_instance_handle",
    "parse_instance_handle",
    "upper_keys",
]

HANDLE_SEPARATOR = "##"

#: Pipeline keys that have their own field and may not appear in ``config``.
_RESERVED = frozenset({"NAME", "TYPE", "PLUGINS", "SESSION_ID"})


def upper_keys(params: Mapping[str, Any]) -> dict[str, Any]:
    """Upper-case the keys of a parameter dict, as the SDK does with keyword arguments.

    Raises:
        ConfigError: a key is not a str, or two keys collide once upper-cased.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise ConfigError(f"parameter names must be str, not {type(key).__name__}")
        upper = key.upper()
        if upper in out:
            raise ConfigError(f"parameter {key!r} collides with another once upper-cased ({upper!r})")
        out[upper] = value
    return out


def _frozen_params(params: Mapping[str, Any] | None, what: str) -> Mapping[str, Any]:
    if params is None:
        return MappingProxyType({})
    if not isinstance(params, Mapping):
        raise ConfigError(f"{what} must be a mapping, not {type(params).__name__}")
    if not all(isinstance(k, str) for k in params):
        raise ConfigError(f"{what} keys must be str")
    try:
        # A deep copy: later changes to the caller's dict (or nested lists) must not leak in.
        return MappingProxyType(copy.deepcopy(dict(params)))
    except (TypeError, RecursionError, copy.Error) as exc:
        raise ConfigError(f"{what} cannot be copied: {exc}") from exc


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty string, not {value!r}")
    return value


@dataclass(frozen=True, eq=True)
class InstanceConfig:
    """One plugin instance: signature, id and parameters (``INSTANCE_ID`` excluded).

    Build it directly (params kept verbatim) or with :meth:`create`, which
    upper-cases keyword arguments as the original SDK does.
    """

    signature: str
    instance_id: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name(self.signature, "signature")
        _name(self.instance_id, "instance_id")
        params = _frozen_params(self.params, "instance params")
        if "INSTANCE_ID" in params:
            raise ConfigError("instance params may not contain INSTANCE_ID (use instance_id)")
        object.__setattr__(self, "params", params)

    @classmethod
    def create(
        cls, signature: str, instance_id: str, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> InstanceConfig:
        """``{**params, **UPPERCASED(kwargs)}`` as the instance parameters."""
        return cls(signature, instance_id, {**(params or {}), **upper_keys(kwargs)})

    def to_dict(self) -> dict[str, Any]:
        """``{"INSTANCE_ID": id, **params}`` (a deep copy)."""
        return {"INSTANCE_ID": self.instance_id, **copy.deepcopy(dict(self.params))}

    def with_params(self, delta: Mapping[str, Any]) -> InstanceConfig:
        """The instance with ``delta`` merged into its parameters (keys kept verbatim)."""
        return InstanceConfig(self.signature, self.instance_id, {**self.params, **delta})


@dataclass(frozen=True, eq=True)
class PipelineConfig:
    """A pipeline: name, data source type, session id, settings and instances.

    Attributes:
        name: ``NAME``.
        type: ``TYPE`` (data source, e.g. ``"Void"``, ``"VideoStream"``).
        session_id: ``SESSION_ID`` (42ee127 sets it to the pipeline name; see
            :meth:`create`); None is sent as ``null``.
        instances: every instance, in order; ``PLUGINS`` groups them by
            signature in order of first appearance.
        config: every other top-level key (``URL``, ``LIVE_FEED``, node-added
            ``INITIATOR_ID``...); it may override ``DEFAULT_PLUGIN``.
    """

    name: str
    type: str
    session_id: str | None = None
    instances: tuple[InstanceConfig, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name(self.name, "pipeline name")
        _name(self.type, "pipeline type")
        if self.session_id is not None and not isinstance(self.session_id, str):
            raise ConfigError(f"session_id must be a string or None, not {self.session_id!r}")
        instances = tuple(self.instances)
        seen: set[tuple[str, str]] = set()
        for inst in instances:
            if not isinstance(inst, InstanceConfig):
                raise ConfigError(f"instances must be InstanceConfig values, not {type(inst).__name__}")
            key = (inst.signature, inst.instance_id)
            if key in seen:
                raise ConfigError(f"duplicate instance {inst.instance_id!r} of {inst.signature!r}")
            seen.add(key)
        config = _frozen_params(self.config, "pipeline config")
        reserved = sorted(_RESERVED.intersection(config))
        if reserved:
            raise ConfigError(f"pipeline config may not set {', '.join(reserved)} (they have their own fields)")
        object.__setattr__(self, "instances", instances)
        object.__setattr__(self, "config", config)

    @classmethod
    def create(
        cls,
        name: str,
        data_source: str,
        *,
        config: Mapping[str, Any] | None = None,
        instances: Iterable[InstanceConfig] = (),
        session_id: str | None = None,
        **kwargs: Any,
    ) -> PipelineConfig:
        """Build a pipeline the way the original ``create_pipeline`` does.

        ``SESSION_ID`` defaults to the pipeline name (42ee127); the settings
        are ``{**config, **UPPERCASED(kwargs)}``.
        """
        settings = {**(config or {}), **upper_keys(kwargs)}
        return cls(name, data_source, name if session_id is None else session_id, tuple(instances), settings)

    # -- reading ---------------------------------------------------------------
    @property
    def signatures(self) -> tuple[str, ...]:
        """Signatures in ``PLUGINS`` order."""
        return tuple(dict.fromkeys(inst.signature for inst in self.instances))

    def get_instance(self, signature: str, instance_id: str) -> InstanceConfig | None:
        """The instance with that signature and id, or None."""
        for inst in self.instances:
            if inst.signature == signature and inst.instance_id == instance_id:
                return inst
        return None

    def to_dict(self) -> dict[str, Any]:
        """The ``UPDATE_CONFIG`` payload (a fresh, deep-copied dict)."""
        plugins = [
            {"SIGNATURE": sig, "INSTANCES": [i.to_dict() for i in self.instances if i.signature == sig]}
            for sig in self.signatures
        ]
        return {
            "NAME": self.name,
            "SESSION_ID": self.session_id,
            "DEFAULT_PLUGIN": False,
            "PLUGINS": plugins,
            "TYPE": self.type,
            **copy.deepcopy(dict(self.config)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineConfig:
        """Parse a pipeline config as sent in ``UPDATE_CONFIG`` or reported in ``CONFIG_STREAMS``.

        Unknown top-level keys (``INITIATOR_ADDR``, ``VALIDATED``...) are kept
        in ``config``; a missing or null ``PLUGINS`` means no instances; a
        signature listed twice is merged.

        Raises:
            DecodeError: not a mapping, no string ``NAME``/``TYPE``, or a
                ``PLUGINS`` entry that is not ``{SIGNATURE, INSTANCES: [{INSTANCE_ID, ...}]}``.
        """
        if not isinstance(data, Mapping):
            raise DecodeError(f"pipeline config must be a JSON object, not {type(data).__name__}")
        plugins = data.get("PLUGINS")
        if plugins is None:
            plugins = []
        if not isinstance(plugins, list):
            raise DecodeError(f"pipeline PLUGINS must be a list, not {type(plugins).__name__}")
        instances: list[InstanceConfig] = []
        try:
            for plugin in plugins:
                instances.extend(_parse_plugin(plugin))
            config = {k: v for k, v in data.items() if k not in _RESERVED}
            if config.get("DEFAULT_PLUGIN") is False:
                del config["DEFAULT_PLUGIN"]  # to_dict writes this default anyway
            session_id = data.get("SESSION_ID")
            return cls(data.get("NAME"), data.get("TYPE"), session_id, tuple(instances), config)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise DecodeError(f"invalid pipeline config: {exc}") from exc

    # -- pure edits -------------------------------------------------------------
    def with_instance(self, instance: InstanceConfig) -> PipelineConfig:
        """Add ``instance``, or replace the one with the same signature and id in place."""
        if not isinstance(instance, InstanceConfig):
            raise ConfigError(f"expected an InstanceConfig, not {type(instance).__name__}")
        key = (instance.signature, instance.instance_id)
        replaced = False
        out: list[InstanceConfig] = []
        for inst in self.instances:
            if (inst.signature, inst.instance_id) == key:
                out.append(instance)
                replaced = True
            else:
                out.append(inst)
        if not replaced:
            out.append(instance)
        return self._replace_instances(out)

    def without_instance(self, signature: str, instance_id: str) -> PipelineConfig:
        """Remove one instance; a signature left without instances disappears from ``PLUGINS``.

        Raises:
            ConfigError: no such instance.
        """
        self._require(signature, instance_id)
        kept = [i for i in self.instances if (i.signature, i.instance_id) != (signature, instance_id)]
        return self._replace_instances(kept)

    def with_instance_config(
        self, signature: str, instance_id: str, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> PipelineConfig:
        """Merge a delta into one instance, as the node applies ``UPDATE_PIPELINE_INSTANCE``.

        Keys are upper-cased like the command's ``INSTANCE_CONFIG``.

        Raises:
            ConfigError: no such instance, or the delta tries to change ``INSTANCE_ID``.
        """
        current = self._require(signature, instance_id)
        delta = upper_keys({**(config or {}), **kwargs})
        new_id = delta.pop("INSTANCE_ID", instance_id)
        if new_id != instance_id:
            raise ConfigError("INSTANCE_ID of an instance cannot change")
        return self.with_instance(current.with_params(delta))

    def with_config(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> PipelineConfig:
        """Merge top-level settings (``{**config, **UPPERCASED(kwargs)}``)."""
        return PipelineConfig(self.name, self.type, self.session_id, self.instances,
                              {**self.config, **(config or {}), **upper_keys(kwargs)})

    def _require(self, signature: str, instance_id: str) -> InstanceConfig:
        inst = self.get_instance(signature, instance_id)
        if inst is None:
            raise ConfigError(f"pipeline {self.name!r} has no instance {instance_id!r} of {signature!r}")
        return inst

    def _replace_instances(self, instances: Iterable[InstanceConfig]) -> PipelineConfig:
        return PipelineConfig(self.name, self.type, self.session_id, tuple(instances), self.config)


def _parse_plugin(plugin: Any) -> list[InstanceConfig]:
    if not isinstance(plugin, Mapping):
        raise DecodeError(f"PLUGINS entries must be objects, not {type(plugin).__name__}")
    signature = plugin.get("SIGNATURE")
    items = plugin.get("INSTANCES")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise DecodeError(f"INSTANCES of {signature!r} must be a list")
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise DecodeError(f"INSTANCES of {signature!r} must hold objects")
        params = {k: v for k, v in item.items() if k != "INSTANCE_ID"}
        out.append(InstanceConfig(signature, item.get("INSTANCE_ID"), params))  # type: ignore[arg-type]
    return out


# -- instance handles ------------------------------------------------------------

@dataclass(frozen=True)
class InstanceHandle:
    """The 42ee127 handle string ``"<e2id>##<pipeline>##<signature>##<instance>"``."""

    node: str
    pipeline: str
    signature: str
    instance_id: str

    def __post_init__(self) -> None:
        for what, value in (("node", self.node), ("pipeline", self.pipeline),
                            ("signature", self.signature), ("instance_id", self.instance_id)):
            _name(value, what)
            if HANDLE_SEPARATOR in value:
                raise ConfigError(f"{what} {value!r} contains {HANDLE_SEPARATOR!r}; it cannot form a handle")

    def __str__(self) -> str:
        return HANDLE_SEPARATOR.join((self.node, self.pipeline, self.signature, self.instance_id))

    @classmethod
    def parse(cls, text: str) -> InstanceHandle:
        """Read a handle string.

        Raises:
            DecodeError: not a string of four non-empty ``##``-separated parts.
        """
        if not isinstance(text, str):
            raise DecodeError(f"instance handle must be a string, not {type(text).__name__}")
        parts = text.split(HANDLE_SEPARATOR)
        if len(parts) != 4 or not all(parts):
            raise DecodeError(f"not an instance handle (node##pipeline##signature##instance): {text!r:.120}")
        try:
            return cls(*parts)
        except ConfigError as exc:
            raise DecodeError(str(exc)) from exc


def format_instance_handle(node: str, pipeline: str, signature: str, instance_id: str) -> str:
    """``"<node>##<pipeline>##<signature>##<instance>"``.

    Raises:
        ConfigError: a part is empty, not a string, or contains ``##``.
    """
    return str(InstanceHandle(node, pipeline, signature, instance_id))


def parse_instance_handle(text: str) -> InstanceHandle:
    """Inverse of :func:`format_instance_handle` (see :meth:`InstanceHandle.parse`)."""
    return InstanceHandle.parse(text)
