"""Executing accepted commands, as a real node's config manager does (node.md sections 4-5).

Each ACTION changes the stored pipeline configs (the node's "disk" copy is
updated at once), drives the runtime, and publishes the notification sequence
the real node publishes, with its texts and codes. An unknown ACTION
publishes nothing.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pye2_transport_memory.node._admin import ADMIN_PIPELINE
from pye2_transport_memory.node._notify import ABNORMAL, EXCEPTION, NORMAL, Notice
from pye2_transport_memory.node._payload import time_text

if TYPE_CHECKING:
    from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["NODE_KEYS", "Command", "ConfigManager"]

log = logging.getLogger(__name__)

#: keys the node adds to a stored pipeline config
NODE_KEYS = ("INITIATOR_ID", "INITIATOR_ADDR", "MODIFIED_BY_ID", "MODIFIED_BY_ADDR", "SESSION_ID",
             "LAST_UPDATE_TIME", "VALIDATED")
_INJECTED = ("EE_SENDER", "VALIDATED")
_MODULE = "ConfigManager"
_UPI = "UPDATE_PIPELINE_INSTANCE"


@dataclass
class Command:
    """An accepted command, as the main loop sees it.

    ``sender`` is the verified address (or the claimed one on an unsecured
    node); ``validated`` says whether the signature verified.
    """

    action: str
    payload: Any
    sender: str | None
    initiator_id: str | None
    session_id: str | None
    validated: bool
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def vtext(self) -> str:
        """``VALIDATED`` / ``NON-VALIDATED`` as the node writes it."""
        return "VALIDATED" if self.validated else "NON-VALIDATED"


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (``A.B`` addresses a nested key, as a real node's merge does)."""
    if "." in key:
        _set_dotted(target, key, value)
    else:
        target[key] = value


def _content(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NODE_KEYS}


def _find_instance(config: dict[str, Any], signature: str, instance_id: str) -> dict[str, Any] | None:
    plugins = config.get("PLUGINS")
    for entry in plugins if isinstance(plugins, list) else []:
        if isinstance(entry, dict) and str(entry.get("SIGNATURE", "")).upper() == signature.upper():
            for inst in entry.get("INSTANCES") or []:
                if isinstance(inst, dict) and inst.get("INSTANCE_ID") == instance_id:
                    return inst
    return None


