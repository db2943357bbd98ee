"""Notification bodies as a real node builds them (node.md section 4, samples/).

Only the body: the node's envelope (``EE_*``, ``EE_PAYLOAD_PATH``...) and the
signature are added when publishing. Field sets follow the captured samples:
``MODULE``, ``NOTIFICATION_TYPE``, ``NOTIFICATION`` (at most 255 characters),
``NOTIFICATION_CODE``, ``NOTIFICATION_TAG`` (the code's name, null without a
code), ``INFO`` (with the node's version prefix), ``STREAM_NAME``,
``TIMESTAMP``, ``ERROR_CODE`` (the code when negative), ``DISPLAYED`` where
the real node sets it, plugin-level ones ``SIGNATURE``, ``INSTANCE_ID``,
``VERSION`` and ``USE_LOCAL_COMMS_ONLY``, plus upper-cased extras.
"""

from __future__ import annotations

from typing import Any

from pye2.domain.commands import ABNORMAL_FUNCTIONING, EXCEPTION, NORMAL, NOTIFICATION_TAGS

__all__ = [
    "ABNORMAL",
    "CODE_TAGS",
    "CORE_VERSION",
    "EXCEPTION",
    "NORMAL",
    "SDK_VERSION",
    "Notice",
    "instance_label",
    "notification_body",
]

ABNORMAL = ABNORMAL_FUNCTIONING

CORE_VERSION = "7.7.336"
SDK_VERSION = "3.5.60"
_INFO_PREFIX = f"EE app vNone, core v{CORE_VERSION}, SDK v{SDK_VERSION}, info text: "
_MAX_TEXT = 255

#: notification code -> ``NOTIFICATION_TAG`` (PyE2 const/payload.py names)
CODE_TAGS = NOTIFICATION_TAGS


def instance_label(stream: str, signature: str, instance_id: str) -> str:
    """``<stream='X' sign='S' inst='I'>``, as plugin notifications name an instance."""
    return f"<stream='{stream}' sign='{signature}' inst='{instance_id}'>"


class Notice:
    """What one notification says and about what (the node adds the rest).

    Attributes:
        module: emitting class name (``ConfigManager``, ``CustomExec01Plugin``...).
        ntype: ``NORMAL``, ``EXCEPTION`` or ``ABNORMAL FUNCTIONING``.
        text: the ``NOTIFICATION`` text.
        code: ``NOTIFICATION_CODE`` or None.
        info: text after the ``INFO`` prefix (None prints ``None`` as the node does).
        stream / signature / instance_id: what it is about (path and fields).
        initiator_id / session_id: from the command or pipeline that caused it.
        displayed: ``DISPLAYED`` (None: the field is absent, as in some samples).
        version: plugin version (plugin notifications only).
        extra: more fields, upper-cased (``PLUGIN_RUNNING``...).
    """

    __slots__ = (
        "code",
        "displayed",
        "extra",
        "info",
        "initiator_id",
        "instance_id",
        "module",
        "ntype",
        "session_id",
        "signature",
        "stream",
        "text",
        "version",
    )

    def __init__(self, module: str, ntype: str, text: str, code: int | None = None, *, info: str | None = None,
                 stream: str | None = None, signature: str | None = None, instance_id: str | None = None,
                 initiator_id: str | None = None, session_id: str | None = None, displayed: bool | None = True,
                 version: str | None = None, extra: dict[str, Any] | None = None) -> None:
        self.module, self.ntype, self.text, self.code, self.info = module, ntype, text, code, info
        self.stream, self.signature, self.instance_id = stream, signature, instance_id
        self.initiator_id, self.session_id, self.displayed = initiator_id, session_id, displayed
        self.version, self.extra = version, extra

    @property
    def path(self) -> tuple[str | None, str | None, str | None]:
        """``(stream, signature, instance)`` for ``EE_PAYLOAD_PATH``."""
        return (self.stream, self.signature, self.instance_id)


def notification_body(notice: Notice, timestamp: str) -> dict[str, Any]:
    """The notification body of ``notice`` (``timestamp`` in the node's text format)."""
    code = notice.code
    body: dict[str, Any] = {
        "MODULE": notice.module,
        "NOTIFICATION_TYPE": notice.ntype,
        "NOTIFICATION": notice.text[:_MAX_TEXT],
        "NOTIFICATION_CODE": code,
        "NOTIFICATION_TAG": CODE_TAGS.get(code) if code is not None else None,
        "INFO": _INFO_PREFIX + str(notice.info),
        "STREAM_NAME": notice.stream,
        "TIMESTAMP": timestamp,
        "ERROR_CODE": code if code is not None and code < 0 else None,
    }
    if notice.displayed is not None:
        body["DISPLAYED"] = notice.displayed
    if notice.signature is not None:
        body["SIGNATURE"] = notice.signature
    if notice.instance_id is not None:
        body["INSTANCE_ID"] = notice.instance_id
    if notice.version is not None:
        body["VERSION"] = notice.version
        if notice.ntype != EXCEPTION:  # the real node's plugin exceptions lack it (samples)
            body["USE_LOCAL_COMMS_ONLY"] = False
    body["INITIATOR_ID"] = notice.initiator_id
    body["SESSION_ID"] = notice.session_id
    if notice.extra:
        for key, value in notice.extra.items():
            body[str(key).upper()] = value
    return body
