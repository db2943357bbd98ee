"""Outbound commands: ACTION values, payload builders, envelopes, confirmations.

Each command is a frozen value with an ``action``, a ``payload()`` (the
``PAYLOAD`` of protocol.md 6.1, validated on construction) and the
notifications that confirm it (``expected_responses()``, protocol.md 4).
:func:`build_envelope` turns a command into the unsigned wire dict of a wire
profile; :func:`command_address` gives where it is published. Bad input
raises :class:`~pye2.errors.CommandError`.

The notification codes and :class:`ExpectedResponse` live in
:mod:`pye2.domain.notifications` and are re-exported here.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from pye2.domain.notifications import (
    ABNORMAL_FUNCTIONING,
    COMM_RECEIVED_BAD_COMMAND,
    COMMS_OK,
    EMAIL,
    EXCEPTION,
    NORMAL,
    NOTIFICATION_TAGS,
    PIPELINE_ARCHIVE_FAILED,
    PIPELINE_ARCHIVE_OK,
    PIPELINE_DATA_FAILED,
    PIPELINE_DATA_OK,
    PIPELINE_DCT_CONFIG_FAILED,
    PIPELINE_DCT_CONFIG_OK,
    PIPELINE_FAILED,
    PIPELINE_OK,
    PLUGIN_CONFIG_FAILED,
    PLUGIN_CONFIG_IN_PAUSE_FAILED,
    PLUGIN_CONFIG_IN_PAUSE_OK,
    PLUGIN_CONFIG_OK,
    PLUGIN_DELAYED,
    PLUGIN_INSTANCE_COMMAND_FAILED,
    PLUGIN_INSTANCE_COMMAND_OK,
    PLUGIN_PAUSE_FAILED,
    PLUGIN_PAUSE_OK,
    PLUGIN_RESUME_FAILED,
    PLUGIN_RESUME_OK,
    PLUGIN_WORKING_HOURS_SHIFT_END,
    PLUGIN_WORKING_HOURS_SHIFT_END_FAILED,
    PLUGIN_WORKING_HOURS_SHIFT_START,
    PLUGIN_WORKING_HOURS_SHIFT_START_FAILED,
    SERVING_START_FAILED,
    SERVING_START_FATAL_FAIL,
    SERVING_START_OK,
    ExpectedResponse,
)
from pye2.domain.pipeline import PipelineConfig
from pye2.domain.profiles import WireProfile
from pye2.errors import CommandError, ConfigError

__all__ = [
    "ABNORMAL_FUNCTIONING", "ACTIONS", "ACTIVE_PLUGINS", "ARCHIVE_CONFIG", "ARCHIVE_CONFIG_ALL",
    "BATCH_UPDATE_PIPELINE_INSTANCE", "COMMANDS", "COMMAND_PARAMS", "COMMS_OK", "COMM_RECEIVED_BAD_COMMAND",
    "DELETE_CONFIG", "DELETE_CONFIG_ALL", "EMAIL", "EXCEPTION", "FINISH_ACQUISITION", "FULL_HEARTBEAT",
    "INSTANCE_COMMAND", "NORMAL", "NOTIFICATION_TAGS", "PIPELINE_ARCHIVE_FAILED", "PIPELINE_ARCHIVE_OK",
    "PIPELINE_COMMAND", "PIPELINE_DATA_FAILED", "PIPELINE_DATA_OK", "PIPELINE_DCT_CONFIG_FAILED",
    "PIPELINE_DCT_CONFIG_OK", "PIPELINE_FAILED", "PIPELINE_OK", "PLUGIN_CONFIG_FAILED",
    "PLUGIN_CONFIG_IN_PAUSE_FAILED", "PLUGIN_CONFIG_IN_PAUSE_OK", "PLUGIN_CONFIG_OK", "PLUGIN_DELAYED",
    "PLUGIN_INSTANCE_COMMAND_FAILED", "PLUGIN_INSTANCE_COMMAND_OK", "PLUGIN_PAUSE_FAILED", "PLUGIN_PAUSE_OK",
    "PLUGIN_RESUME_FAILED", "PLUGIN_RESUME_OK", "PLUGIN_WORKING_HOURS_SHIFT_END",
    "PLUGIN_WORKING_HOURS_SHIFT_END_FAILED", "PLUGIN_WORKING_HOURS_SHIFT_START",
    "PLUGIN_WORKING_HOURS_SHIFT_START_FAILED", "RELOAD_CONFIG_FROM_DISK", "RESET_WHITELIST_COMMANDS_TO_TEMPLATE",
    "RESTART", "SERVING_START_FAILED", "SERVING_START_FATAL_FAIL", "SERVING_START_OK", "SIMPLE_HEARTBEAT", "STATUS",
    "STOP", "TIMERS_ONLY_HEARTBEAT", "TIME_FORMAT", "UPDATE_CONFIG", "UPDATE_PIPELINE_INSTANCE",
    "ArchiveAllPipelines", "ArchivePipeline", "BatchUpdateInstances", "Command", "DeleteAllPipelines",
    "DeletePipeline", "ExpectedResponse", "FullHeartbeat", "InstanceCommand", "PipelineCommand", "RawCommand",
    "ReloadConfigFromDisk", "RestartNode", "SimpleHeartbeat", "StopNode", "TimersOnlyHeartbeat", "UpdateInstance",
    "UpdatePipeline", "build_envelope", "command_address", "command_body", "command_from_action",
]

# -- ACTION values (protocol.md 6.1) ---------------------------------------------
UPDATE_CONFIG = "UPDATE_CONFIG"
ARCHIVE_CONFIG = "ARCHIVE_CONFIG"
DELETE_CONFIG = "DELETE_CONFIG"
UPDATE_PIPELINE_INSTANCE = "UPDATE_PIPELINE_INSTANCE"
BATCH_UPDATE_PIPELINE_INSTANCE = "BATCH_UPDATE_PIPELINE_INSTANCE"
PIPELINE_COMMAND = "PIPELINE_COMMAND"
STOP = "STOP"
RESTART = "RESTART"
FULL_HEARTBEAT = "FULL_HEARTBEAT"
TIMERS_ONLY_HEARTBEAT = "TIMERS_ONLY_HEARTBEAT"
SIMPLE_HEARTBEAT = "SIMPLE_HEARTBEAT"
RELOAD_CONFIG_FROM_DISK = "RELOAD_CONFIG_FROM_DISK"
ARCHIVE_CONFIG_ALL = "ARCHIVE_CONFIG_ALL"
DELETE_CONFIG_ALL = "DELETE_CONFIG_ALL"
#: A node ACTION outside the original SDK (rewrites the node's command allow-list).
RESET_WHITELIST_COMMANDS_TO_TEMPLATE = "RESET_WHITELIST_COMMANDS_TO_TEMPLATE"
#: Constants of the original SDK with no node handler.
STATUS = "STATUS"
ACTIVE_PLUGINS = "ACTIVE_PLUGINS"
FINISH_ACQUISITION = "FINISH_ACQUISITION"
COMMANDS = "COMMANDS"
#: Keys inside command payloads.
INSTANCE_COMMAND = "INSTANCE_COMMAND"
COMMAND_PARAMS = "COMMAND_PARAMS"

#: Every ACTION a node executes.
ACTIONS = frozenset({
    UPDATE_CONFIG, ARCHIVE_CONFIG, DELETE_CONFIG, UPDATE_PIPELINE_INSTANCE, BATCH_UPDATE_PIPELINE_INSTANCE,
    PIPELINE_COMMAND, STOP, RESTART, FULL_HEARTBEAT, TIMERS_ONLY_HEARTBEAT, SIMPLE_HEARTBEAT,
    RELOAD_CONFIG_FROM_DISK, ARCHIVE_CONFIG_ALL, DELETE_CONFIG_ALL,
})

#: ``TIME`` field format of RATIO1 commands.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CommandError(f"{what} must be a non-empty string, not {value!r:.80}")
    return value


#: Leaf types that ``copy.deepcopy`` returns as they are (exact types: subclasses take deepcopy).
_ATOMS = frozenset({str, int, float, bool, type(None)})
#: Nesting beyond this (or a cycle) leaves the quick copy for ``copy.deepcopy``.
_QUICK_DEPTH = 64


class _NotPlain(Exception):
    """The value holds something other than dicts, lists and atoms (or nests too deep)."""


def _plain_copy(value: Any, depth: int) -> Any:
    """A copy of JSON-shaped data: dicts and lists rebuilt, atoms shared (as deepcopy shares them).

    Raises:
        _NotPlain: any other type (also as a dict key), or deeper than ``_QUICK_DEPTH``.
    """
    kind = type(value)
    if kind in _ATOMS:
        return value
    if depth > _QUICK_DEPTH:
        raise _NotPlain
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) not in _ATOMS:
                raise _NotPlain
            out[key] = item if type(item) in _ATOMS else _plain_copy(item, depth + 1)
        return out
    if kind is list:
        return [item if type(item) in _ATOMS else _plain_copy(item, depth + 1) for item in value]
    raise _NotPlain


def _copy(value: Any, what: str) -> Any:
    """A deep copy; JSON-shaped data (the usual payload) without ``copy.deepcopy``'s bookkeeping."""
    try:
        return _plain_copy(value, 0)
    except _NotPlain:
        pass
    except RecursionError as exc:
        raise CommandError(f"{what} cannot be copied: {exc}") from exc
    try:
        return copy.deepcopy(value)
    except (TypeError, RecursionError, copy.Error) as exc:
        raise CommandError(f"{what} cannot be copied: {exc}") from exc


