"""Reading captures line by line, never trusting the file (see :mod:`pye2.capture`)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pye2.capture._format import (
    DEFAULT_MAX_BYTES,
    CaptureHeader,
    CaptureRecord,
    MalformedLine,
    parse_header,
    parse_record,
)
from pye2.domain.logtext import clip
from pye2.errors import DecodeError

__all__ = ["MAX_KEPT_PROBLEMS", "Capture", "CaptureReader", "read_capture"]

#: malformed lines kept with their reasons (all are counted)
MAX_KEPT_PROBLEMS = 1000


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
                self.header = parse_header(obj)
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
        source = io.StringIO("".join(line if line.endswith("\n") else line + "\n" for line in source))
    reader = CaptureReader(source, strict=strict)  # type: ignore[arg-type]
    records = list(reader)
    return Capture(reader.header, records, reader.malformed, reader.malformed_count)
