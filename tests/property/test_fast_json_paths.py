"""The orjson fast paths change speed only: same canonical text, same parsed messages, same verdicts.

* ``OrjsonSortedText`` returns either exactly the stdlib ``v2`` text or None,
  on generated JSON-native data (floats of every magnitude included) and on
  the floats where the two writers are known to differ;
* ``best_parser`` (orjson) returns what the stdlib returns for generated JSON
  text, including the inputs orjson hands back (NaN, huge ints);
* every signature vector gets the same verdict and reason with and without
  the fast paths, through ``verify_fields`` and through a Session-level engine;
* the DER fast path of the coincurve verifier agrees with the full parse.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pye2.adapters.coincurve_backend import _low_s
from pye2.adapters.json_serializer import JsonSerializer
from pye2.adapters.orjson_canonical import OrjsonSortedText
from pye2.adapters.secp256k1 import CryptographyVerifier
from pye2.adapters.select import JSON_ENV, best_parser, best_sorted_text
from pye2.domain.canonical import encode
from pye2.domain.profiles import CANON_LEGACY, CANON_V1, CANON_V2
from pye2.domain.signing import verify_fields
from pye2.errors import ConfigError, SignatureInvalid
from pye2.wire import AIXP, RATIO1, WireProfile

FAST_SORTED = OrjsonSortedText()
STDLIB = JsonSerializer()
FAST_PARSE = best_parser(STDLIB, "orjson")
VERIFIER = CryptographyVerifier()

floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-6, max_value=1e-3),
    st.floats(min_value=-1e-3, max_value=-1e-6),
    st.sampled_from([1e-5, 9.99e-5, 1.5e-7, 1e-9, 1e-10, 1e16, 1e22, -0.0, 5e-324, 0.0001]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), floats, st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)), max_leaves=25)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=8)


@given(json_objects)
@settings(max_examples=600)
@example({"x": 8.755342442351592e-07})
@example({"x": 1e-05, "y": "0.00001"})
@example({"x": 2**64})
@example({"id": "3e-7", "v": 1.0})
@example({"t": "2023-11-14 22:13:50.000000", "x": 1e-05})
@example({"id": "12e-4b", "x": [8.7e-07], "y": {"z": 1.5e-9}})
@example({"t": "50.000000", "x": [-1e-05, 10.00001, 20.00001]})
def test_orjson_v2_text_is_exact_or_none(data: dict[str, Any]) -> None:
    exact = encode(data, CANON_V2, json_native=True)
    fast = FAST_SORTED(data)
    assert fast is None or fast == exact


@given(json_objects)
@settings(max_examples=300)
@example({"x": 100.0, "y": [1.5e+20, -0.0, 2.50], "z": "1.0"})
def test_legacy_canon_with_the_orjson_writer_is_exact(data: dict[str, Any]) -> None:
    assert encode(data, CANON_LEGACY, sorted_text=FAST_SORTED) == encode(data, CANON_LEGACY)
    assert encode(data, CANON_V2, sorted_text=FAST_SORTED) == encode(data, CANON_V2)
    assert encode(data, CANON_V1, sorted_text=FAST_SORTED) == encode(data, CANON_V1)


@pytest.mark.parametrize("value", [8.7e-07, 1e-05, 4.9e-05, -3.9e-05, 2.5e-09])
def test_floats_written_differently_send_the_text_to_the_exact_path(value: float) -> None:
    assert FAST_SORTED({"v": value}) is None
    assert encode({"v": value}, CANON_V2, json_native=True) == json.dumps(
        {"v": value}, separators=(",", ":")).encode()


def test_common_message_takes_the_fast_path() -> None:
    data = {"EE_ID": "node-1", "EE_MESSAGE_SEQ": 7, "X": [0.5, 1e16, 1e-10], "T": "e-1", "S": "é"}
    assert FAST_SORTED(data) == encode(data, CANON_V2, json_native=True)


@pytest.mark.parametrize("stamp", ["2023-11-14 22:13:50.000000", "20231114221350000000", "10.00001"])
def test_a_timestamp_ending_in_zero_seconds_keeps_the_fast_path(stamp: str) -> None:
    data = {"EE_TIMESTAMP": stamp, "UPTIME": 30.0, "V": 10.00001}
    assert FAST_SORTED(data) == encode(data, CANON_V2, json_native=True)


@pytest.mark.parametrize("stamp", ["2023-11-14 22:13:50.000000", "20231114221350000000", "10.00001"])
def test_a_uuid_or_address_with_a_digit_e_dash_digit_keeps_the_fast_path(stamp: str) -> None:
    data = {"EE_MESSAGE_ID": "0b1c2d3e-4f5a-4b7c-8d9e-0a1b2c3d4e5f", "EE_SENDER": "aixp_A12e-5xYz", "T": stamp,
            "V": [8.5e-10, 1e+20]}
    assert FAST_SORTED(data) == encode(data, CANON_V2, json_native=True)


@pytest.mark.parametrize("data", [{"v": 1e-05}, {"v": [-4.5e-05]}, {"t": " 0.00001"}, {"t": "x0.0000"},
                                  {"v": 8.7e-07}, {"v": [1.5e-09]}, {"a": {"v": 2e-08}}, {"t": "2e-4,"}])
def test_a_small_float_or_a_string_like_one_is_refused(data: dict[str, Any]) -> None:
    assert FAST_SORTED(data) is None


@given(json_objects)
@settings(max_examples=400)
@example({"n": float("nan")})
@example({"big": 2**80, "neg": -(2**70)})
def test_fast_parser_returns_what_the_stdlib_returns(data: dict[str, Any]) -> None:
    for text in (json.dumps(data), json.dumps(data, separators=(",", ":"), ensure_ascii=False)):
        body = text.encode("utf-8")
        expected = STDLIB.loads(body)
        got = FAST_PARSE(body)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert _float_bits(got) == _float_bits(expected)


def _float_bits(obj: Any) -> list[Any]:
    out: list[Any] = []
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
        elif isinstance(o, float):
            out.append("nan" if math.isnan(o) else o.hex())
    return out


def _vector_cases(load_vectors: Callable[[str], Any]) -> list[tuple[dict[str, Any], WireProfile]]:
    cases = []
    for filename, field in (("signatures.json", "signed"), ("tampered.json", "message")):
        for case in load_vectors(filename)["cases"]:
            legacy = "unversioned" in case.get("canon", "") or "unversioned_42ee127" in case["id"] \
                or "unversioned_42ee127" in case.get("based_on", "")
            cases.append((case[field], AIXP if legacy else RATIO1))
    return cases


def _verdict(message: Any, profile: WireProfile, fast: bool) -> tuple[bool, str]:
    try:
        if fast:
            parsed = FAST_PARSE(json.dumps(message).encode())
            verify_fields(parsed, profile=profile, verify=VERIFIER.verify, json_native=True, sorted_text=FAST_SORTED)
        else:
            parsed = STDLIB.loads(json.dumps(message).encode())
            verify_fields(parsed, profile=profile, verify=VERIFIER.verify, json_native=True)
    except SignatureInvalid as exc:
        return False, exc.reason
    return True, ""


def test_every_vector_gets_the_same_verdict_with_the_fast_paths(vectors: Callable[[str], Any]) -> None:
    cases = _vector_cases(vectors)
    assert len(cases) > 20
    accepted = 0
    for message, profile in cases:
        slow = _verdict(message, profile, fast=False)
        assert _verdict(message, profile, fast=True) == slow
        accepted += slow[0]
    assert 0 < accepted < len(cases)  # both verdicts are exercised


@given(st.binary(min_size=0, max_size=80))
@settings(max_examples=500)
def test_der_fast_path_agrees_with_the_full_parse(data: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    try:
        r, s = decode_dss_signature(data)
    except ValueError:
        expected = data
    else:
        expected = encode_dss_signature(r, order - s) if order // 2 < s < order else data
    assert _low_s(data) == expected


@pytest.mark.parametrize("s", [1, 2**255 - 19, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2,
                               0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2 + 1])
def test_der_fast_path_on_well_formed_signatures(s: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    der = encode_dss_signature(12345678901234567890, s)
    _, low = decode_dss_signature(_low_s(der))
    assert low == (order - s if s > order // 2 else s)
    assert base64.b64encode(_low_s(der))  # bytes out


def test_json_preference(monkeypatch: pytest.MonkeyPatch) -> None:
    assert best_parser(STDLIB, "stdlib") == STDLIB.loads
    assert best_sorted_text("stdlib") is None
    assert best_sorted_text("orjson") is not None
    monkeypatch.setenv(JSON_ENV, "stdlib")
    assert best_sorted_text() is None
    monkeypatch.setenv(JSON_ENV, "simdjson")
    with pytest.raises(ConfigError, match="PYE2_JSON"):
        best_parser(STDLIB)


def test_other_serializers_parse_with_their_own_loads() -> None:
    from pye2.adapters.msgpack_serializer import MsgpackSerializer

    packer = MsgpackSerializer()
    assert best_parser(packer, "orjson") == packer.loads


def _reference_plain(obj: Any) -> bool:
    if type(obj) is dict:
        return all(type(k) is str for k in obj) and all(_reference_plain(v) for v in obj.values())
    if type(obj) is list:
        return all(_reference_plain(v) for v in obj)
    return type(obj) in (str, int, float, bool, type(None))


def _reference_floatless(obj: Any) -> bool:
    if type(obj) is dict:
        return all(_reference_floatless(v) for v in obj.values())
    if type(obj) is list:
        return all(_reference_floatless(v) for v in obj)
    return type(obj) in (str, int, bool, type(None))


odd_values = st.recursive(
    st.one_of(scalars, st.tuples(st.integers()), st.sets(st.integers(), max_size=2)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=4)),
    max_leaves=15)


@given(st.dictionaries(st.text(max_size=3), odd_values, max_size=5))
@settings(max_examples=400)
@example({"a": [1, "x", None, True], "b": {"c": [2.5]}})
@example({"a": {1: "int key"}})
def test_the_type_walks_agree_with_a_plain_recursive_check(data: dict[str, Any]) -> None:
    from pye2.domain.canonical import _NOT_PLAIN, _PLAIN_FLOATLESS, _survey

    assert (_survey(data) != _NOT_PLAIN) == _reference_plain(data)
    if _reference_plain(data):
        assert (_survey(data) == _PLAIN_FLOATLESS) == _reference_floatless(data)
        assert (_survey(data, check_keys=False) == _PLAIN_FLOATLESS) == _reference_floatless(data)


@given(json_objects)
@settings(max_examples=500)
@example({"x": 100.0, "y": [1.5e+20, -0.0, 2.5, 1.5e-10, 1e-05], "z": "1.0", "t": "12:00:30.000000"})
@example({"a": {"b": [{"c": 0.0}], "d": "x"}, "e": [1, "2"]})
def test_the_legacy_canon_with_trimmed_fragments_is_exact(data: dict[str, Any]) -> None:
    from pye2.domain.canonical import _legacy_fast

    assert FAST_SORTED.fragment is not None
    fast = _legacy_fast(data, FAST_SORTED)
    assert fast is None or fast == encode(data, CANON_LEGACY)
    assert encode(data, CANON_LEGACY, sorted_text=FAST_SORTED) == encode(data, CANON_LEGACY)


def test_floats_the_trimming_changes_take_the_fragment_path() -> None:
    from pye2.domain.canonical import _legacy_fast

    data = {"v": [100.0, -0.0, 2.5, 1.5e+20], "s": "100.0", "n": {"m": 3.0}}
    expected = b'{"n":{"m":3},"s":"100.0","v":[100,-0,2.5,1.5e+2]}'
    assert encode(data, CANON_LEGACY) == expected
    assert _legacy_fast(data, FAST_SORTED) == expected
    assert data == {"v": [100.0, -0.0, 2.5, 1.5e+20], "s": "100.0", "n": {"m": 3.0}}  # not modified
