"""Properties of signing, verification, encryption and key decoding.

* sign then verify holds for arbitrary JSON-like messages, in both profiles;
* a change to signed content is detected exactly when it changes the
  canonical text (so, e.g., ``1.0`` -> ``1`` is no change under AIXP);
* arbitrary input to verify_message / decrypt / address and key decoding
  raises only pye2 errors.

(Paired with the vector tests in tests/unit/domain: a symmetric bug in our
signer and verifier would pass here but not there.)
"""

from __future__ import annotations

import base64
import copy
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pye2.adapters.encryption import decrypt
from pye2.domain.canonical import canonical_json
from pye2.domain.keys import address_to_public_key, eth_address
from pye2.domain.signing import decode_signature
from pye2.errors import CryptoError, DecodeError, IdentityError, Pye2Error, SignatureInvalid
from pye2.wire import AIXP, RATIO1, Identity, WireProfile, sign_message, verify_message

PROFILES = (AIXP, RATIO1)
SIGNER = Identity.from_private_bytes(bytes.fromhex("11" * 32))
OTHER = Identity.from_private_bytes(bytes.fromhex("22" * 32))
SIGNATURE_FIELDS = {"EE_SIGN", "EE_SENDER", "EE_HASH", "EE_ETH_SIGN", "EE_ETH_SENDER", "SIGN_CANON_V"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.0, -0.0, 100.0, 1.5e20, 2.5e-10, 0.1]),
    st.text(max_size=10),
)
values = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=5), kids, max_size=4)),
    max_leaves=15,
)
data_keys = st.text(max_size=10).filter(lambda k: k not in SIGNATURE_FIELDS)
messages = st.dictionaries(data_keys, values, max_size=6)
profiles = st.sampled_from(PROFILES)
fast = settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])


def _canon(message: dict[str, Any], profile: WireProfile) -> bytes:
    return canonical_json(message, profile=profile)


@fast
@given(messages, profiles)
def test_sign_then_verify(message: dict[str, Any], profile: WireProfile) -> None:
    before = copy.deepcopy(message)
    signed = sign_message(message, SIGNER, profile=profile)
    assert verify_message(signed, profile=profile) == SIGNER.address(profile)
    assert verify_message(json.loads(json.dumps(signed)), profile=profile, json_native=True) == SIGNER.address(profile)
    assert _canon(message, profile) == _canon(before, profile) and message.keys() == before.keys()


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        if not prefix and key in SIGNATURE_FIELDS:
            continue
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _mutate(message: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    mutated = copy.deepcopy(message)
    paths = _paths(mutated)
    action = data.draw(st.sampled_from(["replace", "add", "delete"] if paths else ["add"]))
    if action == "add":
        mutated[data.draw(data_keys)] = data.draw(values)
        return mutated
    path = data.draw(st.sampled_from(paths))
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[path[-1]] = data.draw(values)
    else:
        del parent[path[-1]]
    return mutated


@fast
@given(messages, profiles, st.data())
def test_a_change_is_detected_exactly_when_it_changes_the_signed_text(
        message: dict[str, Any], profile: WireProfile, data: st.DataObject) -> None:
    signed = sign_message(message, SIGNER, profile=profile)
    mutated = _mutate(signed, data)
    if _canon(mutated, profile) == _canon(signed, profile):
        assert verify_message(mutated, profile=profile) == SIGNER.address(profile)
    else:
        with pytest.raises(SignatureInvalid):
            verify_message(mutated, profile=profile)


@fast
@given(messages, profiles)
def test_another_signers_signature_never_verifies(message: dict[str, Any], profile: WireProfile) -> None:
    forged = sign_message(message, OTHER, profile=profile)
    forged["EE_SENDER"] = SIGNER.address(profile)
    with pytest.raises(SignatureInvalid):
        verify_message(forged, profile=profile)


# -- arbitrary input raises only pye2 errors -----------------------------------------------

addresses = st.one_of(
    st.sampled_from([SIGNER.address(AIXP), SIGNER.address(RATIO1), OTHER.address(RATIO1)]),
    st.builds(lambda p, b: p + b, st.sampled_from(["0xai_", "aixp_", ""]),
              st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", min_size=40,
                       max_size=48)),
    st.text(max_size=60), values,
)
signatures = st.one_of(st.text(alphabet="ABCDEFabcdef0123456789-_=+/", max_size=110), values,
                       st.binary(max_size=80).map(lambda b: base64.urlsafe_b64encode(b).decode()))
