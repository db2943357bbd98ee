"""Keys, signer and verifier of simulated nodes.

Nodes derive their key from the network seed and their id, so a network
rebuilt with the same seed has the same addresses. Signing uses coincurve
when it is installed: libsecp256k1 signs with RFC 6979 deterministic nonces
(the same message gives the same ``EE_SIGN``, so seeded runs are
byte-reproducible) and is about ten times faster than ``cryptography``; the
signatures are ordinary ECDSA that every verifier accepts. Without coincurve
the ``cryptography`` :class:`~pye2.wire.Identity` signs (randomised nonces).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pye2.errors import IdentityError, SignatureInvalid
from pye2.ports.signer import Signer, Verifier
from pye2.wire import Identity, default_verifier

_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _ORDER // 2

__all__ = ["DeterministicSigner", "derive_secret", "identity_from_secret", "make_signer", "make_verifier"]


def derive_secret(seed: int | str, name: str) -> bytes:
    """A 32-byte private scalar for ``name`` under ``seed`` (in range for secp256k1 in practice)."""
    return hashlib.sha256(f"pye2-sim:{seed}:{name}".encode()).digest()


def identity_from_secret(secret: bytes) -> Identity:
    """The wire :class:`~pye2.wire.Identity` of a secret (re-hashes the rare out-of-range value)."""
    while True:
        try:
            return Identity.from_private_bytes(secret)
        except IdentityError:  # out of [1, n-1]: astronomically rare, but stay total
            secret = hashlib.sha256(secret).digest()


class DeterministicSigner:
    """A Signer on libsecp256k1 (coincurve): RFC 6979 nonces, so signatures are reproducible."""

    __slots__ = ("_key", "public_key")

    def __init__(self, secret: bytes) -> None:
        import coincurve

        self._key = coincurve.PrivateKey(secret)
        self.public_key: bytes = self._key.public_key.format(compressed=True)

    def sign(self, digest: bytes) -> bytes:
        """DER ECDSA over SHA-256(``digest``), as the network signs."""
        return bytes(self._key.sign(digest))

    def __repr__(self) -> str:
        return "<DeterministicSigner>"


def make_signer(secret: bytes, identity: Identity) -> Signer:
    """The fastest available signer for ``secret`` (``identity`` is the fallback)."""
    try:
        signer = DeterministicSigner(secret)
    except ImportError:
        return identity
    if signer.public_key != identity.public_key:  # pragma: no cover - would be a library bug
        return identity
    return signer


class _CoincurveVerifier:
    """A Verifier on libsecp256k1 (parsed keys cached)."""

    def __init__(self) -> None:
        import coincurve
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

        self._public_key = coincurve.PublicKey
        self._decode, self._encode = decode_dss_signature, encode_dss_signature
        self._keys: dict[bytes, Any] = {}

    def verify(self, public_key: bytes, digest: bytes, signature: bytes) -> None:
        key = self._keys.get(public_key)
        if key is None:
            try:
                key = self._public_key(public_key)
            except (ValueError, TypeError) as exc:
                raise SignatureInvalid(f"malformed sender key: {exc}") from None
            if len(self._keys) > 4096:
                self._keys.clear()
            self._keys[public_key] = key
        try:
            # libsecp256k1 only accepts low-S signatures; other signers (cryptography) produce both.
            r, s = self._decode(signature)
            if s > _HALF_ORDER:
                signature = self._encode(r, _ORDER - s)
            ok = key.verify(signature, digest)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise SignatureInvalid("bad signature")


def make_verifier() -> Verifier:
    """The fastest available verifier (coincurve, else the wire default)."""
    try:
        return _CoincurveVerifier()
    except ImportError:
        return default_verifier()
