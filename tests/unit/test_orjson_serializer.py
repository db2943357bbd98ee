"""The orjson serializer parses every message exactly as the stdlib JSON serializer does.

"Exactly" is strict: same keys in the same order, same value types (1 vs
1.0), same float bits (-0.0, nan), same strings (lone surrogates) — so the
canonical hash computed from the parsed message is the same. Where orjson
would parse differently (NaN/Infinity, 1e400, integers beyond 64 bits, lone
surrogates) the serializer must hand the bytes to the stdlib, not fail.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pye2.adapters.json_serializer import JsonSerializer
from pye2.adapters.orjson_serializer import OrjsonSerializer
from pye2.adapters.secp256k1 import Identity
from pye2.errors import DecodeError, SerializerUnavailable, SignatureInvalid
from pye2.plugins import PluginHost
from pye2.wire import RATIO1, message_hash, sign_message, verify_message

FAST = OrjsonSerializer()
STDLIB = JsonSerializer()
REJECTED = "rejected"


def same(a: Any, b: Any) -> bool:
    """Strict structural equality: types, key order, float bits (nan == nan, -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def outcome(serializer: Any, data: bytes) -> Any:
    """The parsed dict, or REJECTED for a DecodeError (anything else fails the test)."""
    try:
        return serializer.loads(data)
    except DecodeError:
        return REJECTED


def assert_same_outcome(data: bytes) -> None:
    expected, got = outcome(STDLIB, data), outcome(FAST, data)
    if expected is REJECTED or got is REJECTED:
        assert got is expected, f"stdlib {expected!r:.80} vs orjson serializer {got!r:.80}"
    else:
        assert same(got, expected), f"{data!r:.120}"


# -- JSON texts, built as text so every lexical form is reachable ------------------------------

WS = st.sampled_from(["", " ", "\n", "\t", "\r\n  "])
DIGITS = "0123456789"


@st.composite
def number_literals(draw: st.DrawFn) -> str:
    sign: str = draw(st.sampled_from(["", "-"]))
    head: str = draw(st.sampled_from(["0", *"123456789"]))
    integer = head if head == "0" else head + draw(st.text(DIGITS, max_size=28))
    fraction = draw(st.sampled_from(["", "."]))
    if fraction:
        fraction += draw(st.text(DIGITS, min_size=1, max_size=30))
    exponent = ""
    if draw(st.booleans()):
        marker: str = draw(st.sampled_from(["e", "E"]))
        exponent = marker + draw(st.sampled_from(["", "+", "-"])) + draw(st.text(DIGITS, min_size=1, max_size=4))
    return sign + integer + fraction + exponent


SPECIAL_NUMBERS = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-1e-400", "1.7976931348623159e308",
    "1.7976931348623157e308", "4.9e-324", "2.4703282292062327e-324", "2.2250738585072011e-308",
    "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "-9223372036854775809", "-18446744073709551616", "9007199254740993",
    "9007199254740993.0", "-0", "-0.0", "0e0", "-0e-0", "1E+2", "123456789012345678901234567890",
])
NUMBERS = st.one_of(
    number_literals(), SPECIAL_NUMBERS,
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)

ESCAPES = st.one_of(
    st.sampled_from(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]),
    st.integers(0, 0xFFFF).map(lambda i: f"\\u{i:04x}"),  # includes lone surrogates
    st.integers(0xD800, 0xDFFF).map(lambda i: f"\\u{i:04X}"),
    st.integers(0, 0xFFFFF).map(lambda v: f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04X}"),  # pairs
)
RAW_CHARS = st.characters(blacklist_categories=["Cs"]).filter(lambda c: c not in '"\\' and ord(c) >= 0x20)
STRINGS = st.one_of(
    st.lists(st.one_of(RAW_CHARS, ESCAPES), max_size=8).map(lambda parts: '"' + "".join(parts) + '"'),
    st.tuples(st.text(max_size=12), st.booleans()).map(lambda t: json.dumps(t[0], ensure_ascii=t[1])),
)
KEYS = st.one_of(STRINGS, st.sampled_from(['"a"', '"b"', '"\\u0061"', '"EE_SIGN"']))  # "\u0061" is "a": duplicates


def _array(items: list[str], ws: str) -> str:
    return "[" + ws + ("," + ws).join(items) + ws + "]"


