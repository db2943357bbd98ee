"""secp256k1 identities, signing and verification on ``cryptography``.

Features:

* :class:`Identity` — a key pair; implements the Signer port. Built only by
  explicit functions (``generate``, ``from_pem``, ``from_private_bytes``,
  ``load``); ``save`` writes a PKCS#8 PEM with mode 0600 and never replaces
  an existing file unless asked. Its ``repr`` shows the address only; key
  material is never logged. Signing runs on libsecp256k1 when coincurve
  (extra ``fast``) is installed — the signatures are byte-identical (RFC 6979,
  low S) and about eight times faster — unless ``PYE2_SIGNER=cryptography``.
* :class:`CryptographyVerifier` — implements the Verifier port; parsed public
  keys are kept in a bounded LRU keyed by the 33-byte point.
* :class:`CryptographyBackend` — the ``SignerFactory`` registered as signer
  ``"cryptography"``.

ECDSA is computed over the 32 digest bytes with SHA-256 as the ECDSA hash
(protocol.md section 7), signatures are DER.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pye2.domain.keys import eth_address, public_key_to_address
from pye2.domain.profiles import AIXP, WireProfile
from pye2.errors import CryptoError, IdentityError, SignatureInvalid

__all__ = ["SIGNER_ENV", "CryptographyBackend", "CryptographyVerifier", "Identity"]

#: Environment variable: ``cryptography`` makes :class:`Identity` sign with OpenSSL even when coincurve is installed.
SIGNER_ENV = "PYE2_SIGNER"

log = logging.getLogger(__name__)

_CURVE = ec.SECP256K1()
# RFC 6979 nonces: no dependence on the RNG at signing time, and reproducible simulations
_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _ORDER // 2
_FILE_MODE = 0o600

PathLike = str | os.PathLike[str]


def _password_bytes(password: str | bytes | None) -> bytes | None:
    if password is None or password in ("", b""):
        return None
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, bytes):
        return password
    raise IdentityError(f"password must be str or bytes, not {type(password).__name__}")


def _insecure_allowed() -> bool:
    return os.environ.get("PYE2_ALLOW_INSECURE_KEY", "").strip().lower() in ("1", "true", "yes", "on")


class Identity:
    """A secp256k1 private key that signs for one sender (the Signer port).

    Construct with :meth:`generate`, :meth:`from_pem`, :meth:`from_private_bytes`
    or :meth:`load`; the constructor only wraps an existing key object.
    """

    __slots__ = ("_key", "_public_key", "_signer")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(private_key.curve, ec.SECP256K1):
            raise IdentityError("an Identity needs a secp256k1 EC private key")
        self._key = private_key
        self._signer: Any = None  # chosen on the first signature, see _choose_signer
        self._public_key = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def generate(cls) -> Identity:
        """A new random identity."""
        return cls(ec.generate_private_key(_CURVE))

    @classmethod
    def from_private_bytes(cls, secret: bytes) -> Identity:
        """An identity from its 32-byte private scalar (big-endian).

        Raises:
            IdentityError: not 32 bytes, or not in [1, n-1].
        """
        if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
            raise IdentityError("a secp256k1 private key is 32 bytes")
        value = int.from_bytes(secret, "big")
        if not 0 < value < _ORDER:
            raise IdentityError("private scalar is out of range for secp256k1")
        return cls(ec.derive_private_key(value, _CURVE))

    @classmethod
    def from_pem(cls, pem: bytes | str, password: str | bytes | None = None) -> Identity:
        """An identity from PKCS#8 (or SEC1) PEM text.

        Raises:
            IdentityError: not a PEM private key, wrong or missing password,
                or a key on another curve. The message never includes the key.
        """
        data = pem.encode("utf-8") if isinstance(pem, str) else pem
        if not isinstance(data, bytes):
            raise IdentityError(f"PEM must be str or bytes, not {type(pem).__name__}")
        secret = _password_bytes(password)
        try:
            key = serialization.load_pem_private_key(data, secret)
        except TypeError:
            if secret is None:
                raise IdentityError("the key is encrypted: a password is needed") from None
            raise IdentityError("the key is not encrypted: do not pass a password") from None
        except (ValueError, UnsupportedAlgorithm):
            if secret is not None:
                raise IdentityError("cannot decrypt the key: wrong password, or not a PEM private key") from None
            raise IdentityError("not a PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256K1):
            raise IdentityError("the key is not a secp256k1 EC key")
        return cls(key)

    @classmethod
    def load(cls, path: PathLike, password: str | bytes | None = None, *, allow_insecure: bool = False) -> Identity:
        """Read a key file written by :meth:`save` (or by the original SDKs).

        On POSIX a file that group or others may read or write is refused, as
        OpenSSH refuses an unprotected private key: fix it with ``chmod 600``.
        ``allow_insecure=True`` (or ``PYE2_ALLOW_INSECURE_KEY=1``) loads it anyway.

        Raises:
            IdentityError: unreadable or unprotected file, or see :meth:`from_pem`.
        """
        name = os.fspath(path)
        try:
            with open(name, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                data = f.read()
        except OSError as exc:
            raise IdentityError(f"cannot read key file {name!r}: {exc.strerror or exc}") from None
        if os.name == "posix" and mode & 0o077 and not (allow_insecure or _insecure_allowed()):
            raise IdentityError(
                f"UNPROTECTED PRIVATE KEY FILE: {name} is accessible by others (mode {mode & 0o777:o}); "
                f"anyone who can read it can act as this identity. Fix it with: chmod 600 {name} "
                f"(or, knowingly, PYE2_ALLOW_INSECURE_KEY=1 / Identity.load(..., allow_insecure=True))")
        try:
            identity = cls.from_pem(data, password)
        except IdentityError as exc:
            raise IdentityError(f"key file {name!r}: {exc}") from None
        log.debug("loaded identity %s from %s", identity.address(AIXP), name)
        return identity

    # -- persistence ----------------------------------------------------------------
    def to_pem(self, password: str | bytes | None = None) -> bytes:
        """PKCS#8 PEM; encrypted with the best available scheme when ``password`` is set."""
        secret = _password_bytes(password)
        algorithm: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption())
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm)

    def save(self, path: PathLike, password: str | bytes | None = None, *, overwrite: bool = False) -> Path:
        """Write the key as PEM to ``path`` with mode 0600; return the path.

        The file is created exclusively (``O_EXCL``), so an existing file (or a
        symlink) is never replaced unless ``overwrite=True``, in which case a
        private temporary file is renamed over it atomically.

        Raises:
            IdentityError: the file exists (without ``overwrite``) or cannot be written.
        """
        target = Path(path)
        data = self.to_pem(password)
        if not overwrite:
            _write_exclusive(target, data)
        else:
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
            _write_exclusive(tmp, data)
            try:
                os.replace(tmp, target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise IdentityError(f"cannot write key file {os.fspath(target)!r}: {exc.strerror or exc}") from None
        log.info("wrote key file %s for %s", os.fspath(target), self.address(AIXP))
        return target

    # -- the Signer port ----------------------------------------------------------
    @property
    def public_key(self) -> bytes:
        """33-byte SEC1 compressed public point."""
        return self._public_key

    def address(self, profile: WireProfile = AIXP) -> str:
        """This identity's address under ``profile`` (``aixp_...`` or ``0xai_...``)."""
        return public_key_to_address(self._public_key, profile)

    @property
    def eth_address(self) -> str:
        """The EIP-55 Ethereum-style address ratio1 derives (``EE_ETH_SENDER``)."""
        return eth_address(self._public_key)

    def sign(self, digest: bytes) -> bytes:
        """DER ECDSA signature over ``digest`` (SHA-256 as the ECDSA hash), low-S form.

        OpenSSL accepts either S; libsecp256k1-based verifiers (coincurve)
        accept only the low one, so every pye2 signature uses it.
        """
        signer = self._signer
        if signer is None:
            signer = self._signer = self._choose_signer()
        signature: bytes = signer(bytes(digest))
        return signature

    def _sign_openssl(self, digest: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(digest, _ECDSA))
        if s > _HALF_ORDER:
            s = _ORDER - s
        return encode_dss_signature(r, s)

    def _choose_signer(self) -> Any:
        """libsecp256k1's signer for this key when coincurve is importable (``PYE2_SIGNER`` decides)."""
        choice = os.environ.get(SIGNER_ENV, "").strip().lower() or "auto"
        if choice == "cryptography":
            return self._sign_openssl
        from pye2.adapters.coincurve_backend import CoincurveSigner
        from pye2.errors import ExtraMissing

        try:
            secret = self._key.private_numbers().private_value.to_bytes(32, "big")
            return CoincurveSigner(secret).sign
        except ExtraMissing:
            if choice == "coincurve":
                raise
            return self._sign_openssl

    def shared_secret(self, peer_public_key: bytes) -> bytes:
        """Raw ECDH secret (x coordinate, 32 bytes) with a peer's compressed key.

        Raises:
            CryptoError: the peer key is not a secp256k1 point.
        """
        try:
            peer = _parse_public_key(bytes(peer_public_key))
        except ValueError:
            raise CryptoError("peer public key is not a point on secp256k1") from None
        return self._key.exchange(ec.ECDH(), peer)

    def __repr__(self) -> str:
        return f"Identity({self.address(AIXP)!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would copy the private key into whatever stores the pickle.
        raise TypeError("Identity cannot be pickled; save it with Identity.save(path, password)")


def _write_exclusive(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, _FILE_MODE)
    except FileExistsError:
        raise IdentityError(
            f"key file {os.fspath(path)!r} already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise IdentityError(f"cannot create key file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _FILE_MODE)  # the umask may have been stricter; never looser
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise IdentityError(f"cannot write key file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    os.close(fd)


def _parse_public_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, public_key)


class CryptographyVerifier:
    """ECDSA secp256k1 verification (the Verifier port) with a bounded key cache.

    Thread-safe: the cache is a C-level ``functools.lru_cache``.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self._load = functools.lru_cache(maxsize=cache_size)(_parse_public_key)

    def verify(self, public_key: bytes, digest: bytes, signature: bytes) -> None:
        """Return if ``signature`` is valid for ``digest`` under ``public_key``.

        Raises:
            SignatureInvalid: "malformed sender: ..." for a key that is not a
                curve point, "bad signature" otherwise.
        """
        try:
            key = self._load(bytes(public_key))
        except (ValueError, TypeError):
            raise SignatureInvalid("malformed sender: public key is not a point on secp256k1") from None
        try:
            key.verify(bytes(signature), bytes(digest), _ECDSA)
        except (InvalidSignature, ValueError, TypeError):
            raise SignatureInvalid("bad signature") from None

    def cache_info(self) -> Any:
        """Hits/misses of the parsed-key cache (``functools`` ``CacheInfo``)."""
        return self._load.cache_info()


class CryptographyBackend:
    """Signer backend ``"cryptography"`` (the SignerFactory port)."""

    name = "cryptography"

    def __init__(self) -> None:
        self._verifier: CryptographyVerifier | None = None

    def from_private_bytes(self, secret: bytes) -> Identity:
        """An :class:`Identity` from a 32-byte private scalar."""
        return Identity.from_private_bytes(secret)

    def generate(self) -> Identity:
        """A new random :class:`Identity`."""
        return Identity.generate()

    def verifier(self) -> CryptographyVerifier:
        """The backend's shared verifier (one key cache per backend)."""
        if self._verifier is None:
            self._verifier = CryptographyVerifier()
        return self._verifier
