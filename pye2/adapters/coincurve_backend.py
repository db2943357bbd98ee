"""secp256k1 signing and verification on libsecp256k1 (``coincurve``, extra ``fast``).

Features:

* :class:`CoincurveSigner` — the Signer port on libsecp256k1. Its signatures
  are byte-identical to :class:`pye2.adapters.secp256k1.Identity`'s: both
  use RFC 6979 deterministic nonces and the low-S form.
* :class:`CoincurveVerifier` — the Verifier port, about ten times faster
  than ``cryptography``. It gives the same verdict as
  :class:`~pye2.adapters.secp256k1.CryptographyVerifier` for every input:
  high-S signatures (OpenSSL-based senders such as ratio1 and PyE2 42ee127
  produce either S) are normalised before libsecp256k1, which accepts only
  low S, sees them; hybrid public-key encodings (``0x06``/``0x07``), which
  libsecp256k1 parses but OpenSSL does not, are refused. Parsed public keys
  are kept in a bounded LRU keyed by the encoded point. Every failure is a
  :class:`~pye2.errors.SignatureInvalid`; no coincurve exception escapes.
* :class:`CoincurveBackend` — the ``SignerFactory`` registered as signer
  ``"coincurve"``.

coincurve is imported on first use; without it the constructors raise
:class:`~pye2.errors.ExtraMissing` naming ``pip install 'pye2[fast]'``.
ECDSA is computed over the given bytes with SHA-256 as the ECDSA hash
(protocol.md section 7), signatures are DER.
"""

from __future__ import annotations

import functools
import logging
import os
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pye2.domain.keys import eth_address, public_key_to_address
from pye2.domain.profiles import AIXP, WireProfile
from pye2.errors import CryptoError, ExtraMissing, IdentityError, SignatureInvalid

__all__ = ["CoincurveBackend", "CoincurveSigner", "CoincurveVerifier"]

log = logging.getLogger(__name__)

_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _ORDER // 2
# The SEC1 forms OpenSSL (and so CryptographyVerifier) parses; libsecp256k1 also
# takes the hybrid 0x06/0x07 form, which would make the two verifiers disagree.
_POINT_PREFIXES = (0x02, 0x03, 0x04)
_INSTALL_HINT = "pip install 'pye2[fast]'"


def _coincurve() -> ModuleType:
    """The coincurve module, or :class:`ExtraMissing` naming the extra."""
    try:
        import coincurve
    except (ImportError, OSError) as exc:  # OSError: a wheel whose shared library does not load
        raise ExtraMissing(f"signer backend 'coincurve' needs coincurve: {_INSTALL_HINT}") from exc
    return coincurve


def _as_bytes(value: object) -> bytes:
    # bytes(int) would allocate that many zero bytes: accept only real byte strings.
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected bytes, not {type(value).__name__}")


def _secret_bytes(secret: object) -> bytes:
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        raise IdentityError("a secp256k1 private key is 32 bytes")
    if not 0 < int.from_bytes(secret, "big") < _ORDER:
        raise IdentityError("private scalar is out of range for secp256k1")
    return bytes(secret)


class CoincurveSigner:
    """A secp256k1 private key on libsecp256k1 (the Signer port).

    Args:
        secret: the 32-byte big-endian private scalar, in [1, n-1].

    Raises:
        IdentityError: the secret is not 32 bytes or out of range.
        ExtraMissing: coincurve is not installed.
    """

    __slots__ = ("_key", "_public_key")

    def __init__(self, secret: bytes) -> None:
        valid = _secret_bytes(secret)
        self._key = _coincurve().PrivateKey(valid)
        self._public_key: bytes = self._key.public_key.format(compressed=True)

    @classmethod
    def from_private_bytes(cls, secret: bytes) -> CoincurveSigner:
        """A signer from its 32-byte private scalar (same as the constructor)."""
        return cls(secret)

    @classmethod
    def generate(cls) -> CoincurveSigner:
        """A new random key (from the operating system's CSPRNG)."""
        while True:
            secret = os.urandom(32)
            if 0 < int.from_bytes(secret, "big") < _ORDER:  # fails with probability ~2**-128
                return cls(secret)

    @property
    def public_key(self) -> bytes:
        """33-byte SEC1 compressed public point."""
        return self._public_key

    def address(self, profile: WireProfile = AIXP) -> str:
        """This key's address under ``profile`` (``aixp_...`` or ``0xai_...``)."""
        return public_key_to_address(self._public_key, profile)

    @property
    def eth_address(self) -> str:
        """The EIP-55 Ethereum-style address ratio1 derives (``EE_ETH_SENDER``)."""
        return eth_address(self._public_key)

    def sign(self, digest: bytes | bytearray | memoryview) -> bytes:
        """DER ECDSA signature over ``digest`` (SHA-256 as the ECDSA hash), low-S, RFC 6979 nonce.

        Raises:
            CryptoError: ``digest`` is not bytes-like.
        """
        try:
            data = _as_bytes(digest)
        except TypeError as exc:
            raise CryptoError(f"can only sign bytes: {exc}") from None
        signature: bytes = self._key.sign(data)
        return signature

    def __repr__(self) -> str:
        return f"CoincurveSigner({self.address(AIXP)!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would copy the private key into whatever stores the pickle.
        raise TypeError("CoincurveSigner cannot be pickled")


