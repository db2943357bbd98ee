"""Addresses and public keys (protocol.md section 7), pure.

An address is a profile prefix (``aixp_`` or ``0xai_``) followed by the
URL-safe base64 of the 33-byte SEC1 compressed secp256k1 point: always 44
characters, never padded. ``EE_ETH_SENDER`` (RATIO1) is the Ethereum-style
address of the same key (Keccak-256 of the uncompressed point, EIP-55 case).

Errors: text that is not a well-formed address raises
:class:`~pye2.errors.DecodeError` with the reason. Callers translate it to
their context: :func:`pye2.wire.verify_message` reports it as
:class:`~pye2.errors.SignatureInvalid` ("malformed sender: ..."), encryption
as :class:`~pye2.errors.CryptoError`. The structural checks here do not
prove the point is on the curve; :func:`decompress_public_key` does, and a
Verifier does when it parses the key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re

from pye2.domain.profiles import WireProfile
from pye2.errors import DecodeError

__all__ = [
    "KNOWN_PREFIXES",
    "address_body",
    "address_to_public_key",
    "decompress_public_key",
    "eth_address",
    "keccak256",
    "public_key_to_address",
    "same_address",
]

#: Every prefix either original SDK wrote (42ee127 ``aixp_``, later ``0xai_``).
KNOWN_PREFIXES: tuple[str, ...] = ("aixp_", "0xai_")

_BODY = re.compile(r"[A-Za-z0-9_-]{44}")
# secp256k1 field prime; p % 4 == 3, so square roots are one pow().
_P = 2**256 - 2**32 - 977


def public_key_to_address(public_key: bytes, profile: WireProfile) -> str:
    """The address of a 33-byte compressed public key under ``profile``.

    Raises:
        DecodeError: ``public_key`` is not 33 bytes starting with 0x02/0x03.
    """
    _check_compressed(public_key)
    return profile.address_prefix + base64.urlsafe_b64encode(public_key).decode("ascii")


def address_body(address: str, profile: WireProfile | None = None) -> str:
    """The 44-character body of ``address`` without its prefix.

    ``profile`` limits the accepted prefixes to ``profile.accepted_prefixes``
    (default: both known prefixes).

    Raises:
        DecodeError: not a string, no accepted prefix, or a body that is not 44
            URL-safe base64 characters.
    """
    if not isinstance(address, str):
        raise DecodeError(f"address must be a string, not {type(address).__name__}")
    prefixes = profile.accepted_prefixes if profile is not None else KNOWN_PREFIXES
    for prefix in prefixes:
        if address.startswith(prefix):
            body = address[len(prefix):]
            break
    else:
        raise DecodeError(f"address {_show(address)} does not start with {' or '.join(prefixes)}")
    if _BODY.fullmatch(body) is None:
        raise DecodeError(
            f"address {_show(address)} must have 44 URL-safe base64 characters after the prefix, "
            f"got {len(body)}")
    return body


def address_to_public_key(address: str, profile: WireProfile | None = None) -> bytes:
    """The 33-byte compressed public key encoded in ``address``.

    Raises:
        DecodeError: see :func:`address_body`; also when the decoded bytes are
            not a compressed point (first byte 0x02 or 0x03).
    """
    body = address_body(address, profile)
    try:
        key = base64.urlsafe_b64decode(body)
    except (binascii.Error, ValueError) as exc:  # unreachable after the regex; kept as a guard
        raise DecodeError(f"address {_show(address)} is not base64: {exc}") from exc
    _check_compressed(key)
    return key


def same_address(a: str, b: str) -> bool:
    """True when both strings name the same key, whatever their prefixes."""
    try:
        return address_body(a) == address_body(b)
    except DecodeError:
        return False


def decompress_public_key(public_key: bytes) -> bytes:
    """The 65-byte uncompressed SEC1 point (0x04 ‖ x ‖ y) of a compressed key.

    Raises:
        DecodeError: not a compressed point, or x is not on secp256k1.
    """
    _check_compressed(public_key)
    x = int.from_bytes(public_key[1:], "big")
    if x >= _P:
        raise DecodeError("public key x coordinate is not below the field prime")
    y_squared = (pow(x, 3, _P) + 7) % _P
    y = pow(y_squared, (_P + 1) // 4, _P)
    if y * y % _P != y_squared:
        raise DecodeError("public key is not a point on secp256k1")
    if (y & 1) != (public_key[0] & 1):
        y = _P - y
    return b"\x04" + public_key[1:] + y.to_bytes(32, "big")


@functools.lru_cache(maxsize=256)
def eth_address(public_key: bytes) -> str:
    """The EIP-55 checksummed Ethereum address of a compressed public key.

    Cached: a sender computes it once per key, never per message.

    Raises:
        DecodeError: see :func:`decompress_public_key`.
    """
    point = decompress_public_key(public_key)
    hex_address = keccak256(point[1:])[-20:].hex()
    checksum = keccak256(hex_address.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(hex_address, checksum))


def _check_compressed(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 33 or key[0] not in (2, 3):
        raise DecodeError("public key must be 33 bytes of SEC1 compressed point (0x02/0x03 first)")


def _show(address: str) -> str:
    # Addresses are public, but bound what goes into an error message.
    return repr(address if len(address) <= 64 else address[:61] + "...")


# -- Keccak-256 (the pre-standard padding Ethereum uses; hashlib has only SHA3) --

_MASK = (1 << 64) - 1
_RATE = 136  # bytes, for a 256-bit output


def _round_constants() -> tuple[int, ...]:
    # The degree-8 LFSR of FIPS 202 section 3.2.5, seven output bits per round.
    out = []
    r = 1
    for _ in range(24):
        c = 0
        for j in range(7):
            if r & 1:
                c |= 1 << ((1 << j) - 1)
            r = ((r << 1) ^ 0x171) if r & 0x80 else (r << 1)
        out.append(c)
    return tuple(out)


def _rotations() -> tuple[int, ...]:
    # rho offsets by lane index x + 5y, walking (x, y) -> (y, 2x + 3y) from (1, 0).
    rot = [0] * 25
    x, y = 1, 0
    for t in range(24):
        rot[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return tuple(rot)


_RC = _round_constants()
_ROT = _rotations()
# pi: lane (x, y) moves to (y, 2x + 3y).
_PI = tuple(y + 5 * ((2 * x + 3 * y) % 5) for y in range(5) for x in range(5))
_PI_SRC = tuple(x + 5 * y for y in range(5) for x in range(5))


def _keccak_f(a: list[int]) -> None:
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ (((c[(x + 1) % 5] << 1) | (c[(x + 1) % 5] >> 63)) & _MASK) for x in range(5)]
        for i in range(25):
            a[i] ^= d[i % 5]
        b = [0] * 25
        for src, dst in zip(_PI_SRC, _PI):
            v, n = a[src], _ROT[src]
            b[dst] = ((v << n) | (v >> (64 - n))) & _MASK if n else v
        for y in range(0, 25, 5):
            row = b[y:y + 5]
            for x in range(5):
                a[y + x] = row[x] ^ ((~row[(x + 1) % 5]) & row[(x + 2) % 5])
        a[0] ^= rc


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (original padding 0x01, as Ethereum uses), pure Python."""
    padded = bytearray(data)
    padded.append(0x01)
    padded.extend(b"\x00" * (-len(padded) % _RATE))
    padded[-1] |= 0x80
    state = [0] * 25
    for off in range(0, len(padded), _RATE):
        block = padded[off:off + _RATE]
        for i in range(_RATE // 8):
            state[i] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        _keccak_f(state)
    return b"".join(state[i].to_bytes(8, "little") for i in range(4))
