"""What is signed and how a signed message is checked (pure; ECDSA is injected).

Signing (:func:`sign_fields`): a *copy* of the message gets, under a ``v2``
profile (RATIO1), ``SIGN_CANON_V: "v2"`` before hashing, then ``EE_SIGN``,
``EE_SENDER``, ``EE_ETH_SENDER``, ``EE_ETH_SIGN: "0xBEEF"`` and ``EE_HASH``
in the order ratio1 writes them; under AIXP only ``EE_SIGN``, ``EE_SENDER``,
``EE_HASH`` (42ee127). The ECDSA maths is a callable (a Signer port's
``sign``), so this module does no cryptography itself.

Verifying (:func:`verify_fields`) follows the originals step by step: sender
and signature must be present and well formed; the canon is chosen from
``SIGN_CANON_V`` (RATIO1: ``v2`` -> v2, ``v1`` -> v1, absent -> the current
encoder first then the legacy one, anything else -> rejected; AIXP: always
42ee127); for each candidate text, a present ``EE_HASH`` must equal its
SHA-256 (else "Corrupted digest") and the signature must verify over the
digest (or over the text itself when ``EE_HASH`` is absent). Every failure
is a :class:`~pye2.errors.SignatureInvalid` whose ``reason`` starts with one
of the ``REASON_*`` constants, so callers can count rejections by kind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from pye2.domain.canonical import SIGN_CANON_V, SortedTextFn, data_fields, encode, normalize_canon
from pye2.domain.keys import address_to_public_key, eth_address, public_key_to_address
from pye2.domain.profiles import CANON_LEGACY, CANON_V1, CANON_V2, WireProfile
from pye2.errors import DecodeError, Pye2Error, SignatureInvalid

__all__ = [
    "EE_ETH_SENDER",
    "EE_ETH_SIGN",
    "EE_HASH",
    "EE_SENDER",
    "EE_SIGN",
    "ETH_SIGN_PLACEHOLDER",
    "REASON_BAD_SIGNATURE",
    "REASON_CANON",
    "REASON_CORRUPTED_DIGEST",
    "REASON_MALFORMED_SENDER",
    "REASON_MALFORMED_SIGNATURE",
    "REASON_MISSING_SENDER",
    "REASON_MISSING_SIGNATURE",
    "REASON_NOT_A_MESSAGE",
    "REASON_UNCANONICAL",
    "SignFn",
    "VerifyFn",
    "candidate_canons",
    "decode_signature",
    "sign_fields",
    "verify_fields",
]

EE_SIGN = "EE_SIGN"
EE_SENDER = "EE_SENDER"
EE_HASH = "EE_HASH"
EE_ETH_SENDER = "EE_ETH_SENDER"
EE_ETH_SIGN = "EE_ETH_SIGN"
#: What ratio1 writes in ``EE_ETH_SIGN`` unless asked for a real ETH signature.
ETH_SIGN_PLACEHOLDER = "0xBEEF"

REASON_NOT_A_MESSAGE = "not a message"
REASON_MISSING_SENDER = "missing sender"
REASON_MALFORMED_SENDER = "malformed sender"
REASON_MISSING_SIGNATURE = "missing signature"
REASON_MALFORMED_SIGNATURE = "malformed signature"
REASON_CANON = "unknown SIGN_CANON_V"
REASON_UNCANONICAL = "cannot canonicalise"
REASON_CORRUPTED_DIGEST = "Corrupted digest"
REASON_BAD_SIGNATURE = "bad signature"

#: ``sign(data) -> DER signature``; ECDSA with SHA-256 over ``data`` (a Signer's ``sign``).
SignFn = Callable[[bytes], bytes]
#: ``verify(public_key33, data, der_signature)``; raises SignatureInvalid (a Verifier's ``verify``).
VerifyFn = Callable[[bytes, bytes, bytes], None]

_VERIFIER_REASONS = (REASON_BAD_SIGNATURE, REASON_MALFORMED_SENDER, REASON_MALFORMED_SIGNATURE)
_MAX_SIGNATURE_CHARS = 200  # a DER secp256k1 signature is at most 72 bytes (96 chars)


def sign_fields(message: Mapping[str, Any], *, profile: WireProfile, public_key: bytes,
                sign: SignFn, json_native: bool = False, sorted_text: SortedTextFn | None = None) -> dict[str, Any]:
    """The signed copy of ``message`` (the input is not modified).

    Args:
        message: the fields to send.
        profile: RATIO1 (``canon`` v2) adds ``SIGN_CANON_V: "v2"`` (replacing a
            preset value: pye2 signs RATIO1 messages as v2 only, DECISIONS 9)
            and, with ``eth_fields``, ``EE_ETH_SENDER``/``EE_ETH_SIGN``.
        public_key: the signer's 33-byte compressed public key.
        sign: ECDSA-SHA256 over the 32 digest bytes, returning DER.
        json_native: see :func:`pye2.domain.canonical.canonical_json`.
        sorted_text: see :func:`pye2.domain.canonical.encode`.

    Raises:
        DecodeError: the message holds values that cannot be canonicalised.
        ConfigError: the profile names an unknown canon.
    """
    if not isinstance(message, Mapping):
        raise DecodeError(f"a message must be a JSON object (mapping), not {type(message).__name__}")
    canon = normalize_canon(profile.canon)
    out = dict(message)
    if canon != CANON_LEGACY:
        # pye2 signs v1/v2 profiles as v2 (ratio1's v1 signing fails its own verify on floats).
        canon = CANON_V2
        out[SIGN_CANON_V] = CANON_V2
    text = encode(data_fields(out, profile, keep_canon_marker=canon == CANON_V2), canon, json_native=json_native,
                  sorted_text=sorted_text)
    digest = hashlib.sha256(text)
    signature = sign(digest.digest())
    out[EE_SIGN] = base64.urlsafe_b64encode(signature).decode("ascii")
    out[EE_SENDER] = public_key_to_address(public_key, profile)
    if profile.eth_fields:
        out[EE_ETH_SENDER] = eth_address(bytes(public_key))
        out[EE_ETH_SIGN] = ETH_SIGN_PLACEHOLDER
    out[EE_HASH] = digest.hexdigest()
    return out


def candidate_canons(message: Mapping[str, Any], profile: WireProfile) -> tuple[str, ...]:
    """The canons a verifier tries, in order (spec section 11).

    Raises:
        SignatureInvalid: ``SIGN_CANON_V`` present but not ``v1``/``v2`` (v2 profiles).
    """
    if normalize_canon(profile.canon) == CANON_LEGACY:
        return (CANON_LEGACY,)
    marker = message.get(SIGN_CANON_V)
    if marker is None:
        # ratio1: current encoder without the marker first, then the legacy (v1) text.
        return (CANON_V2, CANON_V1)
    if marker == CANON_V2:
        return (CANON_V2,)
    if marker == CANON_V1:
        return (CANON_V1,)
    raise SignatureInvalid(f"{REASON_CANON}: {marker!r:.40}")


def decode_signature(text: Any) -> bytes:
    """``EE_SIGN`` text -> DER bytes, decoded as both originals do.

    That is ``base64.urlsafe_b64decode``: padding is required and characters
    outside the alphabet are ignored (ratio1 and 42ee127 verdicts depend on it).

    Raises:
        SignatureInvalid: missing, not a string, too long, or not base64.
    """
    if text is None:
        raise SignatureInvalid(f"{REASON_MISSING_SIGNATURE}: no EE_SIGN")
    if not isinstance(text, str):
        raise SignatureInvalid(f"{REASON_MALFORMED_SIGNATURE}: EE_SIGN is a {type(text).__name__}, not a string")
    if len(text) > _MAX_SIGNATURE_CHARS:
        raise SignatureInvalid(f"{REASON_MALFORMED_SIGNATURE}: EE_SIGN is too long ({len(text)} characters)")
    try:
        return base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"{REASON_MALFORMED_SIGNATURE}: EE_SIGN is not URL-safe base64") from None


def verify_fields(message: Mapping[str, Any], *, profile: WireProfile, verify: VerifyFn,
                  json_native: bool = False, sorted_text: SortedTextFn | None = None) -> str:
    """Check the signature of ``message``; return its ``EE_SENDER``.

    Args:
        message: a received message (not modified).
        profile: decides excluded fields, accepted prefixes and the canons tried.
        verify: ECDSA check (a Verifier's ``verify``); it must raise
            :class:`~pye2.errors.SignatureInvalid` on a bad signature. Any other
            exception it raises is reported as a bad signature too.
        json_native: see :func:`pye2.domain.canonical.canonical_json`.
        sorted_text: a faster writer of the sorted JSON text under the ``v2`` and
            legacy canons, exact or None: see :func:`pye2.domain.canonical.encode`
            and :class:`pye2.adapters.orjson_canonical.OrjsonSortedText`.

    Raises:
        SignatureInvalid: with a ``reason`` starting with a ``REASON_*`` constant.
    """
    if not isinstance(message, Mapping):
        raise SignatureInvalid(f"{REASON_NOT_A_MESSAGE}: expected a JSON object, got {type(message).__name__}")
    sender = message.get(EE_SENDER)
    if sender is None:
        raise SignatureInvalid(f"{REASON_MISSING_SENDER}: no EE_SENDER")
    try:
        public_key = address_to_public_key(sender, profile)
    except DecodeError as exc:
        raise SignatureInvalid(f"{REASON_MALFORMED_SENDER}: {exc}") from None
    signature = decode_signature(message.get(EE_SIGN))
    canons = candidate_canons(message, profile)
    received = message.get(EE_HASH)
    failure = f"{REASON_CORRUPTED_DIGEST}: EE_HASH does not match the message"
    for canon in canons:
        try:
            text = encode(data_fields(message, profile, keep_canon_marker=canon == CANON_V2), canon,
                          json_native=json_native, sorted_text=sorted_text)
        except DecodeError as exc:
            raise SignatureInvalid(f"{REASON_UNCANONICAL}: {exc}") from None
        if received:
            digest = hashlib.sha256(text)
            if digest.hexdigest() != received:
                continue
            signed = digest.digest()
        else:
            # 42ee127's use_digest=False form: the signature covers the text itself.
            signed = text
        try:
            verify(public_key, signed, signature)
        except SignatureInvalid as exc:
            reason = str(exc.reason)
            failure = reason if reason.startswith(_VERIFIER_REASONS) else f"{REASON_BAD_SIGNATURE}: {reason}"
            continue
        except Pye2Error as exc:
            failure = f"{REASON_BAD_SIGNATURE}: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - a third-party verifier must not crash the caller
            failure = f"{REASON_BAD_SIGNATURE}: verifier error {type(exc).__name__}"
            continue
        return str(sender)
    raise SignatureInvalid(failure)
