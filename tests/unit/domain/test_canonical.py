"""Canonical JSON rules: canons, excluded fields, float quirks, types, and an oracle.

The oracle re-creates the original encoders the way they were built (the
stdlib's pure-Python ``_make_iterencode`` with a custom float formatter and,
for ratio1, a dump -> parse -> dump round trip), so hypothesis can check the
fast C path and the exact slow path against it on arbitrary JSON-like data.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pye2.domain.canonical import (
    canonical_json,
    data_fields,
    encode,
    message_digest,
    message_hash,
    normalize_canon,
    resolve_canon,
)
from pye2.domain.profiles import AIXP, RATIO1
from pye2.errors import ConfigError, DecodeError, SignatureInvalid

CANONS = ("v2", "v1", "legacy-42ee127")

# -- oracle: the original encoders, rebuilt from the stdlib as they did ---------------------


def _oracle_dump(obj: Any, *, trim: bool, sort_keys: bool) -> str:
    def floatstr(x: float) -> str:
        if not math.isfinite(x):
            return "null"
        text = float.__repr__(x)
        return text.rstrip("0").rstrip(".") if trim and "." in text else text

    iterencode = json.encoder._make_iterencode(  # type: ignore[attr-defined]
        {}, None, json.encoder.encode_basestring, None, floatstr, ":", ",", sort_keys, False, True)
    return "".join(iterencode(obj, 0))


def oracle(data: dict[str, Any], canon: str) -> bytes:
    if canon == "legacy-42ee127":
        return _oracle_dump(data, trim=True, sort_keys=True).encode()
    trim = canon == "v1"
    first = _oracle_dump(data, trim=trim, sort_keys=False)
    return _oracle_dump(json.loads(first), trim=trim, sort_keys=True).encode()


tricky_text = st.sampled_from([
    "1.50", "10.0.0.5", 'a"b\\c', "\u2028\x7f\x01", "ăîș 🚀", "x 1.0e+20 y", '"2.50"', "3.0\\", '\\"4.0',
    'q\\\\"', "\x105.0", "12:00:00.000000", "-0.0", "7.5e+20", ':1.0,"', "\\", '"'])
text_or_tricky = st.one_of(st.text(max_size=8), tricky_text)
json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 100.0, 1.5e20, 1.234e100, 2.5e-10, 1e16, 1e22, 0.1, 1.1e20, 5e-324]),
    text_or_tricky,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(text_or_tricky, children, max_size=4)),
    max_leaves=20,
)
json_objects = st.dictionaries(text_or_tricky, json_values, max_size=6)


# -- canons and fields --------------------------------------------------------------------


def test_canon_names_and_aliases() -> None:
    assert normalize_canon("legacy") == normalize_canon("unversioned-42ee127") == "legacy-42ee127"
    with pytest.raises(ConfigError):
        normalize_canon("v3")
    with pytest.raises(ConfigError):
        canonical_json({}, profile=RATIO1, canon="nope")


def test_resolve_canon_follows_the_marker_under_ratio1_only() -> None:
    assert resolve_canon({}, RATIO1) == "v2"
    assert resolve_canon({"SIGN_CANON_V": "v2"}, RATIO1) == "v2"
    assert resolve_canon({"SIGN_CANON_V": "v1"}, RATIO1) == "v1"
    assert resolve_canon({"SIGN_CANON_V": "v1"}, AIXP) == "legacy-42ee127"
    assert resolve_canon({"SIGN_CANON_V": "v2"}, AIXP, "v2") == "v2"
    with pytest.raises(SignatureInvalid, match="unknown SIGN_CANON_V"):
        resolve_canon({"SIGN_CANON_V": "v9"}, RATIO1)


def test_excluded_fields_per_profile() -> None:
    message = {"A": 1, "EE_SIGN": "s", "EE_SENDER": "x", "EE_HASH": "h",
               "EE_ETH_SIGN": "0xBEEF", "EE_ETH_SENDER": "0x1", "SIGN_CANON_V": "v2"}
    assert canonical_json(message, profile=RATIO1) == b'{"A":1,"SIGN_CANON_V":"v2"}'
    assert canonical_json(message, profile=RATIO1, canon="v1") == b'{"A":1}'
    # 42ee127 knew only three signature fields; ETH fields are data to it.
    assert canonical_json(message, profile=AIXP) == b'{"A":1,"EE_ETH_SENDER":"0x1","EE_ETH_SIGN":"0xBEEF"}'
    assert data_fields(message, RATIO1, keep_canon_marker=False) == {"A": 1}


def test_only_top_level_signature_fields_are_excluded() -> None:
    message = {"PAYLOAD": {"EE_SIGN": "inner", "EE_HASH": 1}}
    assert canonical_json(message, profile=AIXP) == b'{"PAYLOAD":{"EE_HASH":1,"EE_SIGN":"inner"}}'


# -- float quirks ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "v2", "v1", "legacy"), [
    (1.0, "1.0", "1", "1"),
    (100.0, "100.0", "100", "100"),
    (-0.0, "-0.0", "0", "-0"),
    (0.5, "0.5", "0.5", "0.5"),
    (1.5e20, "1.5e+20", "150", "1.5e+2"),
    (1.234e100, "1.234e+100", "12.34", "1.234e+1"),
    (2.5e-10, "2.5e-10", "0.25", "2.5e-1"),
    (1e20, "1e+20", "1e+20", "1e+20"),
    (0.30000000000000004, "0.30000000000000004", "0.30000000000000004", "0.30000000000000004"),
])
def test_float_rules(value: float, v2: str, v1: str, legacy: str) -> None:
    for canon, expected in (("v2", v2), ("v1", v1), ("legacy-42ee127", legacy)):
        assert encode({"F": value}, canon) == f'{{"F":{expected}}}'.encode(), canon
        assert encode({"F": [value]}, canon) == f'{{"F":[{expected}]}}'.encode(), canon


def test_float_lookalikes_inside_strings_are_untouched() -> None:
    message = {"IP": "10.0.0.50", "V": "1.50", "E": "1.5e+20", "Q": 'a"1.0"b\\', "F": 2.50}
    assert encode(message, "legacy-42ee127") == \
        b'{"E":"1.5e+20","F":2.5,"IP":"10.0.0.50","Q":"a\\"1.0\\"b\\\\","V":"1.50"}'


@pytest.mark.parametrize("canon", CANONS)
def test_nan_and_infinity_become_null(canon: str) -> None:
    message: dict[str, Any] = {"A": math.nan, "B": [math.inf, {"C": -math.inf}], "D": 1}
    assert encode(message, canon) == b'{"A":null,"B":[null,{"C":null}],"D":1}'
    assert math.isnan(message["A"])  # the input is not modified


# -- types ------------------------------------------------------------------------------------


def test_strings_escape_like_json_with_raw_unicode() -> None:
    message = {"S": 'q"b\\n\n\r\t\x01\x7f\u2028ă🚀/'}
    expected = '{"S":"q\\"b\\\\n\\n\\r\\t\\u0001\x7f\u2028ă🚀/"}'.encode()
    for canon in CANONS:
        assert encode(message, canon) == expected


def test_big_ints_and_bools() -> None:
    message = {"I": 2**70, "N": -17, "T": True, "F": False, "Z": None}
    for canon in CANONS:
        assert encode(message, canon) == b'{"F":false,"I":1180591620717411303424,"N":-17,"T":true,"Z":null}'


def test_datetime_tuples_and_numpy() -> None:
    np = pytest.importorskip("numpy")
    when = datetime.datetime(2024, 1, 30, 12, 5, 9, 123456)
    message = {"T": when, "TU": (1, 2.0), "I": np.int64(7), "F32": np.float32(0.5), "F64": np.float64(2.0),
               "A": np.array([[1.0, 2.5], [np.nan, 4.0]]), "B": np.bool_(True)}
    assert encode(message, "v2") == \
        b'{"A":[[1.0,2.5],[null,4.0]],"B":true,"F32":0.5,"F64":2.0,"I":7,"T":"2024-01-30 12:05:09","TU":[1,2.0]}'
    assert encode(message, "legacy-42ee127") == \
        b'{"A":[[1,2.5],[null,4]],"B":true,"F32":0.5,"F64":2,"I":7,"T":"2024-01-30 12:05:09","TU":[1,2]}'


def test_duck_typed_tolist() -> None:
    class Vector:
        def tolist(self) -> list[float]:
            return [1.0, math.nan]

    assert encode({"V": Vector()}, "v2") == b'{"V":[1.0,null]}'


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", object(), datetime.date(2024, 1, 1), 1j])
@pytest.mark.parametrize("canon", CANONS)
def test_other_types_raise_decode_error(bad: Any, canon: str) -> None:
    with pytest.raises(DecodeError):
        encode({"X": [bad]}, canon)


def test_int_keys_follow_each_original() -> None:
    message = {"M": {10: "a", 9: "b"}}
    # ratio1 round-trips through text, so keys sort as strings ...
    assert encode(message, "v2") == b'{"M":{"10":"a","9":"b"}}'
    assert encode(message, "v1") == b'{"M":{"10":"a","9":"b"}}'
    # ... 42ee127 sorted the Python keys themselves.
    assert encode(message, "legacy-42ee127") == b'{"M":{"9":"b","10":"a"}}'
    mixed = {"M": {1: "a", "b": 2, 2.5: "c", None: "n"}}
    assert encode(mixed, "v2") == b'{"M":{"1":"a","2.5":"c","b":2,"null":"n"}}'
    with pytest.raises(DecodeError):
        encode(mixed, "legacy-42ee127")  # 42ee127 could not sort mixed keys either
    with pytest.raises(DecodeError):
        encode({"M": {(1, 2): "tuple key"}}, "v2")


def test_bad_structures_raise_decode_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    for value in ({"D": deep}, cyclic, {"S": "lone \ud800 surrogate"}, {"I": 10**5000}):
        for canon in CANONS:
            with pytest.raises(DecodeError):
                encode(value, canon)
    with pytest.raises(DecodeError):
        canonical_json(["not", "a", "mapping"], profile=AIXP)  # type: ignore[arg-type]


def test_digest_helpers_agree() -> None:
    message = {"A": 1.0, "EE_HASH": "ignored"}
    text = canonical_json(message, profile=AIXP)
    assert text == b'{"A":1}'
    assert message_digest(message, profile=AIXP).hex() == message_hash(message, profile=AIXP)
    assert message_hash(message, profile=AIXP) == __import__("hashlib").sha256(text).hexdigest()


def test_json_native_gives_the_same_text() -> None:
    message = {"B": [1.0, {"C": "x"}], "A": math.nan, "D": 1.5e20}
    for canon in (None, "v1", "legacy-42ee127"):
        for profile in (AIXP, RATIO1):
            assert canonical_json(message, profile=profile, canon=canon, json_native=True) == \
                canonical_json(message, profile=profile, canon=canon)


# -- properties ---------------------------------------------------------------------------------


def _tupled(value: Any) -> Any:
    """The same data with lists as tuples: forces the exact slow path, same JSON."""
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    if isinstance(value, dict):
        return {k: _tupled(v) for k, v in value.items()}
    return value


@settings(max_examples=300)
@given(json_objects)
def test_fast_and_slow_paths_match_the_original_encoders(data: dict[str, Any]) -> None:
    for canon in CANONS:
        expected = oracle(data, canon)
        assert encode(data, canon) == expected, canon
        assert encode(data, canon, json_native=True) == expected, canon
        assert encode(_tupled(data), canon) == expected, canon


@settings(max_examples=150)
@given(st.dictionaries(st.one_of(st.integers(-50, 50), st.text(max_size=3)), json_values, max_size=5))
def test_non_string_keys_match_the_original_round_trip(data: dict[Any, Any]) -> None:
    # ratio1's round trip tolerates any JSON key type (keys become strings before sorting).
    assert encode(data, "v2") == oracle(data, "v2")


@settings(max_examples=200)
@given(json_objects)
def test_canonical_json_is_valid_sorted_json(data: dict[str, Any]) -> None:
    text = canonical_json(data, profile=RATIO1).decode("utf-8")
    parsed: Callable[[str], Any] = json.loads
    reparsed = parsed(text)
    assert list(reparsed) == sorted(reparsed)
    assert json.dumps(reparsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == text


@pytest.mark.parametrize("canon", ["v2", "legacy"])
def test_a_cycle_or_a_message_past_the_walk_budget_is_handled_by_the_exact_path(canon: str) -> None:
    from pye2.adapters.orjson_canonical import OrjsonSortedText
    from pye2.domain.canonical import _NOT_PLAIN, _WALK_BUDGET, _survey, encode

    looped: dict[str, Any] = {"a": []}
    looped["a"].append(looped)  # a hostile structure: the survey must end, the encoder must say why
    assert _survey(looped) == _NOT_PLAIN
    with pytest.raises(DecodeError, match="nested too deeply"):
        encode(looped, canon, sorted_text=OrjsonSortedText())
    wide = {"k": [[i] for i in range(_WALK_BUDGET + 1)]}  # more containers than the budget: no fast path
    assert _survey(wide) == _NOT_PLAIN
    exact = json.dumps(wide, sort_keys=True, separators=(",", ":")).encode()
    assert encode(wide, canon, sorted_text=OrjsonSortedText()) == exact
