"""Captures: what went over the wire under a root topic, one JSON object a line.

A capture file (``pye2 capture``, :class:`CaptureWriter`) starts with a header
line and then holds one record per message, in arrival order::

    {"pye2_capture": 1, "root": "lummetry", "profile": "AIXP", "started": 1764825000.5, "source": "mqtt://host:1883"}
    {"time": 1764825001.25, "topic": "lummetry/ctrl", "body": "{\\"EE_ID\\": ...}"}
    {"time": 1764825001.5, "topic": "lummetry/payloads", "body": "gAN9cQA=", "encoding": "base64"}
    {"time": 1764825002.0, "topic": "lummetry/payloads", "omitted": "too_large", "size": 20000000}

* ``time``: when the capturing process received it (seconds since the epoch);
* ``body``: the bytes as received: UTF-8 text when they decode, else base64
  with ``"encoding": "base64"``;
* a body above the size limit is **skipped and counted**, not truncated: its
  record keeps ``topic``, ``time`` and ``size`` under ``"omitted": "too_large"``
  so the gap is visible, and a replay does not publish it.

Reading (:class:`CaptureReader`, :func:`read_capture`) is line by line and
never trusts the file: a line that is not such an object (bad JSON, missing or
wrongly typed fields, a wildcard in a topic, bad base64, a line longer than
the limit) is a :class:`MalformedLine` naming its line number, counted and
skipped (or raised as :class:`~pye2.errors.DecodeError` with ``strict=True``).
The header is optional, so a hand-written file of records is a capture too.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pye2.domain.logtext import clip
from pye2.errors import DecodeError
from pye2.ports.transport import Delivery

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT_VERSION",
    "Capture",
    "CaptureHeader",
    "CaptureReader",
    "CaptureRecord",
    "CaptureWriter",
    "MalformedLine",
    "encode_record",
    "parse_record",
    "read_capture",
    "topic_kind",
]

log = logging.getLogger(__name__)

#: version written in the header's ``pye2_capture`` field
FORMAT_VERSION = 1
#: bodies above this many bytes are omitted (the session's own message size limit)
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: seconds between flushes while capturing (and always on close)
FLUSH_INTERVAL = 0.25
#: malformed lines kept with their reasons (all are counted)
MAX_KEPT_PROBLEMS = 1000


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


def _parse_header(obj: dict[str, Any]) -> CaptureHeader:
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


class CaptureWriter:
    """Writes a capture to a text stream; thread-safe (transport threads call :meth:`record`).

    Args:
        stream: an open text stream (the writer flushes it, the caller closes it,
            unless the writer was built by :meth:`open`).
        max_bytes: bodies above this are omitted and counted (``omitted``).
        clock: wall-clock time for records written without an explicit time.
    """

    def __init__(self, stream: IO[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise DecodeError(f"max_bytes must be a non-negative integer, not {max_bytes!r}")
        self._stream = stream
        self._owned = False
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._closed = False
        #: messages written with their body
        self.written = 0
        #: messages omitted for their size (recorded as ``omitted`` lines)
        self.omitted = 0
        #: body bytes written
        self.bytes = 0
        #: messages arrived after close (not written)
        self.late = 0
        #: messages lost to a failed write (disk full ...); the first failure is logged
        self.write_errors = 0
        #: records by :func:`topic_kind`
        self.by_kind: Counter[str] = Counter()
        self.root: str | None = None

    @classmethod
    def open(cls, path: str | Path, **options: Any) -> CaptureWriter:
        """A writer on a new file at ``path`` (truncated if it exists), closed by :meth:`close`."""
        writer = cls(open(path, "w", encoding="utf-8", newline="\n"), **options)  # noqa: SIM115 - closed by close()
        writer._owned = True
        return writer

    def write_header(self, header: CaptureHeader) -> None:
        """Write the header line (once, before any record)."""
        with self._lock:
            self.root = header.root
            self._stream.write(header.to_json() + "\n")
            self._stream.flush()

    def record(self, topic: str, body: bytes, when: float | None = None) -> bool:
        """Append one message; False if it was omitted for its size (or the writer is closed)."""
        when = self._clock() if when is None else when
        size = len(body)
        keep = size <= self.max_bytes
        line = json.dumps(encode_record(when, topic, body if keep else None, size=size), ensure_ascii=False)
        with self._lock:
            if self._closed:
                self.late += 1
                return False
            try:
                self._stream.write(line + "\n")
            except OSError as exc:
                self.write_errors += 1
                if self.write_errors == 1:
                    log.error("capture: cannot write to the file (%s); messages are being lost", exc)
                return False
            if keep:
                self.written += 1
                self.bytes += size
            else:
                self.omitted += 1
                log.warning("capture: omitted a %d-byte message on %s (over %d bytes)", size, clip(topic, 120),
                            self.max_bytes)
            self.by_kind[topic_kind(topic, self.root)] += 1
            now = time.monotonic()
            if now - self._last_flush >= FLUSH_INTERVAL:
                self._last_flush = now
                try:
                    self._stream.flush()
                except OSError as exc:
                    self.write_errors += 1
                    log.error("capture: cannot flush the file (%s)", exc)
        return keep

    def handler(self, clock: Callable[[], float] | None = None) -> Callable[[Delivery], None]:
        """A transport handler that records each delivery at ``clock()`` (default: the writer's clock)."""
        now = clock or self._clock

        def on_delivery(delivery: Delivery) -> None:
            self.record(delivery.address, delivery.body, now())

        return on_delivery

    def flush(self) -> None:
        """Push what was written to the file."""
        with self._lock:
            if not self._closed:
                self._stream.flush()

    def close(self) -> None:
        """Flush, stop accepting records and close the file if the writer opened it (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._stream.flush()
                if self._owned:
                    self._stream.close()
            except OSError as exc:
                self.write_errors += 1
                log.error("capture: cannot finish writing the file (%s)", exc)

    @property
    def messages(self) -> int:
        """Records written, omitted ones included."""
        return self.written + self.omitted


class CaptureReader:
    """Reads records from a capture's lines, counting (and keeping) malformed ones.

    Iterate it once for the records; :attr:`header` is known after the first
    line (read it with :meth:`read_header` before iterating if needed).

    Args:
        stream: a text stream (an open file, ``io.StringIO``).
        strict: raise :class:`~pye2.errors.DecodeError` at the first malformed
            line instead of skipping it.
        max_line_chars: longer lines are malformed (and skipped without being held
            in memory whole).
        on_malformed: called with each :class:`MalformedLine` as it is found.
    """

    def __init__(self, stream: IO[str], *, strict: bool = False, max_line_chars: int = 4 * DEFAULT_MAX_BYTES,
                 on_malformed: Callable[[MalformedLine], None] | None = None) -> None:
        self._stream = stream
        self.strict = strict
        self.max_line_chars = max_line_chars
        self._on_malformed = on_malformed
        self.header: CaptureHeader | None = None
        #: the first :data:`MAX_KEPT_PROBLEMS` malformed lines
        self.malformed: list[MalformedLine] = []
        #: how many lines were malformed
        self.malformed_count = 0
        self.records_read = 0
        self._line = 0
        self._pending: CaptureRecord | None = None
        self._started = False

    def _problem(self, reason: str) -> None:
        problem = MalformedLine(self._line, reason)
        if self.strict:
            raise DecodeError(str(problem))
        self.malformed_count += 1
        if len(self.malformed) < MAX_KEPT_PROBLEMS:
            self.malformed.append(problem)
        if self._on_malformed is not None:
            self._on_malformed(problem)

    def _next_line(self) -> str | None:
        """The next line without its newline; None at the end. Over-long lines are reported and skipped."""
        while True:
            raw = self._stream.readline(self.max_line_chars + 1)
            if not raw:
                return None
            self._line += 1
            if len(raw) > self.max_line_chars and not raw.endswith("\n"):
                while raw and not raw.endswith("\n"):  # skip the rest of the line, piece by piece
                    raw = self._stream.readline(self.max_line_chars + 1)
                self._problem(f"longer than {self.max_line_chars} characters")
                continue
            return raw.rstrip("\r\n")

    def _parse(self, text: str, *, first: bool) -> CaptureRecord | None:
        if not text.strip():
            return None
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._problem(f"not JSON ({clip(str(exc), 80)})")
            return None
        try:
            if first and isinstance(obj, dict) and "pye2_capture" in obj:
                self.header = _parse_header(obj)
                return None
            return parse_record(obj)
        except DecodeError as exc:
            self._problem(str(exc))
            return None

    def read_header(self) -> CaptureHeader | None:
        """Read up to the first record and return the header (None if the file has none)."""
        if not self._started:
            self._started = True
            while True:
                text = self._next_line()
                if text is None:
                    break
                record = self._parse(text, first=self._line == 1)
                if record is not None:
                    self._pending = record
                    break
        return self.header

    def peek(self) -> CaptureRecord | None:
        """The first record, without consuming it (None if the capture has none); reads the header."""
        self.read_header()
        return self._pending

    def __iter__(self) -> Iterator[CaptureRecord]:
        self.read_header()
        if self._pending is not None:
            record, self._pending = self._pending, None
            self.records_read += 1
            yield record
        while True:
            text = self._next_line()
            if text is None:
                return
            parsed = self._parse(text, first=False)
            if parsed is not None:
                self.records_read += 1
                yield parsed


@dataclass
class Capture:
    """A whole capture in memory (see :func:`read_capture`)."""

    header: CaptureHeader | None
    records: list[CaptureRecord] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)
    malformed_count: int = 0

    @property
    def root(self) -> str | None:
        """The header's root, else the first level of the first record's topic."""
        if self.header is not None:
            return self.header.root
        return self.records[0].topic.split("/")[0] if self.records else None


def read_capture(source: str | Path | IO[str] | Iterable[str], *, strict: bool = False) -> Capture:
    """Read a whole capture file (a path, an open text stream or lines).

    Raises:
        DecodeError: with ``strict=True``, at the first malformed line.
        OSError: the file cannot be read.
    """
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            return read_capture(fh, strict=strict)
    if not hasattr(source, "readline"):
        import io

        source = io.StringIO("".join(line if line.endswith("\n") else line + "\n" for line in source))
    reader = CaptureReader(source, strict=strict)  # type: ignore[arg-type]
    records = list(reader)
    return Capture(reader.header, records, reader.malformed, reader.malformed_count)
