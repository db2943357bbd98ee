"""Message-level toolkit: canonical JSON, signatures, identities, encryption, codecs.

Everything needed to produce or check one wire message without a session::

    from pye2.wire import RATIO1, Identity, sign_message, verify_message

    me = Identity.generate()
    signed = sign_message({"ACTION": "FULL_HEARTBEAT", "PAYLOAD": None}, me, profile=RATIO1)
    assert verify_message(signed, profile=RATIO1) == me.address(RATIO1)

Verification is the hot path of a client ingesting thousands of messages per
second: canonical JSON costs one C-level ``json.dumps`` for JSON-native
messages, parsed public keys are cached, and a faster Verifier (any object
with ``verify(public_key, digest, signature)``, see
:class:`pye2.ports.signer.Verifier`) can be passed as ``verifier=``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pye2.adapters.encryption import decrypt, decrypt_command, encrypt, encrypt_command
from pye2.adapters.secp256k1 import CryptographyVerifier, Identity
from pye2.domain import canonical as _canonical
from pye2.domain.canonical import SortedTextFn
from pye2.domain.keys import address_to_public_key, eth_address, public_key_to_address, same_address
from pye2.domain.profiles import AIXP, RATIO1, WireProfile, get_profile
from pye2.domain.signing import sign_fields, verify_fields
from pye2.ports.signer import Signer, Verifier

if TYPE_CHECKING:  # imported lazily at run time, see __getattr__
    from pye2.domain.codecs.checker import check_code
    from pye2.domain.codecs.code import base64_to_code, code_to_base64
    from pye2.domain.codecs.heartbeat import decode_heartbeat, encode_heartbeat

__all__ = [
    "AIXP",
    "RATIO1",
    "CryptographyVerifier",
    "Identity",
    "WireProfile",
    "address_to_public_key",
    "base64_to_code",
    "canonical_json",
    "canonical_text_writer",
    "check_code",
    "code_to_base64",
    "decode_heartbeat",
    "decrypt",
    "decrypt_command",
    "default_verifier",
    "encode_heartbeat",
    "encrypt",
    "encrypt_command",
    "eth_address",
    "fastest_verifier",
    "message_hash",
    "public_key_to_address",
    "same_address",
    "sign_message",
    "verify_message",
]

# Codecs live in another module family; importing them lazily keeps this
# facade importable on its own and its import cheap.
_LAZY = {
    "code_to_base64": "pye2.domain.codecs.code",
    "base64_to_code": "pye2.domain.codecs.code",
    "check_code": "pye2.domain.codecs.checker",
    "encode_heartbeat": "pye2.domain.codecs.heartbeat",
    "decode_heartbeat": "pye2.domain.codecs.heartbeat",
}

_default_verifier: Verifier | None = None
_default_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def canonical_text_writer() -> SortedTextFn | None:
    """The fast writer of the sorted JSON text that signatures cover (orjson, extra ``fast``), or None.

    It returns exactly the bytes :func:`canonical_json` would, or None where it
    cannot be sure (then use the exact path); pass it as ``sorted_text=`` to
    :func:`pye2.domain.signing.sign_fields`. ``PYE2_JSON=stdlib`` turns it off.
    """
    from pye2.adapters.select import best_sorted_text

    return best_sorted_text()


def fastest_verifier() -> Verifier:
    """A new verifier on the fastest available backend (coincurve, else cryptography; ``PYE2_VERIFIER`` decides).

    :func:`default_verifier` is the shared one; this builds another (the
    simulator's nodes keep one of their own).
    """
    from pye2.adapters.select import best_verifier

    return best_verifier()


def default_verifier() -> Verifier:
    """The process-wide verifier used when ``verifier=None`` (created on first use).

    The fastest available backend: coincurve (libsecp256k1, extra ``fast``) when
    importable, else cryptography; ``PYE2_VERIFIER=cryptography`` forces the default
    (see :func:`pye2.adapters.select.best_verifier`). Both give identical verdicts;
    an unknown ``PYE2_VERIFIER`` raises ``PluginNotFound`` on first use.
    """
    global _default_verifier
    if _default_verifier is None:
        with _default_lock:
            if _default_verifier is None:
                from pye2.adapters.select import best_verifier

                _default_verifier = best_verifier()
    return _default_verifier


def canonical_json(message: Mapping[str, Any], *, profile: WireProfile | str, canon: str | None = None) -> bytes:
    """The exact UTF-8 text whose SHA-256 is ``EE_HASH`` (see :mod:`pye2.domain.canonical`).

    Raises:
        DecodeError: values that are not JSON, numpy or datetime.
        SignatureInvalid: unknown ``SIGN_CANON_V`` in the message.
        ConfigError: unknown profile or canon.
    """
    return _canonical.canonical_json(message, profile=get_profile(profile), canon=canon)


def message_hash(message: Mapping[str, Any], *, profile: WireProfile | str, canon: str | None = None) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_json` (the ``EE_HASH`` value)."""
    return _canonical.message_hash(message, profile=get_profile(profile), canon=canon)


def sign_message(message: Mapping[str, Any], identity: Signer, *, profile: WireProfile | str) -> dict[str, Any]:
    """A signed copy of ``message`` (the input is not modified).

    Under RATIO1 the copy gains ``SIGN_CANON_V: "v2"``, ``EE_SIGN``,
    ``EE_SENDER``, ``EE_ETH_SENDER``, ``EE_ETH_SIGN: "0xBEEF"``, ``EE_HASH``;
    under AIXP ``EE_SIGN``, ``EE_SENDER``, ``EE_HASH`` (as 42ee127).

    Args:
        message: the fields to send.
        identity: any Signer (an :class:`Identity`, or a plugin's signer).
        profile: ``AIXP``/``RATIO1`` or their names.

    Raises:
        DecodeError: values that cannot be canonicalised.
        ConfigError: unknown profile.
    """
    return sign_fields(message, profile=get_profile(profile), public_key=identity.public_key, sign=identity.sign)


def verify_message(message: Mapping[str, Any], *, profile: WireProfile | str, verifier: Verifier | None = None,
                   json_native: bool = False) -> str:
    """Check ``message``'s signature and return the sender address (``EE_SENDER``).

    Args:
        message: a received message (not modified).
        profile: ``AIXP`` (42ee127 canon) or ``RATIO1`` (``SIGN_CANON_V`` rules).
        verifier: ECDSA backend; default :func:`default_verifier`.
        json_native: the message came from a JSON/msgpack decoder (all keys
            str), which lets canonicalisation skip a type walk.

    Raises:
        SignatureInvalid: ``reason`` says which check failed: missing or
            malformed sender, missing or malformed signature, unknown
            ``SIGN_CANON_V``, "Corrupted digest" (hash mismatch) or "bad signature".
        ConfigError: unknown profile.
    """
    backend = verifier if verifier is not None else default_verifier()
    return verify_fields(message, profile=get_profile(profile), verify=backend.verify, json_native=json_native)
