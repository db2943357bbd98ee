"""Notification types and codes (protocol.md 4, node.md 4), and what confirms a command.

:class:`ExpectedResponse` says which success / failure codes settle a command
and matches them against incoming notifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ABNORMAL_FUNCTIONING",
    "COMMS_OK",
    "COMM_RECEIVED_BAD_COMMAND",
    "EMAIL",
    "EXCEPTION",
    "NORMAL",
    "NOTIFICATION_TAGS",
    "PIPELINE_ARCHIVE_FAILED",
    "PIPELINE_ARCHIVE_OK",
    "PIPELINE_DATA_FAILED",
    "PIPELINE_DATA_OK",
    "PIPELINE_DCT_CONFIG_FAILED",
    "PIPELINE_DCT_CONFIG_OK",
    "PIPELINE_FAILED",
    "PIPELINE_OK",
    "PLUGIN_CONFIG_FAILED",
    "PLUGIN_CONFIG_IN_PAUSE_FAILED",
    "PLUGIN_CONFIG_IN_PAUSE_OK",
    "PLUGIN_CONFIG_OK",
    "PLUGIN_DELAYED",
    "PLUGIN_INSTANCE_COMMAND_FAILED",
    "PLUGIN_INSTANCE_COMMAND_OK",
    "PLUGIN_PAUSE_FAILED",
    "PLUGIN_PAUSE_OK",
    "PLUGIN_RESUME_FAILED",
    "PLUGIN_RESUME_OK",
    "PLUGIN_WORKING_HOURS_SHIFT_END",
    "PLUGIN_WORKING_HOURS_SHIFT_END_FAILED",
    "PLUGIN_WORKING_HOURS_SHIFT_START",
    "PLUGIN_WORKING_HOURS_SHIFT_START_FAILED",
    "SERVING_START_FAILED",
    "SERVING_START_FATAL_FAIL",
    "SERVING_START_OK",
    "ExpectedResponse",
]

NORMAL = "NORMAL"
EXCEPTION = "EXCEPTION"
EMAIL = "EMAIL"
ABNORMAL_FUNCTIONING = "ABNORMAL FUNCTIONING"

PIPELINE_OK, PIPELINE_FAILED = 1, -1
PIPELINE_DATA_OK, PIPELINE_DATA_FAILED = 2, -2
PIPELINE_DCT_CONFIG_OK, PIPELINE_DCT_CONFIG_FAILED = 3, -3
PIPELINE_ARCHIVE_OK, PIPELINE_ARCHIVE_FAILED = 4, -4
PLUGIN_CONFIG_OK, PLUGIN_CONFIG_FAILED = 100, -100
PLUGIN_INSTANCE_COMMAND_OK, PLUGIN_INSTANCE_COMMAND_FAILED = 101, -101
PLUGIN_PAUSE_OK, PLUGIN_PAUSE_FAILED = 110, -110
PLUGIN_RESUME_OK, PLUGIN_RESUME_FAILED = 111, -111
PLUGIN_WORKING_HOURS_SHIFT_START, PLUGIN_WORKING_HOURS_SHIFT_START_FAILED = 112, -112
PLUGIN_WORKING_HOURS_SHIFT_END, PLUGIN_WORKING_HOURS_SHIFT_END_FAILED = 113, -113
PLUGIN_CONFIG_IN_PAUSE_OK, PLUGIN_CONFIG_IN_PAUSE_FAILED = 120, -120
PLUGIN_DELAYED = -999
COMMS_OK = 1000
COMM_RECEIVED_BAD_COMMAND = -5000
SERVING_START_OK, SERVING_START_FAILED = 10000, -10000
SERVING_START_FATAL_FAIL = -99999

#: ``NOTIFICATION_TAG`` text of each code.
NOTIFICATION_TAGS: dict[int, str] = {
    PIPELINE_OK: "PIPELINE_OK", PIPELINE_FAILED: "PIPELINE_FAILED",
    PIPELINE_DATA_OK: "PIPELINE_DATA_OK", PIPELINE_DATA_FAILED: "PIPELINE_DATA_FAILED",
    PIPELINE_DCT_CONFIG_OK: "PIPELINE_DCT_CONFIG_OK", PIPELINE_DCT_CONFIG_FAILED: "PIPELINE_DCT_CONFIG_FAILED",
    PIPELINE_ARCHIVE_OK: "PIPELINE_ARCHIVE_OK", PIPELINE_ARCHIVE_FAILED: "PIPELINE_ARCHIVE_FAILED",
    PLUGIN_CONFIG_OK: "PLUGIN_CONFIG_OK", PLUGIN_CONFIG_FAILED: "PLUGIN_CONFIG_FAILED",
    PLUGIN_INSTANCE_COMMAND_OK: "PLUGIN_INSTANCE_COMMAND_OK",
    PLUGIN_INSTANCE_COMMAND_FAILED: "PLUGIN_INSTANCE_COMMAND_FAILED",
    PLUGIN_PAUSE_OK: "PLUGIN_PAUSE_OK", PLUGIN_PAUSE_FAILED: "PLUGIN_PAUSE_FAILED",
    PLUGIN_RESUME_OK: "PLUGIN_RESUME_OK", PLUGIN_RESUME_FAILED: "PLUGIN_RESUME_FAILED",
    PLUGIN_WORKING_HOURS_SHIFT_START: "PLUGIN_WORKING_HOURS_SHIFT_START",
    PLUGIN_WORKING_HOURS_SHIFT_START_FAILED: "PLUGIN_WORKING_HOURS_SHIFT_START_FAILED",
    PLUGIN_WORKING_HOURS_SHIFT_END: "PLUGIN_WORKING_HOURS_SHIFT_END",
    PLUGIN_WORKING_HOURS_SHIFT_END_FAILED: "PLUGIN_WORKING_HOURS_SHIFT_END_FAILED",
    PLUGIN_CONFIG_IN_PAUSE_OK: "PLUGIN_CONFIG_IN_PAUSE_OK", PLUGIN_CONFIG_IN_PAUSE_FAILED: "PLUGIN_CONFIG_IN_PAUSE_FAILED",
    PLUGIN_DELAYED: "PLUGIN_DELAYED", COMMS_OK: "COMMS_OK", COMM_RECEIVED_BAD_COMMAND: "COMM_RECEIVED_BAD_COMMAND",
    SERVING_START_OK: "SERVING_START_OK", SERVING_START_FAILED: "SERVING_START_FAILED",
    SERVING_START_FATAL_FAIL: "SERVING_START_FATAL_FAIL",
}


def _path(notification: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    path = notification.get("EE_PAYLOAD_PATH")
    if isinstance(path, list) and len(path) == 4:
        return path[1], path[2], path[3]
    return notification.get("STREAM_NAME"), notification.get("SIGNATURE"), notification.get("INSTANCE_ID")


@dataclass(frozen=True)
class ExpectedResponse:
    """A notification that settles a command: where it comes from and which codes count.

    Pipeline-level responses match ``EE_PAYLOAD_PATH[1]`` (the pipeline);
    instance-level ones also ``[2]`` (signature, compared upper-cased) and
    ``[3]`` (instance id). The sender is not checked here: the session knows
    which node it sent to.
    """

    pipeline: str
    success: frozenset[int]
    failure: frozenset[int]
    signature: str | None = None
    instance_id: str | None = None

    @classmethod
    def pipeline_ok(cls, pipeline: str) -> ExpectedResponse:
        """Create / update pipeline: 1 / -1."""
        return cls(pipeline, frozenset({PIPELINE_OK}), frozenset({PIPELINE_FAILED}))

    @classmethod
    def pipeline_archived(cls, pipeline: str) -> ExpectedResponse:
        """Archive pipeline: 4 / -4."""
        return cls(pipeline, frozenset({PIPELINE_ARCHIVE_OK}), frozenset({PIPELINE_ARCHIVE_FAILED}))

    @classmethod
    def instance_configured(cls, pipeline: str, signature: str, instance_id: str) -> ExpectedResponse:
        """Instance config update: 100 / -100, or 120 / -120 for a paused instance."""
        return cls(pipeline, frozenset({PLUGIN_CONFIG_OK, PLUGIN_CONFIG_IN_PAUSE_OK}),
                   frozenset({PLUGIN_CONFIG_FAILED, PLUGIN_CONFIG_IN_PAUSE_FAILED}), signature, instance_id)

    @classmethod
    def instance_command(cls, pipeline: str, signature: str, instance_id: str) -> ExpectedResponse:
        """Instance command: 101 / -101."""
        return cls(pipeline, frozenset({PLUGIN_INSTANCE_COMMAND_OK}), frozenset({PLUGIN_INSTANCE_COMMAND_FAILED}),
                   signature, instance_id)

    @property
    def is_instance_level(self) -> bool:
        """True when the response concerns one instance."""
        return self.instance_id is not None

    def matches(self, notification: Mapping[str, Any]) -> bool:
        """The notification is about this response's pipeline (and instance)."""
        if not isinstance(notification, Mapping):
            return False
        pipeline, signature, instance_id = _path(notification)
        if pipeline != self.pipeline:
            return False
        if not self.is_instance_level:
            return True
        return (isinstance(signature, str) and signature.upper() == str(self.signature).upper()
                and instance_id == self.instance_id)

    def verdict(self, notification: Mapping[str, Any]) -> bool | None:
        """True (success), False (failure) or None (not this response's notification)."""
        if not self.matches(notification):
            return None
        code = notification.get("NOTIFICATION_CODE")
        if isinstance(code, bool) or not isinstance(code, int):
            return None
        if code in self.success:
            return True
        if code in self.failure:
            return False
        return None

    def reason(self, notification: Mapping[str, Any]) -> str:
        """The failure text: ``NOTIFICATION`` for pipelines, ``INFO`` for instances."""
        keys = ("INFO", "NOTIFICATION") if self.is_instance_level else ("NOTIFICATION", "INFO")
        for key in keys:
            value = notification.get(key)
            if value:
                return str(value)
        return f"node answered code {notification.get('NOTIFICATION_CODE')!r}"
