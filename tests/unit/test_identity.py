"""Identity (key files, Signer port), CryptographyVerifier and the signer backend."""

from __future__ import annotations

import os
import pickle
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pye2.adapters.secp256k1 import CryptographyBackend, CryptographyVerifier, Identity
from pye2.errors import CryptoError, IdentityError, SignatureInvalid
from pye2.plugins import PluginHost
from pye2.ports.signer import Signer, Verifier
from pye2.wire import AIXP, RATIO1, sign_message, verify_message

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_save_creates_a_0600_pem_that_loads_back(tmp_path: Path) -> None:
    identity = Identity.generate()
    path = identity.save(tmp_path / "key.pem")
    assert _mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert Identity.load(path).public_key == identity.public_key


@posix_only
def test_save_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = Identity.generate().save(tmp_path / "key.pem")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    first = Identity.generate()
    first.save(path)
    before = path.read_bytes()
    with pytest.raises(IdentityError, match="already exists"):
        Identity.generate().save(path)
    assert path.read_bytes() == before
    assert Identity.load(path).public_key == first.public_key


@posix_only
def test_save_does_not_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "key.pem"
    link.symlink_to(target)
    with pytest.raises(IdentityError):
        Identity.generate().save(link)
    assert target.read_text() == "keep me"


@posix_only
def test_overwrite_replaces_atomically_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("old")
    path.chmod(0o644)
    second = Identity.generate()
    second.save(path, overwrite=True)
    assert _mode(path) == 0o600
    assert Identity.load(path).public_key == second.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]  # no temporary file left behind


def test_password_round_trip(tmp_path: Path) -> None:
    identity = Identity.generate()
    path = identity.save(tmp_path / "key.pem", password="correct horse")
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert Identity.load(path, password="correct horse").public_key == identity.public_key
    assert Identity.load(path, password=b"correct horse").public_key == identity.public_key
    with pytest.raises(IdentityError, match="password is needed"):
        Identity.load(path)
    with pytest.raises(IdentityError, match="wrong password"):
        Identity.load(path, password="wrong")
    plain = Identity.generate().save(tmp_path / "plain.pem")
    with pytest.raises(IdentityError, match="not encrypted"):
        Identity.load(plain, password="unneeded")


def test_repr_shows_only_the_address() -> None:
    identity = Identity.generate()
    pem = identity.to_pem().decode()
    secret_b64 = "".join(pem.splitlines()[1:-1])
    scalar = identity._key.private_numbers().private_value  # the secret, to look for it
    for text in (repr(identity), str(identity), f"{identity}"):
        assert identity.address(AIXP) in text
        assert secret_b64[:16] not in text and format(scalar, "x") not in text and str(scalar) not in text
    with pytest.raises(TypeError):
        pickle.dumps(identity)


