"""clip(): any wire value as one safe, bounded log token."""

from __future__ import annotations

import sys
import time
import unicodedata
from collections import OrderedDict, deque
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.domain.logtext import MARKER_MAX, clip

#: what must never reach a log line from the wire
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _is_safe(text: str) -> bool:
    return text.isprintable() and not any(ch in LINE_BREAKS or ch in BIDI for ch in text)


def _is_short_safe(text: str, limit: int = 200) -> bool:
    return len(text) <= limit and text.isprintable() and "\\" not in text


wire_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@given(st.text(), st.integers(min_value=1, max_value=400))
def test_output_is_one_printable_line_within_the_limit(text: str, limit: int) -> None:
    out = clip(text, limit)
    assert _is_safe(out)
    assert len(out) <= limit + MARKER_MAX
    assert out.splitlines() in ([out], [])


@given(wire_values, st.integers(min_value=1, max_value=300))
def test_any_value_is_safe_and_bounded(value: Any, limit: int) -> None:
    out = clip(value, limit)
    assert _is_safe(out)
    assert len(out) <= limit + MARKER_MAX


@given(st.text(max_size=200).filter(_is_short_safe))
def test_short_safe_strings_come_back_unchanged(text: str) -> None:
    assert clip(text) == text


@given(st.text(min_size=1).filter(lambda t: not _is_short_safe(t, 50)))
def test_anything_else_is_changed_and_says_so_when_cut(text: str) -> None:
    out = clip(text, 50)
    assert out != text or len(text) > 50
    if len(text) > 50:
        assert out.endswith(" chars)") and "…(+" in out


@given(st.text(max_size=100))
def test_escaping_is_unambiguous(text: str) -> None:
    """Distinct short strings give distinct outputs (no escape can be forged with a backslash)."""
    out = clip(text, 10_000)
    decoded = out.encode("ascii", "backslashreplace").decode("unicode_escape")
    assert decoded == text


@pytest.mark.parametrize(("value", "expected"), [
    ("line1\nline2", "line1\\x0aline2"),
    ("a\r\nb", "a\\x0d\\x0ab"),
    ("tab\there", "tab\\x09here"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("c1\x9bcsi", "c1\\x9bcsi"),
    ("del\x7f", "del\\x7f"),
    ("nel\x85", "nel\\x85"),
    ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
    ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
    ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
    ("back\\slash", "back\\\\slash"),
    ("nul\x00", "nul\\x00"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("surrogate\ud800", "surrogate\\ud800"),
    ("héllo wörld ✓ 节点", "héllo wörld ✓ 节点"),
])
def test_escapes(value: str, expected: str) -> None:
    assert clip(value) == expected


def test_cut_marker_counts_what_was_cut() -> None:
    assert clip("x" * 1000, 10) == "x" * 10 + "…(+990 chars)"
    assert clip("x" * 200) == "x" * 200
    assert clip("x" * 201) == "x" * 200 + "…(+1 chars)"


def test_an_escape_is_never_split() -> None:
    out = clip("ab\n" * 10, 4)
    assert out == "ab…(+28 chars)"  # "\x0a" would not fit whole after "ab"
    assert clip("\n", 3) == "…(+1 chars)"


def test_non_strings() -> None:
    assert clip(None) == "None"
    assert clip(42) == "42"
    assert clip(1.5) == "1.5"
    assert clip(True) == "True"
    assert clip(ValueError("bad\nvalue")) == "bad\\x0avalue"
    assert clip(KeyError("k")) == "'k'"
    assert clip(b"ok") == "b'ok'"
    assert clip(b"\x00\n'") == "b'\\x00\\n\\''"
    assert clip(bytearray(b"ab")) == "b'ab'"
    assert clip(memoryview(b"abcdef")[::2]) == "b'ace'"
    assert clip(["a\nb", 1]) == "['a\\nb', 1]"  # the repr's escapes, not doubled
    assert clip({"k": (1, 2)}) == "{'k': (1, 2)}"
    assert clip(deque([1])) == "deque([1])"


def test_subclasses_and_odd_objects() -> None:
    class Name(str):
        def __str__(self) -> str:
            return "not this"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            raise RuntimeError("no")

    class Multiline:
        def __str__(self) -> str:
            return "one\ntwo"

        def __repr__(self) -> str:
            return "<one\ntwo>"

    assert clip(Name("a\nb")) == "a\\x0ab"
    assert clip(Broken()) == "<unprintable Broken>"
    assert clip([Broken()]).startswith("[<Broken instance at ")  # reprlib's own fallback
    assert clip(Multiline()) == "one\\x0atwo"
    assert _is_safe(clip([Multiline()]))
    assert clip(OrderedDict(a=1)) == "OrderedDict([('a', 1)])"  # a subclass renders itself (str())


def test_bytes_are_cut_and_counted_in_bytes() -> None:
    out = clip(b"\xff" * 1000, 30)
    assert out.startswith("b'\\xff") and out.endswith("bytes)")
    shown = out[2:out.index("…")].count("\\xff")
    assert out.endswith(f"…(+{1000 - shown} bytes)") and len(out[:out.index("…")]) <= 30


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        clip("x" * 5, 0)
    with pytest.raises(ValueError):
        clip(5, 0)


def test_huge_values_are_bounded_in_time_and_output() -> None:
    """A megabyte string, a gigabyte of (virtual) list, a huge int: rendered from their heads only."""
    big_text = "a\n" * 500_000
    big_bytes = b"\x00" * 10_000_000
    big_list = [b"x" * 1_000_000] * 100_000
    nested = {"k" * 100_000: ["v" * 1_000_000] * 1000}
    huge_int = 1 << 1_000_000
    start = time.perf_counter()
    for value in (big_text, big_bytes, big_list, nested, huge_int, range(10**12), memoryview(big_bytes)):
        out = clip(value)
        assert _is_safe(out) and len(out) <= 200 + MARKER_MAX, value.__class__
    assert time.perf_counter() - start < 1.0
    assert clip(huge_int) == "<int of 1000001 bits>"


def test_fast_path_returns_the_same_object() -> None:
    text = "node-1 payload from 0xai_abc"
    assert clip(text) is text


def test_every_unsafe_code_point_is_escaped() -> None:
    """All of C0, C1, DEL, the separators and every format character (bidi, zero-width) in the BMP."""
    unsafe = [chr(c) for c in range(0x10000)
              if not chr(c).isprintable() or unicodedata.category(chr(c)) in ("Zl", "Zp", "Cf", "Cc")]
    assert "\u2028" in unsafe and "\u202e" in unsafe and "\x1b" in unsafe and "\u200b" in unsafe
    for ch in unsafe:
        out = clip(f"a{ch}b")
        assert _is_safe(out) and out.startswith("a\\") and out.endswith("b"), repr(ch)


def test_marker_max_covers_the_longest_marker() -> None:
    assert MARKER_MAX == len(f"…(+{sys.maxsize} chars)") >= len(f"…(+{sys.maxsize} bytes)")
