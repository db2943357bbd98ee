"""End-to-end encryption between addresses (protocol.md section 11), on ``cryptography``.

Key agreement: ECDH on secp256k1 (own private key, peer address) -> HKDF-SHA256
(32 bytes, no salt, info ``"0xai handshake data"``) -> AES-256-GCM, 12-byte
random nonce, no associated data. The plaintext is zlib-compressed first.

Wire forms (both text):

* single receiver: standard base64 of ``nonce(12) ‖ 0x01 ‖ ciphertext+tag``;
* several receivers (ratio1): a random 32-byte content key encrypts the data
  once; each receiver gets that key AES-GCM-encrypted under its ECDH/HKDF key;
  the package ``{"M": true, "c": "01", "n": hex, "d": hex, "k": [{"a", "k"}]}``
  is JSON, zlib-compressed and base64-encoded.

:func:`decrypt` recognises both. Commands carry ``{"ACTION", "PAYLOAD"}``
encrypted in ``EE_ENCRYPTED_DATA`` (:func:`encrypt_command`,
:func:`decrypt_command`). Every failure is a :class:`~pye2.errors.CryptoError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pye2.adapters.secp256k1 import Identity
from pye2.domain.keys import address_body, address_to_public_key
from pye2.errors import CryptoError, DecodeError

__all__ = [
    "DEFAULT_MAX_PLAINTEXT",
    "EE_ENCRYPTED_DATA",
    "EE_IS_ENCRYPTED",
    "HKDF_INFO",
    "decrypt",
    "decrypt_command",
    "derive_key",
    "encrypt",
    "encrypt_command",
]

HKDF_INFO = b"0xai handshake data"
EE_IS_ENCRYPTED = "EE_IS_ENCRYPTED"
EE_ENCRYPTED_DATA = "EE_ENCRYPTED_DATA"
#: Cap on the inflated plaintext (bytes); a bigger one is refused, not inflated.
DEFAULT_MAX_PLAINTEXT = 64 * 1024 * 1024

_NONCE = 12
_FLAG_COMPRESSED = 1
_FLAG_PLAIN = 0
_ZLIB_HEADER = 0x78


def derive_key(identity: Identity, peer_address: str) -> bytes:
    """The 32-byte AES key shared by ``identity`` and the owner of ``peer_address``.

    Raises:
        CryptoError: ``peer_address`` is not a valid address or point.
    """
    try:
        peer = address_to_public_key(peer_address)
    except DecodeError as exc:
        raise CryptoError(f"bad peer address: {exc}") from None
    secret = identity.shared_secret(peer)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret)


def encrypt(plaintext: str, *, sender: Identity, receivers: Sequence[str] | str) -> str:
    """Encrypt ``plaintext`` from ``sender`` for ``receivers`` (addresses).

    One receiver gives the single form, several the multi-receiver form.

    Raises:
        CryptoError: no receivers, a bad receiver address, or a non-str plaintext.
    """
    if not isinstance(plaintext, str):
        raise CryptoError(f"plaintext must be str, not {type(plaintext).__name__}")
    targets = [receivers] if isinstance(receivers, str) else list(receivers)
    if not targets:
        raise CryptoError("encrypt needs at least one receiver address")
    try:
        compressed = zlib.compress(plaintext.encode("utf-8"))
    except UnicodeEncodeError:
        raise CryptoError("plaintext is not encodable as UTF-8 (lone surrogate)") from None
    if len(targets) == 1:
        key = derive_key(sender, targets[0])
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, compressed, None)
        return base64.b64encode(nonce + bytes([_FLAG_COMPRESSED]) + sealed).decode("ascii")
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE)
    entries = []
    for address in targets:
        wrap_nonce = os.urandom(_NONCE)
        wrapped = AESGCM(derive_key(sender, address)).encrypt(wrap_nonce, content_key, None)
        entries.append({"a": address, "k": (wrap_nonce + wrapped).hex()})
    package = {
        "M": True,
        "c": f"{_FLAG_COMPRESSED:02x}",
        "n": nonce.hex(),
        "d": AESGCM(content_key).encrypt(nonce, compressed, None).hex(),
        "k": entries,
    }
    return base64.b64encode(zlib.compress(json.dumps(package).encode("ascii"))).decode("ascii")


def decrypt(data: str, *, receiver: Identity, sender_address: str,
            max_size: int = DEFAULT_MAX_PLAINTEXT) -> str:
    """Decrypt what ``sender_address`` encrypted for ``receiver`` (either form).

    Raises:
        CryptoError: not base64, truncated, not for this receiver, tampered
            (authentication failed), inflating beyond ``max_size``, or not UTF-8.
    """
    if isinstance(data, bytes):
        data = data.decode("ascii", "replace")
    if not isinstance(data, str):
        raise CryptoError(f"encrypted data must be base64 text, not {type(data).__name__}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("encrypted data is not base64") from None
    package = _multi_package(raw, max_size)
    if package is not None:
        plain = _open_multi(package, receiver, sender_address, max_size)
    else:
        plain = _open_single(raw, receiver, sender_address, max_size)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise CryptoError("decrypted data is not UTF-8 text") from None


def _inflate(data: bytes, max_size: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise CryptoError(f"decrypted data does not inflate: {exc}") from None
    if len(out) > max_size or inflater.unconsumed_tail:
        raise CryptoError(f"decrypted data inflates beyond {max_size} bytes")
    if not inflater.eof:
        raise CryptoError("decrypted data is truncated zlib")
    return out


def _open(key: bytes, nonce: bytes, sealed: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, sealed, None)
    except (InvalidTag, ValueError):
        raise CryptoError("authentication failed: wrong sender/receiver or tampered data") from None


def _unflag(flag: int, body: bytes, max_size: int) -> bytes:
    if flag == _FLAG_COMPRESSED:
        return _inflate(body, max_size)
    if flag == _FLAG_PLAIN:
        if len(body) > max_size:
            raise CryptoError(f"decrypted data is larger than {max_size} bytes")
        return body
    raise CryptoError(f"unknown compression flag {flag}")


def _open_single(raw: bytes, receiver: Identity, sender_address: str, max_size: int) -> bytes:
    if len(raw) < _NONCE + 1 + 16:
        raise CryptoError(f"encrypted data is too short ({len(raw)} bytes)")
    nonce, flag, sealed = raw[:_NONCE], raw[_NONCE], raw[_NONCE + 1:]
    return _unflag(flag, _open(derive_key(receiver, sender_address), nonce, sealed), max_size)


def _multi_package(raw: bytes, max_size: int) -> dict[str, Any] | None:
    """The multi-receiver package if ``raw`` is one, else None (then: single form)."""
    if not raw or raw[0] != _ZLIB_HEADER:
        return None
    try:
        package = json.loads(_inflate(raw, max_size))
    except (CryptoError, ValueError, RecursionError):
        return None  # a single-form nonce may start with 0x78 by chance
    if isinstance(package, dict) and package.get("M") is True:
        return package
    return None


def _hex(package: Mapping[str, Any], key: str) -> bytes:
    value = package.get(key)
    try:
        return bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raise CryptoError(f"multi-receiver package field {key!r} is not hex") from None


def _open_multi(package: Mapping[str, Any], receiver: Identity, sender_address: str, max_size: int) -> bytes:
    entries = package.get("k")
    if not isinstance(entries, list):
        raise CryptoError("multi-receiver package has no key list")
    mine = receiver.address()
    own_body = address_body(mine)
    entry = next((e for e in entries if isinstance(e, dict) and _body_or_none(e.get("a")) == own_body), None)
    if entry is None:
        raise CryptoError("not addressed to this receiver")
    wrapped = _hex(entry, "k")
    if len(wrapped) < _NONCE + 16:
        raise CryptoError("multi-receiver key entry is too short")
    content_key = _open(derive_key(receiver, sender_address), wrapped[:_NONCE], wrapped[_NONCE:])
    if len(content_key) != 32:
        raise CryptoError("multi-receiver content key is not 32 bytes")
    nonce, sealed = _hex(package, "n"), _hex(package, "d")
    if len(nonce) != _NONCE:
        raise CryptoError("multi-receiver nonce is not 12 bytes")
    flag_text = package.get("c", "01")
    try:
        flag = int(flag_text, 16) if isinstance(flag_text, str) else -1
    except ValueError:
        flag = -1
    return _unflag(flag, _open(content_key, nonce, sealed), max_size)


def _body_or_none(address: Any) -> str | None:
    try:
        return address_body(address)
    except DecodeError:
        return None


def encrypt_command(message: Mapping[str, Any], *, sender: Identity, receivers: Sequence[str] | str) -> dict[str, Any]:
    """A copy of a command whose ``ACTION``/``PAYLOAD`` travel only in ``EE_ENCRYPTED_DATA``.

    The plaintext is ``json.dumps({"ACTION": ..., "PAYLOAD": ...})`` with
    Python's default separators, as ratio1 writes it. ``EE_DEST`` and the
    signature are the caller's business (sign *after* encrypting).

    Raises:
        CryptoError: see :func:`encrypt`; also an ACTION/PAYLOAD that is not JSON.
    """
    try:
        plaintext = json.dumps({"ACTION": message.get("ACTION"), "PAYLOAD": message.get("PAYLOAD")})
    except (TypeError, ValueError, RecursionError) as exc:
        raise CryptoError(f"command ACTION/PAYLOAD is not JSON-serialisable: {exc}") from None
    out: dict[str, Any] = {EE_IS_ENCRYPTED: True, EE_ENCRYPTED_DATA: encrypt(plaintext, sender=sender,
                                                                             receivers=receivers)}
    skip = ("ACTION", "PAYLOAD", EE_IS_ENCRYPTED, EE_ENCRYPTED_DATA)
    out.update((k, v) for k, v in message.items() if k not in skip)
    return out


def decrypt_command(message: Mapping[str, Any], *, receiver: Identity,
                    sender_address: str | None = None) -> dict[str, Any]:
    """The clear view of a message marked ``EE_IS_ENCRYPTED`` (a copy).

    The decrypted object is merged under the outer fields (an outer field
    wins over an inner one of the same name); ``EE_ENCRYPTED_DATA`` is
    dropped and ``EE_IS_ENCRYPTED`` stays true. A message not marked
    encrypted is returned as a plain copy. Verify the signature *before*
    calling this: it covers ``EE_ENCRYPTED_DATA``, not the clear view.

    Raises:
        CryptoError: no sender, see :func:`decrypt`, or a plaintext that is not a JSON object.
    """
    if message.get(EE_IS_ENCRYPTED) is not True:
        return dict(message)
    sender = sender_address if sender_address is not None else message.get("EE_SENDER")
    if not isinstance(sender, str):
        raise CryptoError("encrypted message has no EE_SENDER to derive the key from")
    text = decrypt(message.get(EE_ENCRYPTED_DATA), receiver=receiver, sender_address=sender)  # type: ignore[arg-type]
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        raise CryptoError("decrypted data is not JSON") from None
    if not isinstance(inner, dict):
        raise CryptoError(f"decrypted data is a JSON {type(inner).__name__}, not an object")
    out = {k: v for k, v in message.items() if k != EE_ENCRYPTED_DATA}
    for key, value in inner.items():
        out.setdefault(key, value)
    return out
