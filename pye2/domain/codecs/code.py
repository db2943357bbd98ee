"""Custom code and compressed text: UTF-8 -> zlib level 9 -> standard base64.

The same pair serves two wire fields:

* the ``CODE`` parameter of ``CUSTOM_EXEC_01`` instances (``code_to_base64`` /
  ``base64_to_code``), byte-identical to ratio1 and PyE2 42ee127;
* heartbeat ``ENCODED_DATA`` (``compress_text`` / ``decompress_text``).

Decoding follows the originals where they accept input (standard base64 read
leniently, any zlib level, trailing bytes after the zlib stream ignored) but
raises :class:`~pye2.errors.DecodeError` where they returned ``None``
(DECISIONS 8), and never inflates more than ``max_size`` bytes
(DECISIONS 6): a zip bomb is refused with
:class:`~pye2.errors.DecompressionBomb` after at most ``max_size + 1`` bytes of
output have been produced, and a text too long to be the compressed form of at
most ``max_size`` bytes (see :func:`max_compressed_chars`) is refused so
before it is even base64-decoded.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Collection

from pye2.domain.codecs.checker import check_code
from pye2.errors import CodeCheckError, ConfigError, DecodeError, DecompressionBomb

__all__ = [
    "DEFAULT_MAX_INFLATED",
    "ZLIB_LEVEL",
    "b64_to_bytes",
    "base64_to_code",
    "code_to_base64",
    "compress_text",
    "decompress_text",
    "inflate",
    "max_compressed_chars",
]

#: zlib level every original uses for code and heartbeats.
ZLIB_LEVEL = 9

#: Default cap on inflated size (16 MiB). A full heartbeat with logs is a few
#: hundred kB and custom code a few kB, so this leaves a wide margin while
#: keeping a hostile message from taking more than a bounded amount of memory.
DEFAULT_MAX_INFLATED = 16 * 1024 * 1024


def _check_max_size(max_size: int) -> None:
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
        raise ConfigError(f"max_size must be a positive int, not {max_size!r}")


def max_compressed_chars(max_size: int) -> int:
    """The longest base64 text of a zlib stream that inflates to at most ``max_size`` bytes.

    Deflate can only grow incompressible data, by a little: zlib's
    conservative ``deflateBound`` (any level, window or memory level, e.g.
    level 9 with ``memLevel=1`` adds about 4 %) is ``n + n/8 + n/64 + 5``
    bytes for ``n`` bytes in, plus 6 of zlib header and checksum; base64 then
    writes 4 characters for every 3 bytes. A longer text holds a stream that
    inflates beyond ``max_size``, or junk (line breaks, trailing bytes, flushes
    no compressor makes by itself): either way, not a status or code within
    the cap. For the 4 MiB status cap this is about 6.4 M characters.

    Raises:
        ConfigError: ``max_size`` is not a positive int.
    """
    _check_max_size(max_size)
    compressed = max_size + (max_size + 7) // 8 + (max_size + 63) // 64 + 5 + 6
    return 4 * -(-compressed // 3)


def _check_compressed_length(text: str | bytes | bytearray, max_size: int) -> None:
    # Only text can be measured; anything else is refused by b64_to_bytes in its own words.
    if isinstance(text, (str, bytes, bytearray)) and len(text) > max_compressed_chars(max_size):
        raise DecompressionBomb(f"compressed text of {len(text)} characters is longer than any that inflates "
                                f"to at most {max_size} bytes; refused without inflating it")


def _utf8(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be str, not {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{what} is not encodable as UTF-8: {exc.reason} at index {exc.start}") from exc


def _b64_text(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64_to_bytes(text: str) -> bytes:
    """Decode standard base64 the way the originals do.

    Like Python's default ``b64decode`` (which ratio1 and 42ee127 call),
    characters outside the alphabet, such as line breaks, are skipped, so
    everything the originals accept is accepted. Padding errors and non-ASCII
    text raise :class:`DecodeError`.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise DecodeError(f"base64 input must be text, not {type(text).__name__}")
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"not valid base64: {exc}") from exc