hashes = st.one_of(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), values)
signed_looking = st.fixed_dictionaries(
    {}, optional={"EE_SENDER": addresses, "EE_SIGN": signatures, "EE_HASH": hashes,
                  "SIGN_CANON_V": st.sampled_from(["v1", "v2", "v3", None, 2]), "DATA": values})


@settings(max_examples=300)
@given(st.one_of(values, messages, signed_looking, st.binary(max_size=64)), profiles)
def test_verify_raises_only_signature_invalid(message: Any, profile: WireProfile) -> None:
    try:
        sender = verify_message(message, profile=profile)
    except SignatureInvalid as exc:
        assert exc.reason
    else:
        assert isinstance(sender, str)


@settings(max_examples=200)
@given(messages, profiles, st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupted_wire_bytes_raise_only_signature_invalid(message: dict[str, Any], profile: WireProfile,
                                                          flips: list[tuple[int, int]]) -> None:
    raw = bytearray(json.dumps(sign_message(message, SIGNER, profile=profile)).encode())
    for position, mask in flips:
        raw[position % len(raw)] ^= mask
    with pytest.raises(SignatureInvalid):
        verify_message(bytes(raw), profile=profile)  # type: ignore[arg-type]  # bytes are not a message
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):
        return  # the serializer's job, not verify's
    try:
        assert verify_message(decoded, profile=profile) == SIGNER.address(profile)
    except SignatureInvalid:
        pass


packages = st.fixed_dictionaries(
    {"M": st.sampled_from([True, False, 1])},
    optional={"c": st.sampled_from(["01", "00", "zz", 5]), "n": st.one_of(st.text(max_size=30), values),
              "d": st.one_of(st.binary(max_size=40).map(bytes.hex), values),
              "k": st.one_of(st.lists(st.fixed_dictionaries({"a": addresses, "k": st.binary(max_size=80).map(bytes.hex)}),
                                      max_size=3), values)})
ciphertexts = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=120).map(lambda b: base64.b64encode(b).decode()),
    packages.map(lambda p: base64.b64encode(zlib.compress(json.dumps(p).encode())).decode()),
)


@settings(max_examples=200)
@given(ciphertexts, st.sampled_from([SIGNER.address(RATIO1), "0xai_bad", OTHER.address(AIXP)]))
def test_decrypt_raises_only_crypto_error(data: str, sender_address: str) -> None:
    try:
        text = decrypt(data, receiver=OTHER, sender_address=sender_address)
    except CryptoError:
        return
    assert isinstance(text, str)  # only possible for genuine ciphertext, which random data is not


@settings(max_examples=500)
@given(addresses)
def test_address_decoding_raises_only_decode_error(address: Any) -> None:
    try:
        key = address_to_public_key(address)
    except DecodeError:
        return
    assert len(key) == 33
    try:
        eth_address(key)
    except DecodeError:
        pass  # not every 33-byte string is a curve point


@settings(max_examples=300)
@given(signatures)
def test_signature_decoding_raises_only_signature_invalid(text: Any) -> None:
    try:
        assert isinstance(decode_signature(text), bytes)
    except SignatureInvalid:
        pass


@settings(max_examples=100)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: f"-----BEGIN PRIVATE KEY-----\n{t}\n"
                                                                        "-----END PRIVATE KEY-----\n")))
def test_pem_decoding_raises_only_identity_error(pem: Any) -> None:
    with pytest.raises(IdentityError):
        Identity.from_pem(pem)


@settings(max_examples=200)
@given(st.one_of(messages, st.dictionaries(st.one_of(st.integers(), st.text(max_size=3), st.none()), values,
                                            max_size=4)), profiles, st.sampled_from([None, "v1", "v2", "legacy"]))
def test_canonical_json_raises_only_pye2_errors(message: dict[Any, Any], profile: WireProfile,
                                                canon: str | None) -> None:
    try:
        assert isinstance(canonical_json(message, profile=profile, canon=canon), bytes)
    except Pye2Error:
        pass
