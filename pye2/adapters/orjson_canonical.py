"""The sorted canonical JSON text on orjson (extra ``fast``), used only where it is provably exact.

Verifying a RATIO1 message hashes its ``v2`` canonical text: ``json.dumps``
with sorted keys, compact separators and raw UTF-8 (see
:mod:`pye2.domain.canonical`); the 42ee127 legacy canon (AIXP) trims the
floats of that same text. For what a JSON parser returns, orjson with
``OPT_SORT_KEYS`` writes the same bytes about four times faster, with one
exception: floats. Both write the shortest round-trip digits, and the same
text whenever Python's ``repr`` has no exponent or a positive one
(``1e+16``) or a negative one of two or more digits (``1e-10``); they differ
for negative one-digit exponents (``8.7e-07`` vs orjson's ``8.7e-7``) and for
``1e-05 <= |x| < 1e-04`` (``1e-05`` vs orjson's ``0.00001``). In orjson's
text, each of those differences shows as a digit, ``e-`` and one digit
ending the number token (then comes ``,``, ``]``, ``}`` or the end of the
text), or as ``0.0000`` at the start of a number token (never right after a
digit: a token begins after ``:``, ``,``, ``[`` or its ``-``).
:class:`OrjsonSortedText` returns the orjson text only when neither pattern
occurs anywhere in it (inside strings too: that only costs a fallback; a
timestamp's ``50.000000`` has a digit before its ``0.0000``, and a UUID's or
an address's ``2e-4b`` goes on with a letter, so they do not) and ``None``
otherwise, or when orjson
refuses the data (integers beyond 64 bits, lone surrogates, non-string
keys); the caller then computes the text the exact way. The property tests
check the equality on generated data, and the constructor checks a few
known values so that an orjson release that changes its float format turns
the fast path off instead of changing verdicts.

Only for JSON-native data (dicts with str keys, lists, str, int, float,
bool, None — what a parser returns): orjson writes ``datetime``, ``UUID``,
enums and dataclasses its own way where the canonicaliser refuses or
converts them, so callers must not pass such values (datetimes and
dataclasses are refused here anyway).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from pye2.errors import SerializerUnavailable

__all__ = ["OrjsonSortedText"]

log = logging.getLogger(__name__)

# A float token orjson writes differently from repr(): "<digit>e-<one digit>" or "0.0000...".
# The pattern starts with a literal, so the regex engine skips ahead with a fast scan.
_NEGATIVE_EXPONENT = re.compile(rb"e-\d(?=[,\]}]|\Z)")
_DIGITS = frozenset(b"0123456789")
_SELF_CHECK: dict[str, Any] = {
    "b": [1.0, -0.0, 0.1, 1e16, 1.5e300, 1e-10, 0.0001, 123456789.125, 2**63, -(2**63)],
    "a": {"z": "é\u2028\"\\\n\x00\x1f\x7f😀", "A": None, "y": True, "x": False},
}


class OrjsonSortedText:
    """``data -> bytes | None``: the sorted compact UTF-8 JSON of JSON-native ``data`` (the ``v2`` text), or None.

    Raises:
        SerializerUnavailable: orjson is not installed, or it no longer writes
            the reference text for known values (then the exact path is used).
    """

    def __init__(self) -> None:
        try:
            import orjson
        except ImportError as exc:
            raise SerializerUnavailable("the orjson canonical text needs orjson: pip install 'pye2[fast]'") from exc
        self._dumps = orjson.dumps
        self._error: type[Exception] = orjson.JSONEncodeError
        #: raw JSON pieces written as they are (``orjson.Fragment``, orjson 3.9+): the legacy canon hands
        #: it the trimmed float tokens (see ``pye2.domain.canonical``)
        self.fragment: Any = getattr(orjson, "Fragment", None)
        self._option: int = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                             | orjson.OPT_PASSTHROUGH_DATACLASS)
        reference = json.dumps(_SELF_CHECK, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if self(_SELF_CHECK) != reference:
            raise SerializerUnavailable(f"orjson {getattr(orjson, '__version__', '?')} does not write the "
                                        "reference canonical text; using the exact encoder")
        if self.fragment is not None and self({"b": [self.fragment(b"-0")], "a": self.fragment(b"1.5e+2")}) \
                != b'{"a":1.5e+2,"b":[-0]}':
            self.fragment = None  # pieces not written verbatim: the legacy canon trims the text instead

    def __call__(self, data: dict[str, Any]) -> bytes | None:
        try:
            text: bytes = self._dumps(data, option=self._option)
        except self._error:
            return None
        # "0.0000" not right after a digit: where orjson's 0.0000x floats start (repr writes 1e-05)
        found = text.find(b"0.0000")
        while found != -1:
            if not found or text[found - 1] not in _DIGITS:
                return None
            found = text.find(b"0.0000", found + 1)
        if b"e-" in text:
            for match in _NEGATIVE_EXPONENT.finditer(text):
                start = match.start()
                if start and text[start - 1] in _DIGITS:
                    return None
        return text