def _object(pairs: list[tuple[str, str]], ws: str) -> str:
    return "{" + ws + ("," + ws).join(f"{k}{ws}:{ws}{v}" for k, v in pairs) + ws + "}"


VALUES = st.recursive(
    st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "null"])),
    lambda inner: st.one_of(
        st.builds(_array, st.lists(inner, max_size=4), WS),
        st.builds(_object, st.lists(st.tuples(KEYS, inner), max_size=4), WS),
    ),
    max_leaves=12,
)
DOCUMENTS = st.builds(lambda pairs, ws, lead, trail: lead + _object(pairs, ws) + trail,
                      st.lists(st.tuples(KEYS, VALUES), max_size=5), WS, WS, WS)


@settings(max_examples=1000)
@given(text=DOCUMENTS)
@example(text='{"a": NaN, "b": Infinity, "c": -Infinity}')
@example(text='{"a": 1e400, "b": -1e400, "c": 1e-400}')
@example(text='{"big": 18446744073709551616}')
@example(text='{"neg": -9223372036854775809}')
@example(text='{"huge": ' + "9" * 400 + "}")
@example(text='{"s": "\\ud800", "t": "x\\udfffy", "pair": "\\ud83d\\ude00"}')
@example(text='{"a": 1, "b": 2, "a": {"x": [1.0, -0.0]}, "\\u0061": 3}')
@example(text='{"digits in a string": "1234567890123456789012", "n": 1}')
def test_every_text_the_stdlib_accepts_parses_identically(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        expected = REJECTED
    if isinstance(expected, dict):
        got = FAST.loads(text.encode("utf-8"))
        assert same(got, expected), text
        # what the equality buys: the same canonical hash (or the same refusal)
        assert _hash_or_error(got) == _hash_or_error(expected)
    else:
        assert outcome(FAST, text.encode("utf-8")) is REJECTED


def _hash_or_error(message: dict[str, Any]) -> str:
    try:
        return message_hash(message, profile=RATIO1)
    except DecodeError as exc:
        return f"DecodeError: {exc}"


JSON_OBJECTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(obj=st.dictionaries(st.text(max_size=8), JSON_OBJECTS, max_size=6), ascii_only=st.booleans(),
       indent=st.sampled_from([None, 0, 2]))
def test_text_written_by_json_dumps_parses_identically(obj: dict[str, Any], ascii_only: bool,
                                                       indent: int | None) -> None:
    text = json.dumps(obj, ensure_ascii=ascii_only, indent=indent)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written raw: not a possible wire message
        return
    assert_same_outcome(data)
    assert outcome(FAST, data) is not REJECTED


@settings(max_examples=500)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_have_the_same_outcome(data: bytes) -> None:
    assert_same_outcome(data)


@settings(max_examples=500)
@given(text=DOCUMENTS, position=st.integers(0, 10_000), junk=st.binary(max_size=3), cut=st.integers(0, 3))
def test_damaged_documents_have_the_same_outcome(text: str, position: int, junk: bytes, cut: int) -> None:
    data = text.encode("utf-8")
    at = position % (len(data) + 1)
    assert_same_outcome(data[:at] + junk + data[at + cut:])


@pytest.mark.parametrize("data", [
    b"", b"[1, 2]", b'"x"', b"1", b"null", b"\xff\xfe", b"{", b'{"a":1}x', b'{"a":01}', b'{"a":[1,]}',
    b'\xef\xbb\xbf{"a":1}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\x01"}', b'{"a":1e}', b"[" * 100000,
])
def test_rejections_are_decode_errors_like_the_stdlib(data: bytes) -> None:
    assert outcome(STDLIB, data) is REJECTED
    with pytest.raises(DecodeError):
        FAST.loads(data)


def test_nesting_depth_never_escapes_as_recursion_error() -> None:
    # The one documented difference: orjson parses up to 1023 levels, the stdlib's
    # limit depends on the caller's stack. Either way only a dict or DecodeError comes out.
    for depth in (900, 1000, 1023, 1024, 5000):
        data = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
        result = outcome(FAST, data)
        assert result is REJECTED or isinstance(result, dict)
    assert outcome(FAST, b'{"a":' + b"[" * 1024 + b"]" * 1024 + b"}") is REJECTED


def test_loads_accepts_bytes_like_and_refuses_other_types() -> None:
    data = b'{"A": [1, 2.5, "\\u00e9"]}'
    assert FAST.loads(bytearray(data)) == FAST.loads(memoryview(data)) == {"A": [1, 2.5, "é"]}
    for bad in (data.decode(), None, 12, ["x"]):
        with pytest.raises(DecodeError):
            FAST.loads(bad)  # type: ignore[arg-type]


# -- vectors ------------------------------------------------------------------------------------


def test_heartbeat_wire_json_parses_identically_and_verifies(vectors: Callable[[str], Any]) -> None:
    cases = [c for c in vectors("heartbeats.json")["cases"] if c.get("wire_json")]
    assert cases
    for case in cases:
        data = case["wire_json"].encode("utf-8")
        fast, slow = FAST.loads(data), STDLIB.loads(data)
        assert same(fast, slow) and same(fast, case["wire_message"])
        assert message_hash(fast, profile=RATIO1) == message_hash(slow, profile=RATIO1)
        valid = True
        try:
            verify_message(fast, profile=RATIO1, json_native=True)
        except SignatureInvalid:
            valid = False
        assert valid == case["ratio1_verify"]["valid"]


def test_signed_vector_messages_survive_the_wire_through_orjson(vectors: Callable[[str], Any]) -> None:
    for case in vectors("signatures.json")["cases"]:
        for text in (json.dumps(case["signed"]), FAST.dumps(case["signed"]).decode("utf-8")):
            assert same(FAST.loads(text.encode("utf-8")), STDLIB.loads(text.encode("utf-8")))


# -- dumps ----------------------------------------------------------------------------------------

FINITE_OBJECTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(obj=st.dictionaries(st.text(max_size=8), FINITE_OBJECTS, max_size=6))
def test_dumps_round_trips_through_both_parsers(obj: dict[str, Any]) -> None:
    data = FAST.dumps(obj)
    assert same(FAST.loads(data), obj)
    assert same(STDLIB.loads(data), obj)


def test_dumps_is_compact_utf8_and_falls_back_for_what_orjson_cannot_write() -> None:
    assert FAST.dumps({"A": "é", "B": [1, 2]}) == '{"A":"é","B":[1,2]}'.encode()
    big = {"n": 2**70, "m": -(2**64)}
    assert FAST.dumps(big) == b'{"n":1180591620717411303424,"m":-18446744073709551616}'
    assert FAST.loads(FAST.dumps(big)) == big
    assert FAST.loads(FAST.dumps({1: "int key"})) == {"1": "int key"}  # type: ignore[dict-item]  # as json.dumps
    assert same(FAST.loads(FAST.dumps({"s": "\ud800"})), {"s": "\ud800"})
    assert same(FAST.loads(FAST.dumps({"x": float("nan"), "y": float("-inf")})), {"x": None, "y": None})


def test_values_the_canonical_text_formats_differently_are_refused() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    for value in (datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.date(2024, 1, 2), Point(1), object(), {1, 2}):
        with pytest.raises(DecodeError):
            FAST.dumps({"v": value})
    with pytest.raises(DecodeError):
        STDLIB.dumps({"v": datetime.date(2024, 1, 2)})


def test_a_message_signed_with_nan_verifies_after_orjson_dumps() -> None:
    # NaN is written as null, which is what the canonical text holds for it.
    identity = Identity.from_private_bytes(b"\x01" * 32)
    signed = sign_message({"A": float("nan"), "B": [1.5, float("inf")]}, identity, profile=RATIO1)
    for serializer in (FAST, STDLIB):
        received = serializer.loads(FAST.dumps(signed))
        assert verify_message(received, profile=RATIO1) == identity.address(RATIO1)


# -- registry and missing extra ---------------------------------------------------------------------


def test_registered_as_serializer_orjson() -> None:
    serializer = PluginHost(entry_points=False).load().serializer("orjson")
    assert isinstance(serializer, OrjsonSerializer)
    assert (serializer.name, serializer.content_type) == ("orjson", "application/json")


def test_without_orjson_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # what an environment without the package looks like
    with pytest.raises(SerializerUnavailable, match=r"pye2\[fast\]"):
        OrjsonSerializer()
    with pytest.raises(SerializerUnavailable, match=r"pye2\[fast\]"):
        PluginHost(entry_points=False).load().serializer("orjson")
