"""Encryption against ratio1's vectors (encryption.json), then our own round trips.

Receivers decrypt what ratio1 encrypted (single and multi-receiver forms),
non-receivers and tampered data fail with CryptoError, the layout of the
single form is as documented, and what pye2 encrypts decrypts both ways.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from pye2.adapters.encryption import (
    EE_ENCRYPTED_DATA,
    EE_IS_ENCRYPTED,
    decrypt,
    decrypt_command,
    encrypt,
    encrypt_command,
)
from pye2.errors import CryptoError
from pye2.wire import RATIO1, Identity, sign_message, verify_message


def _load(config: pytest.Config, name: str) -> Any:
    loader = next(p.load_vectors for p in config.pluginmanager.get_plugins() if hasattr(p, "load_vectors"))
    return loader(name)


_KINDS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "enc_case": lambda c: True,
    "layout_case": lambda c: "layout" in c,
    "multi_case": lambda c: "package_json" in c,
    "envelope_case": lambda c: "signed_message" in c,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, wanted in _KINDS.items():
        if fixture in metafunc.fixturenames:
            cases = [c for c in _load(metafunc.config, "encryption.json")["cases"] if wanted(c)]
            metafunc.parametrize(fixture, [pytest.param(c, id=c["id"]) for c in cases])


@pytest.fixture(scope="module")
def ids(vectors: Callable[[str], Any]) -> dict[str, Identity]:
    keys = vectors("keys.json")
    return {name: Identity.from_pem(keys[name]["private_key_pem_pkcs8_unencrypted"])
            for name in ("signer", "node", "third")}


def _by_address(ids: dict[str, Identity], address: str) -> Identity:
    return next(i for i in ids.values() if i.address(RATIO1) == address)


def _ciphertext(case: dict[str, Any]) -> str | None:
    if "encrypted_b64" in case:
        return str(case["encrypted_b64"])
    if "signed_message" in case:
        return str(case["signed_message"][EE_ENCRYPTED_DATA])
    return None


def _receivers(case: dict[str, Any]) -> list[str]:
    return list(case.get("receiver_addresses") or [case["receiver_address"]])


# -- ratio1 -> pye2 -------------------------------------------------------------------------


def test_vectors_have_each_form(vectors: Callable[[str], Any]) -> None:
    cases = vectors("encryption.json")["cases"]
    assert any(c["mode"] == "single" for c in cases) and any(c["mode"] == "multi" for c in cases)


def test_receivers_decrypt_what_ratio1_encrypted(enc_case: dict[str, Any], ids: dict[str, Identity]) -> None:
    data = _ciphertext(enc_case)
    assert data is not None
    expected = [enc_case.get("ratio1_receiver_decrypt"), enc_case.get("ratio1_second_receiver_decrypt")]
    for receiver_address, plain in zip(_receivers(enc_case), expected):
        receiver = _by_address(ids, receiver_address)
        if plain is None:  # ratio1 could not decrypt either (tampered case)
            with pytest.raises(CryptoError):
                decrypt(data, receiver=receiver, sender_address=enc_case["sender_address"])
        else:
            assert decrypt(data, receiver=receiver, sender_address=enc_case["sender_address"]) == plain
            assert plain == enc_case["plaintext"]


def test_non_receivers_fail(enc_case: dict[str, Any], ids: dict[str, Identity]) -> None:
    data = _ciphertext(enc_case)
    assert data is not None
    receivers = set(_receivers(enc_case))
    outsiders = [i for i in ids.values() if i.address(RATIO1) not in receivers]
    assert outsiders
    for outsider in outsiders:
        with pytest.raises(CryptoError):
            decrypt(data, receiver=outsider, sender_address=enc_case["sender_address"])


def test_single_form_layout(layout_case: dict[str, Any]) -> None:
    raw = base64.b64decode(layout_case["encrypted_b64"])
    layout = layout_case["layout"]
    assert raw[:12].hex() == layout["nonce_hex"]
    assert raw[12] == layout["compressed_flag"]
    assert len(raw) - 13 == layout["ciphertext_and_tag_len"]


def test_multi_form_package(multi_case: dict[str, Any]) -> None:
    package = json.loads(zlib.decompress(base64.b64decode(multi_case["encrypted_b64"])))
    assert package == multi_case["package_json"]
    assert package["M"] is True and [entry["a"] for entry in package["k"]] == multi_case["receiver_addresses"]


def test_flipped_bit_is_detected(enc_case: dict[str, Any], ids: dict[str, Identity]) -> None:
    data = _ciphertext(enc_case)
    assert data is not None
    receiver = _by_address(ids, _receivers(enc_case)[0])
    if "package_json" in enc_case:
        package = dict(enc_case["package_json"])
        body = bytearray(bytes.fromhex(package["d"]))
        body[len(body) // 2] ^= 0x01
        package["d"] = body.hex()
        tampered = base64.b64encode(zlib.compress(json.dumps(package).encode())).decode()
    else:
        raw = bytearray(base64.b64decode(data))
        raw[-1] ^= 0x01
        tampered = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(CryptoError):
        decrypt(tampered, receiver=receiver, sender_address=enc_case["sender_address"])


def test_encrypted_command_envelope(envelope_case: dict[str, Any], ids: dict[str, Identity]) -> None:
    enc_case = envelope_case
    envelope = enc_case["signed_message"]
    assert verify_message(envelope, profile=RATIO1) == enc_case["sender_address"]
    assert "ACTION" not in envelope and envelope[EE_IS_ENCRYPTED] is True
    clear = decrypt_command(envelope, receiver=_by_address(ids, enc_case["receiver_address"]))
    inner = json.loads(enc_case["plaintext"])
    assert clear["ACTION"] == inner["ACTION"] and clear["PAYLOAD"] == inner["PAYLOAD"]
    assert EE_ENCRYPTED_DATA not in clear and clear["EE_ID"] == envelope["EE_ID"]


# -- pye2 -> pye2 ----------------------------------------------------------------------------


def test_single_round_trip_and_random_nonce(ids: dict[str, Identity]) -> None:
    sender, node = ids["signer"], ids["node"]
    text = '{"ACTION": "X", "PAYLOAD": "Bună 🚀"}'
    first = encrypt(text, sender=sender, receivers=[node.address(RATIO1)])
    second = encrypt(text, sender=sender, receivers=node.address(RATIO1))
    assert first != second
    for data in (first, second):
        raw = base64.b64decode(data)
        assert raw[12] == 1
        assert decrypt(data, receiver=node, sender_address=sender.address(RATIO1)) == text
        # ECDH is symmetric: the sender can read what it sent.
        assert decrypt(data, receiver=sender, sender_address=node.address(RATIO1)) == text


def test_multi_round_trip(ids: dict[str, Identity]) -> None:
    sender, node, third = ids["signer"], ids["node"], ids["third"]
    data = encrypt("hello", sender=sender, receivers=[node.address(RATIO1), third.address()])
    assert decrypt(data, receiver=node, sender_address=sender.address()) == "hello"
    assert decrypt(data, receiver=third, sender_address=sender.address(RATIO1)) == "hello"
    with pytest.raises(CryptoError, match="not addressed to this receiver"):
        decrypt(data, receiver=sender, sender_address=sender.address())


def test_wrong_sender_fails(ids: dict[str, Identity]) -> None:
    data = encrypt("x", sender=ids["signer"], receivers=[ids["node"].address()])
    with pytest.raises(CryptoError, match="authentication failed"):
        decrypt(data, receiver=ids["node"], sender_address=ids["third"].address())


def test_command_round_trip_through_signing(ids: dict[str, Identity]) -> None:
    sender, node = ids["signer"], ids["node"]
    command = {"EE_ID": "node-a", "ACTION": "UPDATE_CONFIG", "PAYLOAD": {"NAME": "p1", "F": 1.5},
               "INITIATOR_ID": "pySDK", "EE_DEST": node.address(RATIO1)}
    sealed = encrypt_command(command, sender=sender, receivers=[node.address(RATIO1)])
    assert list(sealed)[:2] == [EE_IS_ENCRYPTED, EE_ENCRYPTED_DATA]
    assert "ACTION" not in sealed and "PAYLOAD" not in sealed and command["ACTION"] == "UPDATE_CONFIG"
    assert decrypt(sealed[EE_ENCRYPTED_DATA], receiver=node, sender_address=sender.address()) == \
        json.dumps({"ACTION": command["ACTION"], "PAYLOAD": command["PAYLOAD"]})
    signed = sign_message(sealed, sender, profile=RATIO1)
    assert verify_message(signed, profile=RATIO1) == sender.address(RATIO1)
    clear = decrypt_command(signed, receiver=node)
    assert clear["ACTION"] == "UPDATE_CONFIG" and clear["PAYLOAD"] == {"NAME": "p1", "F": 1.5}
    assert decrypt_command(command, receiver=node) == command  # not encrypted: a plain copy


def test_outer_fields_win_when_merging(ids: dict[str, Identity]) -> None:
    sender, node = ids["signer"], ids["node"]
    data = encrypt(json.dumps({"EE_ID": "inner", "ACTION": "A"}), sender=sender, receivers=[node.address()])
    message = {EE_IS_ENCRYPTED: True, EE_ENCRYPTED_DATA: data, "EE_ID": "outer", "EE_SENDER": sender.address()}
    assert decrypt_command(message, receiver=node) == {EE_IS_ENCRYPTED: True, "EE_ID": "outer",
                                                       "EE_SENDER": sender.address(), "ACTION": "A"}


def test_inflation_is_capped(ids: dict[str, Identity]) -> None:
    data = encrypt("0" * 100_000, sender=ids["signer"], receivers=[ids["node"].address()])
    assert len(data) < 2_000
    with pytest.raises(CryptoError, match="inflates beyond"):
        decrypt(data, receiver=ids["node"], sender_address=ids["signer"].address(), max_size=10_000)


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(b"short").decode(),
                                 base64.b64encode(b"\x78\x9c" + b"\x00" * 40).decode(), "QUJD\n"])
def test_malformed_data_raises_crypto_error(bad: str, ids: dict[str, Identity]) -> None:
    with pytest.raises(CryptoError):
        decrypt(bad, receiver=ids["node"], sender_address=ids["signer"].address())


def test_bad_arguments_raise_crypto_error(ids: dict[str, Identity]) -> None:
    with pytest.raises(CryptoError):
        encrypt("x", sender=ids["signer"], receivers=[])
    with pytest.raises(CryptoError, match="bad peer address"):
        encrypt("x", sender=ids["signer"], receivers=["0xai_short"])
    with pytest.raises(CryptoError):
        encrypt(b"bytes", sender=ids["signer"], receivers=[ids["node"].address()])  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        encrypt_command({"ACTION": "X", "PAYLOAD": {1, 2}}, sender=ids["signer"], receivers=[ids["node"].address()])
    with pytest.raises(CryptoError, match="EE_SENDER"):
        decrypt_command({EE_IS_ENCRYPTED: True, EE_ENCRYPTED_DATA: "QUJD"}, receiver=ids["node"])