def inflate(data: bytes, *, max_size: int = DEFAULT_MAX_INFLATED) -> bytes:
    """Inflate one zlib stream, refusing to produce more than ``max_size`` bytes.

    Raises:
        DecompressionBomb: the stream inflates to more than ``max_size`` bytes.
        DecodeError: the bytes are not a complete zlib stream.
        ConfigError: ``max_size`` is not a positive int.
    """
    _check_max_size(max_size)
    inflater = zlib.decompressobj()
    try:
        # Ask for one byte more than allowed: getting it proves the cap is exceeded
        # without ever holding more than max_size + 1 bytes.
        out = inflater.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise DecodeError(f"not valid zlib data: {exc}") from exc
    if len(out) > max_size:
        raise DecompressionBomb(f"compressed data inflates to more than {max_size} bytes")
    if not inflater.eof:
        raise DecodeError("not valid zlib data: incomplete or truncated stream")
    # Bytes after the end of the stream are ignored, as zlib.decompress does.
    return out


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"decoded data is not UTF-8: {exc.reason} at byte {exc.start}") from exc


def compress_text(text: str) -> str:
    """UTF-8 -> zlib level 9 -> standard base64 (with padding).

    Raises:
        ConfigError: ``text`` is not a str or cannot be encoded as UTF-8.
    """
    return _b64_text(zlib.compress(_utf8(text, "text"), ZLIB_LEVEL))


def decompress_text(text: str, *, max_size: int = DEFAULT_MAX_INFLATED) -> str:
    """Reverse of :func:`compress_text` (any zlib level is accepted).

    Raises:
        DecodeError: not base64, not zlib, or not UTF-8.
        DecompressionBomb: the text would inflate beyond ``max_size`` bytes,
            or is longer than :func:`max_compressed_chars` (refused unread).
        ConfigError: ``max_size`` is not a positive int.
    """
    _check_compressed_length(text, max_size)
    return _text(inflate(b64_to_bytes(text), max_size=max_size))


def code_to_base64(
    code: str,
    *,
    compress: bool = True,
    check: bool = False,
    safe_imports: Collection[str] = (),
) -> str:
    """Encode plain Python source for a custom code plugin (``CODE`` parameter).

    UTF-8 bytes, zlib level 9 unless ``compress`` is False, standard base64
    with padding: byte for byte what ratio1 and PyE2 42ee127 produce.

    Args:
        code: the Python source.
        compress: zlib the bytes first (nodes expect compressed code).
        check: run the safety checker of the nodes first (see
            :func:`pye2.domain.codecs.checker.check_code`).
        safe_imports: modules the checker lets through (only with ``check``).

    Raises:
        CodeCheckError: ``check`` is set and the checker refuses the code;
            ``.errors`` maps each error text to its line numbers.
        ConfigError: ``code`` is not a str or cannot be encoded as UTF-8.
    """
    raw = _utf8(code, "code")
    if check:
        errors = check_code(code, safe_imports)
        if errors:
            raise CodeCheckError(errors)
    if compress:
        raw = zlib.compress(raw, ZLIB_LEVEL)
    return _b64_text(raw)


def base64_to_code(text: str, *, decompress: bool = True, max_size: int = DEFAULT_MAX_INFLATED) -> str:
    """Decode a ``CODE`` value back to Python source.

    With ``decompress`` (the default, as in the originals) the base64 must
    hold a zlib stream of any level; ``decompress=False`` reads base64 of plain
    UTF-8, what ``code_to_base64(..., compress=False)`` writes.

    Raises:
        DecodeError: not base64, not zlib (when decompressing), or not UTF-8.
        DecompressionBomb: the code would inflate beyond ``max_size`` bytes
            (or, compressed, is longer than :func:`max_compressed_chars`).
    """
    if decompress:
        _check_compressed_length(text, max_size)
    raw = b64_to_bytes(text)
    if decompress:
        raw = inflate(raw, max_size=max_size)
    return _text(raw)
