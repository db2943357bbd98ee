"""The capture file format: header and record lines, and their strict parsing (see :mod:`pye2.capture`)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from pye2.domain.logtext import clip
from pye2.errors import DecodeError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT_VERSION",
    "CaptureHeader",
    "CaptureRecord",
    "MalformedLine",
    "encode_record",
    "parse_header",
    "parse_record",
    "topic_kind",
]

#: version written in the header's ``pye2_capture`` field
FORMAT_VERSION = 1
#: bodies above this many bytes are omitted (the session's own message size limit)
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CaptureHeader:
    """The first line of a capture: where and how it was taken."""

    root: str
    profile: str | None = None
    started: float | None = None
    source: str | None = None
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """The header as one JSON line (without the newline)."""
        data: dict[str, Any] = {"pye2_capture": self.version, "root": self.root}
        for key in ("profile", "started", "source"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One captured message. ``body`` is None when it was omitted (see ``omitted``)."""

    time: float
    topic: str
    body: bytes | None
    size: int
    omitted: str | None = None

    def to_json(self) -> str:
        """The record as one JSON line (without the newline)."""
        return json.dumps(encode_record(self.time, self.topic, self.body, omitted=self.omitted, size=self.size),
                          ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line of a capture file that is not a record, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def encode_record(when: float, topic: str, body: bytes | None, *, omitted: str | None = None,
                  size: int | None = None) -> dict[str, Any]:
    """The JSON object of one record: text bodies as text, others as base64 with a marker."""
    data: dict[str, Any] = {"time": round(when, 6), "topic": topic}
    if body is None:
        data["omitted"] = omitted or "too_large"
        data["size"] = int(size or 0)
        return data
    try:
        data["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        data["body"] = base64.b64encode(body).decode("ascii")
        data["encoding"] = "base64"
    return data


def _valid_topic(topic: object) -> bool:
    return (isinstance(topic, str) and bool(topic) and len(topic) <= 65535
            and not any(c in topic for c in "+#\x00"))


def parse_record(obj: object) -> CaptureRecord:
    """A record from a decoded JSON line.

    Raises:
        DecodeError: not a record (the message says which field is wrong).
    """
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got a JSON {type(obj).__name__}")
    when = obj.get("time")
    if isinstance(when, bool) or not isinstance(when, (int, float)) or not math.isfinite(when) or when < 0:
        raise DecodeError("'time' must be a non-negative number of seconds")
    topic = obj.get("topic")
    if not _valid_topic(topic):
        raise DecodeError("'topic' must be a non-empty topic without wildcards")
    assert isinstance(topic, str)
    if "omitted" in obj:
        size = obj.get("size")
        if not isinstance(obj["omitted"], str) or isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise DecodeError("an omitted record needs 'omitted' (text) and 'size' (a count of bytes)")
        return CaptureRecord(float(when), topic, None, size, omitted=obj["omitted"])
    text = obj.get("body")
    if not isinstance(text, str):
        raise DecodeError("'body' must be text")
    encoding = obj.get("encoding")
    if encoding is None:
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError("'body' holds an unpaired surrogate (not UTF-8 text)") from None
    elif encoding == "base64":
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("'body' is marked base64 but is not valid base64") from None
    else:
        raise DecodeError(f"unknown 'encoding' {clip(str(encoding), 40)!r} (only 'base64')")
    return CaptureRecord(float(when), topic, body, len(body))


def parse_header(obj: dict[str, Any]) -> CaptureHeader:
    """The header from a decoded first line.

    Raises:
        DecodeError: not a header this pye2 reads.
    """
    version, root = obj.get("pye2_capture"), obj.get("root")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DecodeError("'pye2_capture' must be the format version (an integer)")
    if version > FORMAT_VERSION:
        raise DecodeError(f"capture format {version} is newer than this pye2 reads ({FORMAT_VERSION})")
    if not isinstance(root, str) or not root or len(root) > 255 or any(c in root for c in "/+#\x00"):
        raise DecodeError("'root' must be a topic root (one level, no wildcards)")
    profile, started, source = obj.get("profile"), obj.get("started"), obj.get("source")
    if profile is not None and (not isinstance(profile, str) or not profile.isalnum() or len(profile) > 40):
        raise DecodeError("'profile' must be a profile name such as AIXP or RATIO1")
    return CaptureHeader(
        root=root,
        profile=profile,
        started=float(started) if isinstance(started, (int, float)) and not isinstance(started, bool) else None,
        source=clip(source, 200) if isinstance(source, str) else None,
        version=version,
    )


def topic_kind(topic: str, root: str | None = None) -> str:
    """What a topic carries, for summaries: ``ctrl``, ``notif``, ``payloads``, ``config`` or the level."""
    levels = topic.split("/")
    if root is not None and levels[0] != root:
        return "other"
    rest = levels[1:]
    if not rest:
        return "root"
    if rest[0] in ("ctrl", "notif", "payloads"):
        return rest[0]
    return rest[-1] if len(rest) > 1 else rest[0]
