"""Inbound events: what a decoded, verified wire message means to a client.

Pure functions turn a flat message dict (after signature check, decryption,
formatter and heartbeat decoding) into one of the frozen events below, or
raise :class:`~pye2.errors.DecodeError` when a field the client needs is
missing or has the wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pye2.domain.codecs.heartbeat_view import HeartbeatView
from pye2.errors import DecodeError

__all__ = [
    "KIND_HEARTBEAT",
    "KIND_NOTIFICATION",
    "KIND_PAYLOAD",
    "Event",
    "HeartbeatEvent",
    "NotificationEvent",
    "PayloadEvent",
    "Rejected",
    "heartbeat_event",
    "notification_event",
    "payload_event",
]

KIND_HEARTBEAT = "heartbeat"
KIND_NOTIFICATION = "notification"
KIND_PAYLOAD = "payload"


@dataclass(frozen=True, slots=True)
class HeartbeatEvent:
    """A node's heartbeat; ``data`` is the merged view (v2 inflated over the outer dict).

    A v2 ``data`` built with ``decode_heartbeat(..., lazy=True)`` is a
    :class:`~pye2.domain.codecs.heartbeat_view.HeartbeatView`, decoded on its
    first read; ``alias`` and ``address`` come from its envelope, so building
    and routing the event never decodes it.
    """

    alias: str
    address: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """A node's notification (``code`` may be None)."""

    alias: str
    address: str | None
    pipeline: str | None
    signature: str | None
    instance_id: str | None
    code: int | None
    type: str | None
    text: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PayloadEvent:
    """A plugin instance's payload (``signature`` upper-cased, as the SDK always did)."""

    alias: str
    address: str | None
    pipeline: str | None
    signature: str
    instance_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that was not delivered, and why (``reason`` is a short stable key)."""

    reason: str
    detail: str = ""
    sender: str | None = None
    kind: str | None = None


Event = HeartbeatEvent | NotificationEvent | PayloadEvent


def _alias(message: Mapping[str, Any]) -> str:
    alias = message.get("EE_ID", message.get("SB_ID"))
    if not isinstance(alias, str) or not alias:
        raise DecodeError("message has no EE_ID (node id)")
    return alias


def _address(message: Mapping[str, Any]) -> str | None:
    sender = message.get("EE_SENDER")
    return sender if isinstance(sender, str) and sender else None


def _path(message: Mapping[str, Any]) -> list[Any]:
    path = message.get("EE_PAYLOAD_PATH")
    if isinstance(path, list) and len(path) == 4:
        return path
    return [None, None, None, None]


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def heartbeat_event(view: Mapping[str, Any]) -> HeartbeatEvent:
    """Build the event from a decoded heartbeat view (see ``decode_heartbeat``).

    A :class:`~pye2.domain.codecs.heartbeat_view.HeartbeatView` becomes the
    event's data as it is, still undecoded: the node is named by its
    envelope's ``EE_ID`` / ``EE_SENDER`` (what the original SDKs read before
    decoding, spec section 3), and its status is checked when first read.
    Any other view is copied and its pipeline list checked now.
    """
    if isinstance(view, HeartbeatView):
        envelope = view.envelope
        return HeartbeatEvent(alias=_alias(envelope), address=_address(envelope), data=view)
    streams = view.get("CONFIG_STREAMS", view.get("PIPELINES"))
    if streams is not None and not isinstance(streams, list):
        raise DecodeError("CONFIG_STREAMS is not a list")
    return HeartbeatEvent(alias=_alias(view), address=_address(view), data=dict(view))


def notification_event(message: Mapping[str, Any]) -> NotificationEvent:
    """Build the event from a flat notification dict."""
    path = _path(message)
    code = message.get("NOTIFICATION_CODE")
    if isinstance(code, bool) or not isinstance(code, int):
        code = None
    text = message.get("NOTIFICATION")
    signature = _opt_str(message.get("SIGNATURE")) or _opt_str(path[2])
    return NotificationEvent(
        alias=_alias(message),
        address=_address(message),
        pipeline=_opt_str(message.get("STREAM_NAME")) or _opt_str(path[1]),
        signature=signature.upper() if signature else None,
        instance_id=_opt_str(message.get("INSTANCE_ID")) or _opt_str(path[3]),
        code=code,
        type=_opt_str(message.get("NOTIFICATION_TYPE")),
        text=text if isinstance(text, str) else "",
        data=dict(message),
    )


def payload_event(message: Mapping[str, Any]) -> PayloadEvent:
    """Build the event from a flat payload dict (pipeline from ``STREAM`` as in spec 5)."""
    path = _path(message)
    pipeline = _opt_str(message.get("STREAM")) or _opt_str(message.get("STREAM_NAME")) or _opt_str(path[1])
    signature = message.get("SIGNATURE", path[2])
    return PayloadEvent(
        alias=_alias(message),
        address=_address(message),
        pipeline=pipeline,
        signature=signature.upper() if isinstance(signature, str) else "",
        instance_id=_opt_str(message.get("INSTANCE_ID")) or _opt_str(path[3]),
        data=dict(message),
    )
