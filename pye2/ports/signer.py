"""Signer and Verifier ports: secp256k1 ECDSA maths only.

Canonicalisation and hashing stay in :mod:`pye2.domain.canonical`; a signer
signs a 32-byte digest and a verifier checks one. Signatures are DER
``SEQUENCE{r, s}`` bytes; ECDSA is computed over the digest with SHA-256 as
the ECDSA hash, as the network does (so effectively over SHA256(SHA256(json))).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Signer", "SignerFactory", "Verifier"]


@runtime_checkable
class Signer(Protocol):
    """Holds a private key and signs digests with it."""

    @property
    def public_key(self) -> bytes:
        """33-byte SEC1 compressed public point."""
        ...

    def sign(self, digest: bytes) -> bytes:
        """DER-encoded ECDSA signature of ``digest``."""
        ...


@runtime_checkable
class Verifier(Protocol):
    """Checks signatures against public keys (it may cache parsed keys)."""

    def verify(self, public_key: bytes, digest: bytes, signature: bytes) -> None:
        """Return if valid; raise :class:`pye2.errors.SignatureInvalid` otherwise.

        ``public_key`` is the 33-byte compressed point (as in an address).
        """
        ...


class SignerFactory(Protocol):
    """A signer backend as registered through ``pye2_register_signers``.

    ``from_private_bytes`` builds a signer from a 32-byte private scalar and
    ``verifier`` returns a (possibly shared) verifier.
    """

    def from_private_bytes(self, secret: bytes) -> Signer: ...

    def verifier(self) -> Verifier: ...
