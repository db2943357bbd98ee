"""Keys, signer and verifier of simulated nodes.

Nodes derive their key from the network seed and their id, so a network
rebuilt with the same seed has the same addresses. Signing uses the
``coincurve`` signer backend registered with pye2's plugin host when it is
installed (about ten times faster), else the ``cryptography``
:class:`~pye2.wire.Identity`; both sign with RFC 6979 deterministic nonces in
low-S form, so their signatures are byte-identical and seeded runs are
byte-reproducible either way. Verification uses
:func:`pye2.wire.fastest_verifier` (honours ``PYE2_VERIFIER``). Everything
goes through pye2's plugin host and public facade, never its adapters.
"""

from __future__ import annotations

import hashlib

from pye2.errors import IdentityError, PluginError
from pye2.plugins import default_host
from pye2.ports.signer import Signer, Verifier
from pye2.wire import Identity, fastest_verifier

__all__ = ["derive_secret", "identity_from_secret", "make_signer", "make_verifier"]


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
        signer: Signer = default_host().signer_backend("coincurve").from_private_bytes(secret)
    except (PluginError, IdentityError):  # not installed (or blocked), or the rare re-hashed secret
        return identity
    if signer.public_key != identity.public_key:
        return identity
    return signer


def make_verifier() -> Verifier:
    """A verifier on the fastest available backend (see :func:`pye2.wire.fastest_verifier`)."""
    return fastest_verifier()
