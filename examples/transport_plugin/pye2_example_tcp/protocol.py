"""The tcpbus wire format, shared by the broker and the client.

Every frame is ``length (u32) | kind (1 byte) | ident (u32) | topic length (u16) | topic | body``,
big-endian, where ``length`` counts everything after itself. One layout for every
kind keeps the parser to a dozen lines; fields a kind does not use are zero/empty:

========  =========  ==================================  ===============================
kind      direction  ident                               topic / body
========  =========  ==================================  ===============================
``H``     c -> b     0                                   :data:`PROTOCOL` / -
``S``     c -> b     subscription id (chosen by client)  filter / -
``U``     c -> b     subscription id                     - / -
``P``     c -> b     0                                   address / message body
``A``     b -> c     id being acknowledged (0: hello)    - / -
``E``     b -> c     id being refused                    - / reason (UTF-8)
``M``     b -> c     subscription id that matched        address / message body
========  =========  ==================================  ===============================

The broker sends one ``M`` frame per matching *subscription*, so the client never
matches topics itself: it looks the id up and calls that handler. This is what
makes "each subscription receives each message exactly once" hold when
subscriptions of one client overlap.

Addresses and filters follow MQTT: ``/`` separates levels, ``+`` matches one
level, a trailing ``#`` matches any number of levels (including none).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from pye2.errors import ConfigError, DecodeError

__all__ = [
    "ACK",
    "ERR",
    "HELLO",
    "MAX_TOPIC_BYTES",
    "MSG",
    "PROTOCOL",
    "PUB",
    "SUB",
    "UNSUB",
    "Frame",
    "encode",
    "matches",
    "read_frame",
    "validate_address",
    "validate_filter",
]

PROTOCOL = "tcpbus/1"
HELLO, SUB, UNSUB, PUB, ACK, ERR, MSG = b"H", b"S", b"U", b"P", b"A", b"E", b"M"
KINDS = frozenset((HELLO, SUB, UNSUB, PUB, ACK, ERR, MSG))
MAX_TOPIC_BYTES = 0xFFFF  # the topic length is a u16, as in MQTT

_LENGTH = struct.Struct("!I")
_FIXED = struct.Struct("!cIH")  # kind, ident, topic length


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame."""

    kind: bytes
    ident: int = 0
    topic: str = ""
    body: bytes = b""


def encode(frame: Frame) -> bytes:
    """The bytes of ``frame``, length prefix included."""
    topic = frame.topic.encode()
    rest = _FIXED.pack(frame.kind, frame.ident, len(topic)) + topic + frame.body
    return _LENGTH.pack(len(rest)) + rest


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None when the peer closed the connection first."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def read_frame(sock: socket.socket, max_frame_bytes: int) -> Frame | None:
    """Block until one frame arrived; None when the peer closed the connection.

    Raises:
        DecodeError: the frame is malformed or longer than ``max_frame_bytes``
            (checked before reading it, so a bad peer cannot make us allocate).
        OSError: the socket failed.
    """
    head = _recv_exact(sock, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    if not _FIXED.size <= length <= max_frame_bytes:
        raise DecodeError(f"frame of {length} bytes (allowed {_FIXED.size}..{max_frame_bytes})")
    rest = _recv_exact(sock, length)
    if rest is None:
        return None
    kind, ident, topic_len = _FIXED.unpack_from(rest)
    if kind not in KINDS or _FIXED.size + topic_len > length:
        raise DecodeError(f"malformed frame (kind {kind!r}, topic length {topic_len})")
    end = _FIXED.size + topic_len
    try:
        topic = rest[_FIXED.size:end].decode()
    except UnicodeDecodeError as exc:
        raise DecodeError("frame topic is not UTF-8") from exc
    return Frame(kind, ident, topic, rest[end:])


def validate_address(address: object) -> str:
    """Return ``address`` if a message can be published to it, else raise ``ConfigError``."""
    if not isinstance(address, str) or not address:
        raise ConfigError(f"address must be a non-empty string, got {address!r}")
    if "+" in address or "#" in address:
        raise ConfigError(f"cannot publish to {address!r}: '+' and '#' are only valid in filters")
    if len(address.encode()) > MAX_TOPIC_BYTES:
        raise ConfigError(f"address longer than {MAX_TOPIC_BYTES} bytes")
    return address


def validate_filter(filter_: object) -> str:
    """Return ``filter_`` if it is a well-formed subscription filter, else raise ``ConfigError``."""
    if not isinstance(filter_, str) or not filter_:
        raise ConfigError(f"filter must be a non-empty string, got {filter_!r}")
    if len(filter_.encode()) > MAX_TOPIC_BYTES:
        raise ConfigError(f"filter longer than {MAX_TOPIC_BYTES} bytes")
    levels = filter_.split("/")
    for i, level in enumerate(levels):
        if level == "#" and i != len(levels) - 1:
            raise ConfigError(f"filter {filter_!r}: '#' must be the last level")
        if level not in ("+", "#") and ("+" in level or "#" in level):
            raise ConfigError(f"filter {filter_!r}: a wildcard must fill a whole level")
    return filter_


def matches(filter_: str, address: str) -> bool:
    """Whether the (valid) ``filter_`` matches the (valid) ``address``."""
    want, have = filter_.split("/"), address.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or level not in ("+", have[i]):
            return False
    return len(want) == len(have)
