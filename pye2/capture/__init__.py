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

from pye2.capture._format import (
    DEFAULT_MAX_BYTES,
    FORMAT_VERSION,
    CaptureHeader,
    CaptureRecord,
    MalformedLine,
    encode_record,
    parse_header,
    parse_record,
    topic_kind,
)
from pye2.capture._reader import Capture, CaptureReader, read_capture
from pye2.capture._writer import CaptureWriter

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
    "parse_header",
    "parse_record",
    "read_capture",
    "topic_kind",
]