def test_load_errors_are_identity_errors(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="cannot read"):
        Identity.load(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    garbage.chmod(0o600)
    with pytest.raises(IdentityError, match="not a PEM private key"):
        Identity.load(garbage)
    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(IdentityError, match="secp256k1"):
        Identity.from_pem(p256)
    with pytest.raises(IdentityError):
        Identity.load(tmp_path)  # a directory


@pytest.mark.parametrize("secret", [b"", b"\x00" * 32, b"\xff" * 32, b"\x01" * 31, "x" * 32])
def test_bad_private_scalars(secret: Any) -> None:
    with pytest.raises(IdentityError):
        Identity.from_private_bytes(secret)


def test_identity_is_a_signer_and_signs_verifiably() -> None:
    identity = Identity.generate()
    assert isinstance(identity, Signer)
    assert len(identity.public_key) == 33 and identity.public_key[0] in (2, 3)
    assert identity.address(RATIO1).startswith("0xai_") and identity.address().startswith("aixp_")
    digest = bytes(range(32))
    signature = identity.sign(digest)
    verifier = CryptographyVerifier()
    assert isinstance(verifier, Verifier)
    verifier.verify(identity.public_key, digest, signature)
    with pytest.raises(SignatureInvalid, match="bad signature"):
        verifier.verify(identity.public_key, bytes(32), signature)
    with pytest.raises(SignatureInvalid, match="bad signature"):
        verifier.verify(identity.public_key, digest, b"\x30\x02junk")
    with pytest.raises(SignatureInvalid, match="malformed sender"):
        verifier.verify(b"\x02" + b"\x00" * 32, digest, signature)  # x = 0 is not on the curve


def test_verifier_caches_parsed_keys_with_a_bound() -> None:
    verifier = CryptographyVerifier(cache_size=2)
    identities = [Identity.generate() for _ in range(3)]
    digest = bytes(32)
    for identity in identities + identities[-1:]:
        verifier.verify(identity.public_key, digest, identity.sign(digest))
    info = verifier.cache_info()
    assert info.hits == 1 and info.misses == 3 and info.currsize == 2


def test_ecdh_is_symmetric_and_checks_the_peer() -> None:
    a, b = Identity.generate(), Identity.generate()
    assert a.shared_secret(b.public_key) == b.shared_secret(a.public_key)
    assert len(a.shared_secret(b.public_key)) == 32
    with pytest.raises(CryptoError):
        a.shared_secret(b"\x02" + b"\x00" * 32)


def test_vector_pem_loads_to_its_addresses(vectors: Callable[[str], Any]) -> None:
    entry = vectors("keys.json")["node"]
    identity = Identity.from_pem(entry["private_key_pem_pkcs8_unencrypted"])
    assert identity.address(RATIO1) == entry["address"]
    assert identity.address(AIXP) == entry["address_legacy_aixp_prefix"]


def test_backend_is_registered_and_works_through_the_plugin_host() -> None:
    backend = PluginHost(entry_points=False).load().signer_backend("cryptography")
    assert isinstance(backend, CryptographyBackend)
    signer = backend.from_private_bytes(bytes(31) + b"\x07")
    signed = sign_message({"A": 1}, signer, profile=RATIO1)
    assert backend.verifier() is backend.verifier()
    assert verify_message(signed, profile=RATIO1, verifier=backend.verifier()) == signer.address(RATIO1)
    assert backend.generate().public_key != signer.public_key


@pytest.mark.parametrize("seed", [b"a", b"b", b"pye2"])
def test_signer_backends_give_identical_signatures(seed: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from pye2.adapters.secp256k1 import SIGNER_ENV

    secret = hashlib.sha256(seed).digest()
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(20)]
    monkeypatch.setenv(SIGNER_ENV, "cryptography")  # read at the first signature
    openssl = Identity.from_private_bytes(secret)
    by_openssl = [openssl.sign(d) for d in digests]
    monkeypatch.setenv(SIGNER_ENV, "coincurve")
    fast = Identity.from_private_bytes(secret)
    assert [fast.sign(d) for d in digests] == by_openssl
    assert fast._signer is not None and fast._signer.__self__.__class__.__name__ == "CoincurveSigner"
    assert openssl._signer == openssl._sign_openssl


def test_a_key_file_others_can_read_is_refused_as_openssh_does(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYE2_ALLOW_INSECURE_KEY", raising=False)
    me = Identity.generate()
    path = me.save(tmp_path / "k.pem", "pw")
    path.chmod(0o644)
    with pytest.raises(IdentityError) as err:
        Identity.load(path, "pw")
    text = str(err.value)
    assert f"chmod 600 {path}" in text and "BEGIN" not in text and "pw" not in text.replace(str(tmp_path), "")
    assert Identity.load(path, "pw", allow_insecure=True).public_key == me.public_key
    monkeypatch.setenv("PYE2_ALLOW_INSECURE_KEY", "1")
    assert Identity.load(path, "pw").public_key == me.public_key
    path.chmod(0o600)
    monkeypatch.delenv("PYE2_ALLOW_INSECURE_KEY")
    assert Identity.load(path, "pw").public_key == me.public_key