class ConfigManager:
    """Runs accepted commands against a node's stored configs and runtime."""

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self._handlers: dict[str, Callable[[Command], None]] = {
            "UPDATE_CONFIG": self._update_config,
            "ARCHIVE_CONFIG": lambda c: self._remove(c, c.payload, archive=True),
            "DELETE_CONFIG": lambda c: self._remove(c, c.payload, archive=False),
            "ARCHIVE_CONFIG_ALL": lambda c: self._remove_all(c, archive=True),
            "DELETE_CONFIG_ALL": lambda c: self._remove_all(c, archive=False),
            _UPI: self._update_instance,
            "BATCH_UPDATE_PIPELINE_INSTANCE": self._batch_update,
            "PIPELINE_COMMAND": self._pipeline_command,
            "FULL_HEARTBEAT": lambda c: self._heartbeat(c, "FULL"),
            "TIMERS_ONLY_HEARTBEAT": lambda c: self._heartbeat(c, "TIMERS"),
            "SIMPLE_HEARTBEAT": lambda c: self._heartbeat(c, "SIMPLE"),
            "RELOAD_CONFIG_FROM_DISK": self._reload,
            "RESET_WHITELIST_COMMANDS_TO_TEMPLATE": lambda c: log.info("node %s: whitelist commands reset",
                                                                        node.alias),
            "STOP": self._stop,
            "RESTART": self._stop,
        }

    @property
    def actions(self) -> tuple[str, ...]:
        """The ACTIONs this node handles."""
        return tuple(self._handlers)

    def execute(self, cmd: Command) -> bool:
        """Run one command; False (nothing published) when the ACTION is unknown."""
        handler = self._handlers.get(cmd.action)
        if handler is None:
            log.info("node %s: command unknown %r; ignored", self.node.alias, cmd.action)
            return False
        handler(cmd)
        return True

    # -- helpers -------------------------------------------------------------------
    def _notify(self, cmd: Command, ntype: str, text: str, code: int | None, **kw: Any) -> None:
        self.node.notify(Notice(kw.pop("module", _MODULE), ntype, text, code, initiator_id=cmd.initiator_id,
                                session_id=cmd.session_id, **kw))

    def _stamp(self, stored: dict[str, Any], cmd: Command) -> None:
        stored["MODIFIED_BY_ID"] = cmd.initiator_id
        stored["MODIFIED_BY_ADDR"] = cmd.sender
        stored["LAST_UPDATE_TIME"] = time_text(self.node.time())
        stored["VALIDATED"] = cmd.validated

    # -- UPDATE_CONFIG -----------------------------------------------------------------
    def _update_config(self, cmd: Command) -> None:
        node, payload = self.node, cmd.payload
        name = payload.get("NAME") if isinstance(payload, dict) else None
        if not isinstance(name, str) or not name:
            self._notify(cmd, EXCEPTION, "Received invalid 'UPDATE_CONFIG' command: the pipeline config must be "
                                         "a dict with a NAME", -1, info=repr(payload)[:1000])
            return
        assert isinstance(payload, dict)
        if name == ADMIN_PIPELINE:
            self._notify(cmd, ABNORMAL, f"Attempted to modify admin pipeline '{name}' with 'UPDATE_CONFIG'. "
                                        "Only 'UPDATE_PIPELINE_INSTANCE' is allowed on it", -3, stream=name)
            return
        claimed = payload.get("INITIATOR_ID")
        if claimed is not None and claimed != cmd.initiator_id:
            self._notify(cmd, EXCEPTION, f"Received initiator inconsistent config for pipeline '{name}': payload "
                                         f"INITIATOR_ID '{claimed}' vs command '{cmd.initiator_id}'", -1,
                         stream=name)
            return
        delta = {k: copy.deepcopy(v) for k, v in payload.items() if k not in _INJECTED}
        delta["INITIATOR_ID"] = cmd.initiator_id
        if cmd.session_id is not None or "SESSION_ID" not in delta:
            delta["SESSION_ID"] = cmd.session_id
        existing = node.pipelines.get(name)
        who = f"{cmd.initiator_id}:{cmd.session_id}"
        if existing is None:
            if not isinstance(payload.get("TYPE"), str) or not payload["TYPE"]:
                self._notify(cmd, EXCEPTION, f"Received invalid 'UPDATE_CONFIG' command for new pipeline '{name}': "
                                             "TYPE is mandatory", -1, stream=name)
                return
            self._notify(cmd, NORMAL, f"Received {cmd.vtext} command for new pipeline '{name}' from {who}", None)
            stored: dict[str, Any] = {}
            for key, value in delta.items():
                _put(stored, key, value)
            stored["INITIATOR_ADDR"] = cmd.sender
            self._stamp(stored, cmd)
            node.store_pipeline(name, stored)
            self._notify(cmd, NORMAL, f"Successfully updated new configuration for pipeline '{name}' initiated "
                                      f"by '{cmd.initiator_id}'", 1, stream=name, displayed=None)
            node.runtime.start_pipeline(name, stored)
            return
        self._notify(cmd, NORMAL, f"Received {cmd.vtext} command to update for existing pipeline '{name}' from {who}",
                     None)
        merged = copy.deepcopy(existing)
        for key, value in delta.items():
            if key == "INITIATOR_ID":
                continue  # the creator stays the initiator; the updater is MODIFIED_BY
            _put(merged, key, value)
        if _content(merged) == _content(existing):
            self._notify(cmd, ABNORMAL, f"Received duplicate configuration for pipeline '{name}' (applied anyway)",
                         -1, stream=name)
        self._stamp(merged, cmd)
        node.store_pipeline(name, merged)
        self._notify(cmd, NORMAL, f"Successfully updated existing configuration for pipeline '{name}' initiated "
                                  f"by '{cmd.initiator_id}'", 1, stream=name, displayed=None)
        node.runtime.update_pipeline(name, merged)

    # -- ARCHIVE / DELETE ------------------------------------------------------------------
    def _remove(self, cmd: Command, payload: Any, *, archive: bool) -> None:
        node = self.node
        verb = "archive" if archive else "delete"
        name = payload if isinstance(payload, str) else repr(payload)
        if name == ADMIN_PIPELINE:
            self._notify(cmd, ABNORMAL, f"Attempted to {verb} pipeline '{name}': the admin pipeline cannot be "
                                        f"{verb}d", -4, stream=name)
            return
        if name not in node.pipelines:
            self._notify(cmd, ABNORMAL, f"Attempted to {verb} pipeline '{name}' that does not exist. Current "
                                        f"pipelines: {list(node.pipelines)}", -4, stream=name)
            return
        node.runtime.stop_pipeline(name)
        node.store_pipeline(name, None)
        self._notify(cmd, NORMAL, f"Successfully deleted pipeline {name}", None, stream=name)
        count = len(node.pipelines)
        text = (f"Successfully archived (and deleted) pipeline '{name}' (currently {count} active pipelines)"
                if archive else f"Successfully deleted pipeline '{name}' (currently {count} active pipelines)")
        self._notify(cmd, NORMAL, text, 4, stream=name)

    def _remove_all(self, cmd: Command, *, archive: bool) -> None:
        for name in [n for n in self.node.pipelines if n != ADMIN_PIPELINE]:
            self._remove(cmd, name, archive=archive)

    # -- UPDATE_PIPELINE_INSTANCE ----------------------------------------------------------
    def _update_instance(self, cmd: Command) -> None:
        self._apply_instance_update(cmd, cmd.payload, vtext=cmd.vtext)

    def _apply_instance_update(self, cmd: Command, item: Any, *, vtext: str) -> bool:
        node = self.node
        item = item if isinstance(item, dict) else {}
        name, sig, iid, delta = (item.get("NAME"), item.get("SIGNATURE"), item.get("INSTANCE_ID"),
                                 item.get("INSTANCE_CONFIG"))
        incomplete = not (isinstance(name, str) and isinstance(sig, str) and isinstance(iid, str)
                          and isinstance(delta, dict))
        missing = not isinstance(name, str) or name not in node.pipelines
        where = {"stream": name if isinstance(name, str) else None,
                 "signature": sig if isinstance(sig, str) else None,
                 "instance_id": iid if isinstance(iid, str) else None}
        if incomplete or missing:
            self._notify(cmd, EXCEPTION, f"Received invalid '{_UPI}' command for {name}:{sig}:{iid}. Incomplete "
                                         f"request: {incomplete}, Non existant stream: {missing}", -1,
                         info="Command should contain NAME, SIGNATURE, INSTANCE_ID as well as INSTANCE_CONFIG "
                              "'delta' object and MUST address a existing pipeline. Full received command: "
                              f"{item!r}", **where)
            return False
        assert isinstance(name, str) and isinstance(sig, str) and isinstance(iid, str) and isinstance(delta, dict)
        stored = copy.deepcopy(node.pipelines[name])
        inst = _find_instance(stored, sig, iid)
        if inst is None:
            self._notify(cmd, EXCEPTION, f"Cannot find instance {name}:{sig}:{iid} for '{_UPI}' command", -1,
                         info=f"Full received command: {item!r}", **where)
            return False
        has_command = "INSTANCE_COMMAND" in delta
        changes = {k: copy.deepcopy(v) for k, v in delta.items() if k not in ("INSTANCE_ID", "INSTANCE_COMMAND")}
        inst.update(changes)
        self._stamp(stored, cmd)
        node.store_pipeline(name, stored)
        self._notify(cmd, NORMAL, f"Successfully updated with {vtext} command {iid}:{name}:{sig}", 1, **where)
        node.runtime.update_pipeline_config(name, stored)
        node.runtime.reconfigure_instance(name, sig, iid, inst, command=delta.get("INSTANCE_COMMAND"),
                                          has_command=has_command, config_changed=bool(changes))
        return True

    def _batch_update(self, cmd: Command) -> None:
        items = cmd.payload if isinstance(cmd.payload, list) else [cmd.payload]
        # A real node says NON-VALIDATED here even for signed commands (node.md section 4).
        done = sum(self._apply_instance_update(cmd, item, vtext="NON-VALIDATED") for item in items)
        self._notify(cmd, NORMAL, f"Successfully updated {done} pipelines with `batch_update_pipeline_instance`",
                     None, extra={"BATCH_UPDATE_PIPELINE_INSTANCE": True})

    # -- others ------------------------------------------------------------------------------
    def _pipeline_command(self, cmd: Command) -> None:
        payload = cmd.payload if isinstance(cmd.payload, dict) else {}
        name = payload.get("NAME")
        if not isinstance(name, str) or name not in self.node.pipelines:
            self._notify(cmd, EXCEPTION, f"Received 'PIPELINE_COMMAND' for unknown pipeline '{name}'", -1,
                         stream=name if isinstance(name, str) else None)
            return
        self.node.runtime.pipeline_command(name, payload.get("PIPELINE_COMMAND"))
        self._notify(cmd, NORMAL, f"Prepared pipeline command for pipeline '{name}'", None, stream=name)

    def _heartbeat(self, cmd: Command, kind: str) -> None:
        self.node.send_heartbeat(kind, initiator_id=cmd.initiator_id)

    def _reload(self, cmd: Command) -> None:
        count = self.node.reload_from_disk()
        self._notify(cmd, NORMAL, f"Reloaded {count} pipeline configurations from disk", None)

    def _stop(self, cmd: Command) -> None:
        self._notify(cmd, NORMAL, f"  Running '{cmd.action}' command in main loop received from "
                                  f"'{cmd.initiator_id}'", None, module="Orchestrator")
        self.node.shutdown(cmd.action, initiator_id=cmd.initiator_id)
