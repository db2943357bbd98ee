"""Pure codecs of the wire: custom code, its checker, heartbeats, formatters.

Everything here takes and returns plain values (str, dict) and raises only
:mod:`pye2.errors` types: decoders raise :class:`~pye2.errors.DecodeError`
(or its :class:`~pye2.errors.DecompressionBomb`), encoders
:class:`~pye2.errors.ConfigError` or :class:`~pye2.errors.CodeCheckError`.
"""

from __future__ import annotations

from pye2.domain.codecs.checker import check_code
from pye2.domain.codecs.code import (
    DEFAULT_MAX_INFLATED,
    base64_to_code,
    code_to_base64,
    compress_text,
    decompress_text,
)
from pye2.domain.codecs.formatters import Aixp1Formatter, Cavi2Formatter, DefaultFormatter, formatter_name
from pye2.domain.codecs.heartbeat import (
    HeartbeatSummary,
    decode_heartbeat,
    encode_heartbeat,
    summarize_heartbeat,
)

__all__ = [
    "DEFAULT_MAX_INFLATED",
    "Aixp1Formatter",
    "Cavi2Formatter",
    "DefaultFormatter",
    "HeartbeatSummary",
    "base64_to_code",
    "check_code",
    "code_to_base64",
    "compress_text",
    "decode_heartbeat",
    "decompress_text",
    "encode_heartbeat",
    "formatter_name",
    "summarize_heartbeat",
]