def _parse_point(public_key_type: Any, public_key: bytes) -> Any:
    """A parsed coincurve ``PublicKey``; ``ValueError`` for what OpenSSL would refuse too."""
    if not public_key or public_key[0] not in _POINT_PREFIXES:
        raise ValueError("not a compressed or uncompressed SEC1 point")
    return public_key_type(public_key)


def _low_s(signature: bytes) -> bytes:
    """``signature`` with S replaced by n - S when S is in the upper half.

    Anything that is not strict DER is returned unchanged: libsecp256k1's own
    strict parser then rejects it, as OpenSSL does.

    The common case (short-form DER ``30 L 02 lr r 02 ls s`` with the lengths
    adding up and S at most 32 bytes and below n/2) is recognised by reading
    the length bytes, without a full ASN.1 parse; a low S needs no change
    whatever else the parse would find, since libsecp256k1 then judges the
    DER itself. Everything else takes the full parse below.
    """
    size = len(signature)
    if 8 <= size <= 72 and signature[0] == 0x30 and signature[1] == size - 2 and signature[2] == 0x02:
        end_r = 4 + signature[3]
        if end_r + 2 < size and signature[end_r] == 0x02 and end_r + 2 + signature[end_r + 1] == size:
            s_bytes = signature[end_r + 2:]
            if len(s_bytes) <= 32 and int.from_bytes(s_bytes, "big") <= _HALF_ORDER:
                return signature
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return signature
    if _HALF_ORDER < s < _ORDER:
        return encode_dss_signature(r, _ORDER - s)
    return signature


class CoincurveVerifier:
    """ECDSA secp256k1 verification on libsecp256k1 (the Verifier port).

    Args:
        cache_size: how many parsed public keys to keep (LRU).

    Thread-safe: the cache is a C-level ``functools.lru_cache`` and
    libsecp256k1 verification only reads its context.

    Raises:
        ExtraMissing: coincurve is not installed.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        parse = functools.partial(_parse_point, _coincurve().PublicKey)
        self._load = functools.lru_cache(maxsize=cache_size)(parse)

    def verify(self, public_key: bytes, digest: bytes, signature: bytes) -> None:
        """Return if ``signature`` is valid for ``digest`` under ``public_key``.

        Raises:
            SignatureInvalid: "malformed sender: ..." for a key that is not a
                curve point, "bad signature" otherwise.
        """
        try:
            key = self._load(_as_bytes(public_key))
        except (ValueError, TypeError):
            raise SignatureInvalid("malformed sender: public key is not a point on secp256k1") from None
        try:
            valid = key.verify(_low_s(_as_bytes(signature)), _as_bytes(digest))
        except (ValueError, TypeError):  # coincurve: DER that does not parse
            valid = False
        if not valid:
            raise SignatureInvalid("bad signature")

    def cache_info(self) -> Any:
        """Hits/misses of the parsed-key cache (``functools`` ``CacheInfo``)."""
        return self._load.cache_info()


class CoincurveBackend:
    """Signer backend ``"coincurve"`` (the SignerFactory port; extra ``fast``)."""

    name = "coincurve"

    def __init__(self) -> None:
        self._verifier: CoincurveVerifier | None = None

    def from_private_bytes(self, secret: bytes) -> CoincurveSigner:
        """A :class:`CoincurveSigner` from a 32-byte private scalar."""
        return CoincurveSigner(secret)

    def generate(self) -> CoincurveSigner:
        """A new random :class:`CoincurveSigner`."""
        return CoincurveSigner.generate()

    def verifier(self) -> CoincurveVerifier:
        """The backend's shared verifier (one key cache per backend)."""
        if self._verifier is None:
            self._verifier = CoincurveVerifier()
            log.debug("coincurve verifier created")
        return self._verifier
