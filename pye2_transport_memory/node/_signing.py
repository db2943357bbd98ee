"""Keys, signer and verifier of simulated nodes.

Nodes derive their key from the network seed and their id, so a network
rebuilt with the same seed has the same addresses. Signing uses pye2's
coincurve backend when it is installed (about ten times faster), else the
``cryptography`` :class:`~pye2.wire.Identity`; both sign with RFC 6979
deterministic nonces in low-S form, so their signatures are byte-identical
and seeded runs are byte-reproducible either way. Verification uses
:func:`pye2.adapters.select.best_verifier` (honours ``PYE2_VERIFIER``).

``DeterministicSigner`` and ``_CoincurveVerifier`` are the names this
module used to define; they now point at the shared implementation in
:mod:`pye2.adapters.coincurve_backend`.
"""

from __future__ import annotations

import hashlib

from pye2.adapters.coincurve_backend import CoincurveSigner, CoincurveVerifier
from pye2.adapters.select import best_verifier
from pye2.errors import ExtraMissing, IdentityError
from pye2.ports.signer import Signer, Verifier
from pye2.wire import Identity

__all__ = ["DeterministicSigner", "derive_secret", "identity_from_secret", "make_signer", "make_verifier"]

#: The coincurve signer under its former simulator name.
DeterministicSigner = CoincurveSigner
_CoincurveVerifier = CoincurveVerifier


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


def make_signer(secret: bytes, identity: Identity) -> Signer:
    """The fastest available signer for ``secret`` (``identity`` is the fallback).

    ``identity`` must hold the same key; it is used when coincurve is not
    installed or ``secret`` is the rare value :func:`identity_from_secret` re-hashed.
    """
    try:
        signer = CoincurveSigner(secret)
    except (ExtraMissing, IdentityError):
        return identity
    if signer.public_key != identity.public_key:
        return identity
    return signer


def make_verifier() -> Verifier:
    """The fastest available verifier (see :func:`pye2.adapters.select.best_verifier`)."""
    return best_verifier()
