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
    "MAX_NAME_CHARS",
    "Event",
    "HeartbeatEvent",
    "NotificationEvent",
    "PayloadEvent",
    "Rejected",
    "heartbeat_event",
    "node_time",
    "notification_event",
    "payload_event",
]

KIND_HEARTBEAT = "heartbeat"
KIND_NOTIFICATION = "notification"
KIND_PAYLOAD = "payload"

#: longest node name (``EE_ID``) accepted; real ones are a few dozen characters
MAX_NAME_CHARS = 256


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
    digest: str | None = None
    verified: bool = True
    #: bytes of the message as received (what the node's record may retain of it, at most)
    size: int = 0


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """A node's notification (``code`` may be None).

    ``sent_at``: the node's signed ``EE_TIMESTAMP`` as seconds since the epoch
    (None when it or its ``EE_TIMEZONE`` is missing or unreadable).
    """

    alias: str
    address: str | None
    pipeline: str | None
    signature: str | None
    instance_id: str | None
    code: int | None
    type: str | None
    text: str
    data: dict[str, Any]
    digest: str | None = None
    verified: bool = True
    sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class PayloadEvent:
    """A plugin instance's payload (``signature`` upper-cased, as the SDK always did)."""

    alias: str
    address: str | None
    pipeline: str | None
    signature: str
    instance_id: str | None
    data: dict[str, Any]
    digest: str | None = None
    verified: bool = True


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
    if len(alias) > MAX_NAME_CHARS:
        raise DecodeError(f"EE_ID is {len(alias)} characters long (at most {MAX_NAME_CHARS})")
    return alias


def _digest(message: Mapping[str, Any]) -> str | None:
    """What makes the message unique: ``EE_HASH``, else its signature (for replay detection)."""
    digest = message.get("EE_HASH") or message.get("EE_SIGN")
    return digest if isinstance(digest, str) and digest else None


def node_time(stamp: Any, zone: Any) -> float | None:
    """Seconds since the epoch of a node's ``EE_TIMESTAMP`` (``"YYYY-MM-DD HH:MM:SS[.ffffff]"``, local
    time) and ``EE_TIMEZONE`` (``"UTC+2"``, ``"UTC-5:30"``, ``"UTC"``); None if either is missing or unreadable.
    """
    if not isinstance(stamp, str) or not isinstance(zone, str) or len(stamp) < 19 or len(stamp) > 32:
        return None
    zone = zone.strip().upper()
    if not zone.startswith(("UTC", "GMT")):
        return None
    offset = zone[3:]
    try:
        if offset:
            sign = -1 if offset[0] == "-" else 1
            if offset[0] not in "+-":
                return None
            hours, _, minutes = offset[1:].partition(":")
            shift = sign * (int(hours) * 3600 + (int(minutes) * 60 if minutes else 0))
            if abs(shift) > 18 * 3600:
                return None
        else:
            shift = 0
        if stamp[4] != "-" or stamp[7] != "-" or stamp[10] not in " T" or stamp[13] != ":" or stamp[16] != ":":
            return None
        days = _days_from_civil(int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]))
        seconds = int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
        fraction = float("0" + stamp[19:]) if len(stamp) > 19 and stamp[19] == "." else 0.0
    except ValueError:
        return None
    return days * 86400 + seconds + fraction - shift


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (raises ValueError when out of range)."""
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1970 <= year <= 9999):
        raise ValueError("date out of range")
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


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


def heartbeat_event(view: Mapping[str, Any], size: int = 0) -> HeartbeatEvent:
    """Build the event from a decoded heartbeat view (see ``decode_heartbeat``).

    ``size``: bytes of the message as received.

    A :class:`~pye2.domain.codecs.heartbeat_view.HeartbeatView` becomes the
    event's data as it is, still undecoded: the node is named by its
    envelope's ``EE_ID`` / ``EE_SENDER`` (what the original SDKs read before
    decoding, spec section 3), and its status is checked when first read.
    Any other view is copied and its pipeline list checked now.
    """
    if isinstance(view, HeartbeatView):
        envelope = view.envelope
        return HeartbeatEvent(alias=_alias(envelope), address=_address(envelope), data=view,
                              digest=_digest(envelope), size=size)
    streams = view.get("CONFIG_STREAMS", view.get("PIPELINES"))
    if streams is not None and not isinstance(streams, list):
        raise DecodeError("CONFIG_STREAMS is not a list")
    return HeartbeatEvent(alias=_alias(view), address=_address(view), data=dict(view), digest=_digest(view),
                          size=size)


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
        digest=_digest(message),
        sent_at=node_time(message.get("EE_TIMESTAMP"), message.get("EE_TIMEZONE")),
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
        data=message if type(message) is dict else dict(message),  # a freshly parsed dict is ours: no copy
        digest=_digest(message),
    )
