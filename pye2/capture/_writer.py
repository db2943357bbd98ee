"""CaptureWriter: appends records to a capture file from transport threads (see :mod:`pye2.capture`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pye2.capture._format import DEFAULT_MAX_BYTES, CaptureHeader, encode_record, topic_kind
from pye2.domain.logtext import clip
from pye2.errors import DecodeError
from pye2.ports.transport import Delivery

__all__ = ["FLUSH_INTERVAL", "CaptureWriter"]

log = logging.getLogger("pye2.capture")

#: seconds between flushes while capturing (and always on close)
FLUSH_INTERVAL = 0.25


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