def _checked_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` itself once it is a mapping with string keys (no copy: for checks only)."""
    if not isinstance(value, Mapping):
        raise CommandError(f"{what} must be a mapping, not {type(value).__name__}")
    if not all(isinstance(k, str) for k in value):
        raise CommandError(f"{what} keys must be strings")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    return dict(_copy(dict(_checked_mapping(value, what)), what))


def _upper(params: Mapping[str, Any], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _mapping(params, what).items():
        if key.upper() in out:
            raise CommandError(f"{what} key {key!r} collides with another once upper-cased")
        out[key.upper()] = value
    return out


class Command:
    """Base of all commands: ``action``, ``payload()``, ``expected_responses()``."""

    action: ClassVar[str] = ""

    def payload(self) -> Any:
        """The ``PAYLOAD`` value (a fresh copy each call)."""
        return None

    def expected_responses(self) -> tuple[ExpectedResponse, ...]:
        """Notifications that confirm (or refute) the command; empty if none are sent."""
        return ()


@dataclass(frozen=True)
class UpdatePipeline(Command):
    """``UPDATE_CONFIG``: create a pipeline or replace its config (confirmed by 1 / -1)."""

    action: ClassVar[str] = UPDATE_CONFIG
    pipeline: PipelineConfig | Mapping[str, Any]

    def __post_init__(self) -> None:
        if isinstance(self.pipeline, PipelineConfig):
            return
        data = _mapping(self.pipeline, "pipeline config")
        _name(data.get("NAME"), "pipeline NAME")
        _name(data.get("TYPE"), "pipeline TYPE")
        if not isinstance(data.get("PLUGINS", []), list):
            raise CommandError("pipeline PLUGINS must be a list")
        object.__setattr__(self, "pipeline", data)

    @property
    def name(self) -> str:
        """The pipeline name."""
        if isinstance(self.pipeline, PipelineConfig):
            return self.pipeline.name
        return str(self.pipeline["NAME"])

    def payload(self) -> dict[str, Any]:
        if isinstance(self.pipeline, PipelineConfig):
            return self.pipeline.to_dict()
        return dict(_copy(dict(self.pipeline), "pipeline config"))

    def expected_responses(self) -> tuple[ExpectedResponse, ...]:
        return (ExpectedResponse.pipeline_ok(self.name),)


@dataclass(frozen=True)
class ArchivePipeline(Command):
    """``ARCHIVE_CONFIG``: stop and archive a pipeline; the payload is its name (4 / -4)."""

    action: ClassVar[str] = ARCHIVE_CONFIG
    name: str

    def __post_init__(self) -> None:
        _name(self.name, "pipeline name")

    def payload(self) -> str:
        return self.name

    def expected_responses(self) -> tuple[ExpectedResponse, ...]:
        return (ExpectedResponse.pipeline_archived(self.name),)


@dataclass(frozen=True)
class DeletePipeline(Command):
    """``DELETE_CONFIG``: stop and delete a pipeline without archiving it.

    No success code is documented for it, so no confirmation is expected.
    """

    action: ClassVar[str] = DELETE_CONFIG
    name: str

    def __post_init__(self) -> None:
        _name(self.name, "pipeline name")

    def payload(self) -> str:
        return self.name


@dataclass(frozen=True)
class UpdateInstance(Command):
    """``UPDATE_PIPELINE_INSTANCE``: merge a delta into one instance's config.

    ``INSTANCE_CONFIG`` keys are upper-cased. Confirmed by 1 / -1 for the
    pipeline and 100 / -100 (or 120 / -120 while paused) for the instance.
    """

    action: ClassVar[str] = UPDATE_PIPELINE_INSTANCE
    pipeline: str
    signature: str
    instance_id: str
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name(self.pipeline, "pipeline name")
        _name(self.signature, "signature")
        _name(self.instance_id, "instance_id")
        object.__setattr__(self, "config", _upper(self.config, "INSTANCE_CONFIG"))

    def payload(self) -> dict[str, Any]:
        return {"NAME": self.pipeline, "SIGNATURE": self.signature, "INSTANCE_ID": self.instance_id,
                "INSTANCE_CONFIG": _copy(dict(self.config), "INSTANCE_CONFIG")}

    def expected_responses(self) -> tuple[ExpectedResponse, ...]:
        return (ExpectedResponse.pipeline_ok(self.pipeline),
                ExpectedResponse.instance_configured(self.pipeline, self.signature, self.instance_id))


_BATCH_KEYS = ("NAME", "SIGNATURE", "INSTANCE_ID", "INSTANCE_CONFIG")


def _check_instance_update(item: Any, what: str) -> Mapping[str, Any]:
    data = _checked_mapping(item, what)
    missing = [k for k in _BATCH_KEYS if k not in data]
    if missing:
        raise CommandError(f"{what} lacks {', '.join(missing)}")
    for key in ("NAME", "SIGNATURE", "INSTANCE_ID"):
        _name(data[key], f"{what} {key}")
    if not isinstance(data["INSTANCE_CONFIG"], Mapping):
        raise CommandError(f"{what} INSTANCE_CONFIG must be a dict")
    return data


def _batch_item(item: UpdateInstance | Mapping[str, Any]) -> UpdateInstance:
    if isinstance(item, UpdateInstance):
        return item
    data = _check_instance_update(item, "batch item")
    return UpdateInstance(data["NAME"], data["SIGNATURE"], data["INSTANCE_ID"], data["INSTANCE_CONFIG"])


@dataclass(frozen=True)
class BatchUpdateInstances(Command):
    """``BATCH_UPDATE_PIPELINE_INSTANCE``: several instance updates in one command.

    Items are :class:`UpdateInstance` values or dicts with ``NAME``,
    ``SIGNATURE``, ``INSTANCE_ID`` and a dict ``INSTANCE_CONFIG``.
    """

    action: ClassVar[str] = BATCH_UPDATE_PIPELINE_INSTANCE
    updates: Sequence[UpdateInstance | Mapping[str, Any]]

    def __post_init__(self) -> None:
        if isinstance(self.updates, (str, bytes, Mapping)) or not isinstance(self.updates, Sequence):
            raise CommandError("batch updates must be a list")
        items = tuple(_batch_item(item) for item in self.updates)
        if not items:
            raise CommandError("a batch update needs at least one item")
        object.__setattr__(self, "updates", items)

    def payload(self) -> list[dict[str, Any]]:
        return [item.payload() for item in self.updates]  # type: ignore[union-attr]

    def expected_responses(self) -> tuple[ExpectedResponse, ...]:
        out: dict[ExpectedResponse, None] = {}
        for item in self.updates:
            out.update(dict.fromkeys(item.expected_responses()))  # type: ignore[union-attr]
        return tuple(out)


def _command_dict(command: str | Mapping[str, Any], payload: Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(command, str):
        return {_name(command, "command"): True, **(_mapping(payload, "command payload") if payload else {})}
    return {**_mapping(command, "command"), **(_mapping(payload, "command payload") if payload else {})}


@dataclass(frozen=True)
class PipelineCommand(Command):
    """``PIPELINE_COMMAND``: ``{"NAME", "PIPELINE_COMMAND": {<command>: true, **payload, "COMMAND_PARAMS": params}}``.

    ``COMMAND_PARAMS`` is only present when ``params`` is given. No
    confirmation code is documented.
    """

    action: ClassVar[str] = PIPELINE_COMMAND
    pipeline: str
    command: str | Mapping[str, Any]
    extra: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    _body: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _name(self.pipeline, "pipeline name")
        body = _command_dict(self.command, self.extra)
        if self.params is not None:
            body[COMMAND_PARAMS] = _mapping(self.params, "command params")
        object.__setattr__(self, "_body", body)

    def payload(self) -> dict[str, Any]:
        return {"NAME": self.pipeline, PIPELINE_COMMAND: _copy(self._body, "command")}


@dataclass(frozen=True)
class InstanceCommand(Command):
    """An instance command, sent as ``UPDATE_PIPELINE_INSTANCE`` (confirmed by 101 / -101).

    ``INSTANCE_CONFIG`` is ``{"INSTANCE_COMMAND": {**command, **payload,
    "COMMAND_PARAMS": params}}``; a string command becomes
    ``COMMAND_PARAMS[<command>] = true``, as ratio1 does.
    """

    action: ClassVar[str] = UPDATE_PIPELINE_INSTANCE
    pipeline: str
    signature: str
    instance_id: str
    command: str | Mapping[str, Any]
    extra: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    _body: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _name(self.pipeline, "pipeline name")
        _name(self.signature, "signature")
        _name(self.instance_id, "instance_id")
        params = _mapping(self.params, "command params") if self.params is not None else {}
        if isinstance(self.command, str):
            params[_name(self.command, "command")] = True
            body: dict[str, Any] = {}
        else:
            body = _mapping(self.command, "command")
        if self.extra is not None:
            body.update(_mapping(self.extra, "command payload"))
        body[COMMAND_PARAMS] = params
        object.__setattr__(self, "_body", body)

    def payload(self) -> dict[str, Any]:
        return UpdateInstance(self.pipeline, self.signature, self.instance_id,
                              {INSTANCE_COMMAND: self._body}).payload()

    def expected_responses(self) -> tuple[ExpectedResponse, ...]:
        return (ExpectedResponse.instance_command(self.pipeline, self.signature, self.instance_id),)


@dataclass(frozen=True)
class StopNode(Command):
    """``STOP``: the node notifies, sends a last heartbeat and exits."""

    action: ClassVar[str] = STOP


@dataclass(frozen=True)
class RestartNode(Command):
    """``RESTART``: like STOP, then the node is restarted."""

    action: ClassVar[str] = RESTART


@dataclass(frozen=True)
class FullHeartbeat(Command):
    """``FULL_HEARTBEAT``: an immediate heartbeat with full info and logs."""

    action: ClassVar[str] = FULL_HEARTBEAT


@dataclass(frozen=True)
class TimersOnlyHeartbeat(Command):
    """``TIMERS_ONLY_HEARTBEAT``: an immediate heartbeat with timers, no logs."""

    action: ClassVar[str] = TIMERS_ONLY_HEARTBEAT


@dataclass(frozen=True)
class SimpleHeartbeat(Command):
    """``SIMPLE_HEARTBEAT``: an immediate summary heartbeat."""

    action: ClassVar[str] = SIMPLE_HEARTBEAT


@dataclass(frozen=True)
class ReloadConfigFromDisk(Command):
    """``RELOAD_CONFIG_FROM_DISK``: the node reloads its stored pipelines."""

    action: ClassVar[str] = RELOAD_CONFIG_FROM_DISK


@dataclass(frozen=True)
class ArchiveAllPipelines(Command):
    """``ARCHIVE_CONFIG_ALL``: archive every pipeline (the admin one is refused)."""

    action: ClassVar[str] = ARCHIVE_CONFIG_ALL


@dataclass(frozen=True)
class DeleteAllPipelines(Command):
    """``DELETE_CONFIG_ALL``: delete every pipeline (the admin one is refused)."""

    action: ClassVar[str] = DELETE_CONFIG_ALL


@dataclass(frozen=True)
class RawCommand(Command):
    """Any ACTION with a payload given as is (validated for the known ACTIONs).

    Built by :func:`command_from_action`; the payload is sent verbatim.
    """

    raw_action: str
    raw_payload: Any = None

    @property
    def action(self) -> str:  # type: ignore[override]
        return self.raw_action

    def payload(self) -> Any:
        return _copy(self.raw_payload, "payload")


def command_from_action(action: str, payload: Any = None) -> Command:
    """A command from an ACTION string and its payload, checking the payload's shape.

    Known ACTIONs are checked as in protocol.md 6.1 (``UPDATE_CONFIG`` a
    config with ``NAME`` and ``TYPE``; ``ARCHIVE_CONFIG``/``DELETE_CONFIG`` a
    non-empty name; instance updates with ``NAME``, ``SIGNATURE``,
    ``INSTANCE_ID`` and a dict ``INSTANCE_CONFIG``; batches a non-empty list
    of those; ``PIPELINE_COMMAND`` a ``NAME`` and a ``PIPELINE_COMMAND``; the
    others ``null``). Other ACTION strings pass through unchecked.

    Raises:
        CommandError: the action is not a non-empty string or the payload has the wrong shape.
    """
    return _raw_command(action, payload)


def _raw_command(action: str, payload: Any) -> RawCommand:
    """:func:`command_from_action`, typed as what it builds."""
    _name(action, "ACTION")
    if action == UPDATE_CONFIG:
        UpdatePipeline(payload)
    elif action in (ARCHIVE_CONFIG, DELETE_CONFIG):
        _name(payload, f"{action} payload (pipeline name)")
    elif action == UPDATE_PIPELINE_INSTANCE:
        _check_instance_update(payload, f"{action} payload")
    elif action == BATCH_UPDATE_PIPELINE_INSTANCE:
        if not isinstance(payload, list) or not payload:
            raise CommandError(f"{action} payload must be a non-empty list")
        for index, item in enumerate(payload):
            _check_instance_update(item, f"{action} item {index}")
    elif action == PIPELINE_COMMAND:
        data = _checked_mapping(payload, f"{action} payload")
        _name(data.get("NAME"), f"{action} NAME")
        if PIPELINE_COMMAND not in data:
            raise CommandError(f"{action} payload lacks PIPELINE_COMMAND")
    elif action in ACTIONS and payload is not None:
        raise CommandError(f"{action} takes no payload (null), got {type(payload).__name__}")
    return RawCommand(action, _copy(payload, "payload"))


# -- envelope ------------------------------------------------------------------------

def command_body(command: Command) -> dict[str, Any]:
    """``{"ACTION", "PAYLOAD"}``: the part that is encrypted when commands are encrypted."""
    if not isinstance(command, Command):
        raise CommandError(f"not a command: {type(command).__name__}")
    return {"ACTION": command.action, "PAYLOAD": command.payload()}


def _target(profile: WireProfile, target_id: str | None, target_address: str | None) -> str:
    if profile.commands_by_address and target_address is not None:
        return _name(target_address, "target_address")
    # Address unknown: fall back to the node id, as ratio1 does with SUBTOPIC="alias".
    return _name(target_id, "target_id")


def command_address(profile: WireProfile, *, target_id: str | None, target_address: str | None) -> str:
    """The topic a command for that node is published on (``profile.config(target)``).

    AIXP-style profiles address the node id, RATIO1-style ones its address
    (or the node id when the address is None).

    Raises:
        CommandError: the needed target is missing or not usable in a topic.
    """
    try:
        return profile.config(_target(profile, target_id, target_address))
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc


_NO_PAYLOAD: Any = object()


def _utc_text(now: float) -> str:
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise CommandError(f"now must be a finite number of seconds, not {now!r}")
    try:
        return datetime.fromtimestamp(now, tz=timezone.utc).strftime(TIME_FORMAT)
    except (OverflowError, OSError, ValueError) as exc:
        raise CommandError(f"now is out of range: {now!r}") from exc


def build_envelope(
    command: Command | str,
    payload: Any = _NO_PAYLOAD,
    *,
    profile: WireProfile,
    target_id: str,
    target_address: str | None,
    initiator_id: str,
    session_id: str | None,
    now: float,
) -> dict[str, Any]:
    """The unsigned wire dict of a command.

    AIXP (protocol.md 2.2): ``{EE_ID, SB_ID, ACTION, PAYLOAD, INITIATOR_ID}``
    with ``EE_ID = SB_ID = target_id``.
    RATIO1 (protocol.md 11): ``{EE_ID, EE_DEST, ACTION, PAYLOAD, INITIATOR_ID,
    SESSION_ID, TIME}`` with ``EE_ID = EE_DEST = target_address`` (``target_id``
    when the address is None, as ratio1's alias mode does) and ``TIME``
    = ``now`` (Unix seconds, from the caller's clock) rendered in **UTC** as
    ``"%Y-%m-%d %H:%M:%S.%f"``.

    ``command`` is a :class:`Command`, or an ACTION string followed by its
    payload (checked by :func:`command_from_action`).

    Raises:
        CommandError: a required target or id is missing, the payload has the
            wrong shape, or ``now`` is not a usable timestamp.
    """
    if isinstance(command, str):
        raw = _raw_command(command, None if payload is _NO_PAYLOAD else payload)
        body = {"ACTION": raw.action, "PAYLOAD": raw.raw_payload}  # the command's own copy: ours alone
    elif payload is not _NO_PAYLOAD:
        raise CommandError("pass either a Command or an ACTION and its payload, not both")
    else:
        body = command_body(command)
    target = _target(profile, target_id, target_address)
    initiator = _name(initiator_id, "initiator_id")
    if not profile.commands_by_address:
        return {"EE_ID": target, "SB_ID": target, **body, "INITIATOR_ID": initiator}
    if session_id is not None and not isinstance(session_id, str):
        raise CommandError(f"session_id must be a string or None, not {session_id!r}")
    return {"EE_ID": target, "EE_DEST": target, **body, "INITIATOR_ID": initiator,
            "SESSION_ID": session_id, "TIME": _utc_text(now)}

