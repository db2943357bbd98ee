"""Canonical JSON of a message, the text whose SHA-256 is ``EE_HASH`` (pure).

Three canons (protocol.md sections 7 and 11, DECISIONS 9):

``v2``
    ratio1's current encoder: dump -> parse -> dump with sorted keys, plain
    ``repr`` floats (``1.0`` stays ``1.0``); ``SIGN_CANON_V`` is hashed.
``v1``
    the text ratio1's *verify* rebuilds for a message marked ``"v1"``: the
    42ee127 float trimming, then a parse, then the trimming again with sorted
    keys (so ``-0.0`` becomes ``0`` and ``1.5e+20`` becomes ``150``).
``legacy-42ee127``
    PyE2 42ee127: one sorted dump where a float ``repr`` containing ``.``
    loses trailing ``0`` then ``.`` characters (``100.0`` -> ``100``,
    ``-0.0`` -> ``-0``, ``1.5e+20`` -> ``1.5e+2``).

In all three, the top-level fields in ``profile.signature_fields`` are left
out, ``SIGN_CANON_V`` is left out except under ``v2``, NaN/±Inf become
``null``, numpy values (anything with ``.tolist()``) become numbers/lists,
``datetime`` becomes ``"%Y-%m-%d %H:%M:%S"``, separators are ``,``/``:`` and
non-ASCII text is written raw (UTF-8). Other types raise
:class:`~pye2.errors.DecodeError`.

Speed: for JSON-native data (what a deserializer returns: str keys, no NaN)
the result is one C-level ``json.dumps(sort_keys=True)`` — for ``v2`` the
round trip provably changes nothing on such data, and for the legacy canon a
C-speed regex trims the few float tokens that need it. Anything else (int
keys, NaN, numpy, datetime, tuples...) takes an exact slow path that performs
the original round trips literally.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from typing import Any

from pye2.domain.profiles import CANON_LEGACY, CANON_V1, CANON_V2, WireProfile
from pye2.errors import ConfigError, DecodeError, SignatureInvalid

__all__ = [
    "CANONS",
    "SIGN_CANON_V",
    "SortedTextFn",
    "canonical_json",
    "data_fields",
    "encode",
    "message_digest",
    "message_hash",
    "normalize_canon",
    "resolve_canon",
    "sha256_digest",
]

#: ``sorted_text(data) -> bytes | None``: the sorted compact JSON of JSON-native data exactly as
#: ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` writes it, or None.
SortedTextFn = Callable[[Any], "bytes | None"]

#: The message field naming the canon a message was signed with.
SIGN_CANON_V = "SIGN_CANON_V"

#: Canon names accepted by :func:`canonical_json` (aliases map to these).
CANONS: tuple[str, ...] = (CANON_V2, CANON_V1, CANON_LEGACY)
_ALIASES = {
    CANON_V2: CANON_V2,
    CANON_V1: CANON_V1,
    CANON_LEGACY: CANON_LEGACY,
    "legacy": CANON_LEGACY,
    "42ee127": CANON_LEGACY,
    "unversioned-42ee127": CANON_LEGACY,
}

_SEPARATORS = (",", ":")
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_SCALARS = frozenset((str, int, float, bool, type(None)))
_STR_ONLY = frozenset((str,))
_PLAIN_KINDS = _SCALARS | {dict, list}
_INT_STR = frozenset((str, int, bool, type(None)))
_WALK_BUDGET = 100_000

# check_circular=False: a cycle then ends in RecursionError, which we report.
_SORTED = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                           separators=_SEPARATORS, check_circular=False).encode
_UNSORTED = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                             separators=_SEPARATORS, check_circular=False).encode

# The tail (from the '.') of a float token that the 42ee127 trimming changes:
# its last character is '0' (``100.0``, ``2.50``... ``1.5e+20``). Starting at
# a literal '.' keeps the scan fast. It also matches inside strings;
# _trim_floats skips those by quote parity.
_TRIM_TAIL = re.compile(r"\.(?:\d*0|\d+e[-+]\d*0)(?![\d.e])")
_DIGITS = frozenset("0123456789")


def normalize_canon(canon: str) -> str:
    """The canonical name of ``canon`` (accepts aliases such as ``"legacy"``).

    Raises:
        ConfigError: unknown canon name.
    """
    try:
        return _ALIASES[canon]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown canon {canon!r}; known: {', '.join(CANONS)}") from None


def resolve_canon(message: Mapping[str, Any], profile: WireProfile, canon: str | None = None) -> str:
    """The canon :func:`canonical_json` uses for ``message``.

    An explicit ``canon`` wins. Otherwise a profile that signs with ``v1``/``v2``
    (RATIO1) follows the message's ``SIGN_CANON_V`` (absent: the profile's own
    canon), and a legacy profile (AIXP) always uses the 42ee127 canon.

    Raises:
        ConfigError: unknown explicit ``canon``.
        SignatureInvalid: the message's ``SIGN_CANON_V`` is not ``v1``/``v2``.
    """
    if canon is not None:
        return normalize_canon(canon)
    own = normalize_canon(profile.canon)
    if own == CANON_LEGACY:
        return CANON_LEGACY
    marker = message.get(SIGN_CANON_V)
    if marker is None:
        return own
    if marker == CANON_V2 or marker == CANON_V1:
        return str(marker)
    raise SignatureInvalid(f"unknown SIGN_CANON_V: {marker!r:.40}")


@functools.lru_cache(maxsize=32)
def _excluded(signature_fields: tuple[str, ...]) -> frozenset[str]:
    return frozenset(signature_fields) | {SIGN_CANON_V}


def data_fields(message: Mapping[str, Any], profile: WireProfile, *, keep_canon_marker: bool) -> dict[str, Any]:
    """A shallow copy of ``message`` without the fields the hash leaves out.

    ``keep_canon_marker`` keeps ``SIGN_CANON_V`` (the ``v2`` rule).

    Raises:
        DecodeError: ``message`` is not a mapping.
    """
    if not isinstance(message, Mapping):
        raise DecodeError(f"a message must be a JSON object (mapping), not {type(message).__name__}")
    data = dict(message)  # a C-level copy, then a few deletions: faster than filtering every key
    pop = data.pop
    for name in _excluded(profile.signature_fields):
        if name != SIGN_CANON_V or not keep_canon_marker:
            pop(name, None)
    return data


def canonical_json(message: Mapping[str, Any], *, profile: WireProfile, canon: str | None = None,
                   json_native: bool = False) -> bytes:
    """The exact UTF-8 text whose SHA-256 is the message's ``EE_HASH``.

    Args:
        message: the message (the input is never modified).
        profile: decides the excluded fields and, with ``canon=None``, the canon
            (see :func:`resolve_canon`).
        canon: ``"v2"``, ``"v1"`` or ``"legacy-42ee127"`` to force one.
        json_native: promise that every dict key in ``message`` is a ``str``, as
            for anything ``json.loads``/msgpack returned; skips a type walk that
            costs about a fifth of the encoding. Other types are still handled.

    Raises:
        DecodeError: a value that is not JSON, numpy or datetime; keys that
            cannot be JSON keys or sorted; nesting too deep; text not encodable
            as UTF-8 (lone surrogates).
        SignatureInvalid: unknown ``SIGN_CANON_V`` in the message.
        ConfigError: unknown ``canon``.
    """
    if not isinstance(message, Mapping):
        raise DecodeError(f"a message must be a JSON object (mapping), not {type(message).__name__}")
    resolved = resolve_canon(message, profile, canon)
    data = data_fields(message, profile, keep_canon_marker=resolved == CANON_V2)
    return encode(data, resolved, json_native=json_native)


def encode(data: Any, canon: str, *, json_native: bool = False, sorted_text: SortedTextFn | None = None) -> bytes:
    """Encode already-filtered ``data`` with ``canon`` (no field is removed).

    ``sorted_text``: a faster writer of the sorted compact JSON text (the base of
    the ``v2`` and legacy canons) that returns exactly what the stdlib writes,
    or None when it cannot promise that for this data (see
    :class:`pye2.adapters.orjson_canonical.OrjsonSortedText`). It is only used
    for JSON-native data (``json_native``, or checked by the type walk).

    Raises:
        DecodeError, ConfigError: as :func:`canonical_json`.
    """
    canon = normalize_canon(canon)
    try:
        shape = _PLAIN if json_native else _survey(data)  # JSON-native data is plain by promise
        if shape != _NOT_PLAIN:
            if sorted_text is not None and canon != CANON_V1:
                if canon != CANON_V2 and json_native:
                    shape = _survey(data, check_keys=False)  # only whether a float is there
                untrimmed = canon == CANON_V2 or shape == _PLAIN_FLOATLESS  # no float token: no trimming
                if not untrimmed:
                    trimmed = _legacy_fast(data, sorted_text)
                    if trimmed is not None:
                        return trimmed
                fast = sorted_text(data)
                if fast is not None:
                    return fast if untrimmed else _trim_floats(fast.decode("utf-8")).encode("utf-8")
            try:
                text = _FAST[canon](data)
            except (TypeError, ValueError):
                # NaN/Inf, or a key/value type the promise did not cover.
                text = _SLOW[canon](_normalize(data))
        else:
            text = _SLOW[canon](_normalize(data))
        return text.encode("utf-8")
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("message is nested too deeply (or contains a cycle)") from None
    except UnicodeEncodeError as exc:
        raise DecodeError(f"message text is not encodable as UTF-8: {exc.reason}") from None
    except (TypeError, ValueError) as exc:
        # e.g. an int beyond Python's 4300-digit str limit
        raise DecodeError(f"message cannot be canonicalised: {exc}") from None


def sha256_digest(text: bytes) -> bytes:
    """SHA-256 of canonical text (the 32 bytes that get signed)."""
    return hashlib.sha256(text).digest()


def message_digest(message: Mapping[str, Any], *, profile: WireProfile, canon: str | None = None) -> bytes:
    """SHA-256 of :func:`canonical_json` (32 bytes)."""
    return hashlib.sha256(canonical_json(message, profile=profile, canon=canon)).digest()


def message_hash(message: Mapping[str, Any], *, profile: WireProfile, canon: str | None = None) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_json`: the ``EE_HASH`` value."""
    return hashlib.sha256(canonical_json(message, profile=profile, canon=canon)).hexdigest()


# -- fast path: JSON-native data -------------------------------------------------


#: what :func:`_survey` finds: not plain JSON data (or too large to walk), plain, plain and without a float
_NOT_PLAIN, _PLAIN, _PLAIN_FLOATLESS = 0, 1, 2


def _survey(obj: Any, budget: int = _WALK_BUDGET, *, check_keys: bool = True) -> int:
    """Whether ``obj`` is plain: only dicts/lists with str keys and JSON scalars (so one sorted dump
    is exact), and whether it then holds no float (its text has no float token to trim).

    One walk answers both. Gives :data:`_NOT_PLAIN` after ``budget`` containers,
    which also ends the walk of a cyclic structure. Each container's keys and
    values are typed in one C-level pass (``set(map(type, ...))``).
    ``check_keys=False``: the keys are known to be strings (JSON-native data).
    """
    floatless = True
    stack = [obj]
    pop, push = stack.pop, stack.append
    while stack:
        budget -= 1
        if budget < 0:
            return _NOT_PLAIN
        o = pop()
        if type(o) is dict:
            if check_keys and not set(map(type, o)) <= _STR_ONLY:
                return _NOT_PLAIN
            values: Any = o.values()
        else:
            values = o
        kinds = set(map(type, values))
        if floatless and float in kinds:
            floatless = False
        if kinds <= _SCALARS:
            continue
        if not kinds <= _PLAIN_KINDS:
            return _NOT_PLAIN
        for v in values:
            t = type(v)
            if t is dict or t is list:
                push(v)
    return _PLAIN_FLOATLESS if floatless else _PLAIN


# A float's repr that the 42ee127 trimming changes (see _TRIM_TAIL): '.', digits ending in 0, or an
# exponent ending in 0, up to the end of the token.
_TRIMMED_REPR = re.compile(r"\.(?:\d*0|\d+e[-+]\d*0)$")


def _legacy_fast(data: Any, sorted_text: SortedTextFn) -> bytes | None:
    """The legacy text of plain ``data`` from a writer that takes raw pieces (``sorted_text.fragment``), or None.

    Each float whose token the trimming changes is handed to the writer as its
    trimmed token (a raw fragment), so the writer's text is already trimmed:
    what :func:`_trim_floats` makes of the untrimmed text, without scanning
    it. None when the writer takes no fragments or declines the data (the
    caller then trims the text).
    """
    fragment = getattr(sorted_text, "fragment", None)
    if fragment is None:
        return None
    try:
        return sorted_text(_with_trimmed_floats(data, fragment))
    except RecursionError:
        return None


def _with_trimmed_floats(obj: Any, fragment: Callable[[bytes], Any]) -> Any:
    """``obj`` with each float the trimming changes replaced by ``fragment(trimmed token)``.

    Containers holding none are returned as they are (not copied).
    """
    kind = type(obj)
    if kind is float:
        text = float.__repr__(obj)
        if text[-1] != "0" or not _TRIMMED_REPR.search(text):
            return obj
        return fragment(text.rstrip("0").rstrip(".").encode())
    if kind is dict:
        if set(map(type, obj.values())) <= _INT_STR:
            return obj
        out = None
        for key, value in obj.items():
            sub = type(value)
            if sub is not float and sub is not dict and sub is not list:
                continue
            new = _with_trimmed_floats(value, fragment)
            if new is not value:
                if out is None:
                    out = dict(obj)
                out[key] = new
        return obj if out is None else out
    if kind is list:
        if set(map(type, obj)) <= _INT_STR:
            return obj
        items = None
        for index, value in enumerate(obj):
            sub = type(value)
            if sub is not float and sub is not dict and sub is not list:
                continue
            new = _with_trimmed_floats(value, fragment)
            if new is not value:
                if items is None:
                    items = list(obj)
                items[index] = new
        return obj if items is None else items
    return obj


def _trim_floats(text: str) -> str:
    """Apply the 42ee127 float trimming to the float tokens of compact JSON text.

    Linear and C-speed in the common case: only tokens ending in ``0`` are
    visited, and whether one sits inside a string is decided by the parity of
    unescaped quotes before it (in encoder output a backslash only occurs in
    an escape, so once backslash pairs are blanked out, backslash-quote is
    exactly an escaped quote).
    """
    pieces: list[str] = []
    last = pos = 0
    inside = False
    flat: str | None = None
    for match in _TRIM_TAIL.finditer(text):
        dot = match.start()
        start = dot
        while start and text[start - 1] in _DIGITS:
            start -= 1
        if start == dot:
            continue  # no integer part: not a number token (only possible inside a string)
        if start and text[start - 1] == "-":
            start -= 1
        if flat is None:
            flat = text.replace("\\\\", "  ") if "\\" in text else text  # same length: positions hold
        if (flat.count('"', pos, start) - flat.count('\\"', pos, start)) % 2:
            inside = not inside
        pos = start
        if inside or start < last:
            continue
        pieces.append(text[last:start])
        pieces.append(text[start:match.end()].rstrip("0").rstrip("."))
        last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _fast_v2(data: Any) -> str:
    return _SORTED(data)


def _fast_legacy(data: Any) -> str:
    return _trim_floats(_SORTED(data))


def _fast_v1(data: Any) -> str:
    return _trim_floats(_SORTED(json.loads(_trim_floats(_UNSORTED(data)))))


_FAST = {CANON_V2: _fast_v2, CANON_V1: _fast_v1, CANON_LEGACY: _fast_legacy}


# -- slow path: anything else, literally as the originals did it ---------------------


def _normalize(o: Any) -> Any:
    """JSON-native copy: NaN/±Inf -> None, numpy -> tolist(), datetime -> str, tuple -> list.

    Dict keys are kept as they are: the encoders convert them as the originals
    did (int 1 -> "1", float keys by the canon's float rule...).
    """
    t = type(o)
    if t is str or t is bool or t is int or o is None:
        return o
    if t is float:
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _normalize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_normalize(v) for v in o]
    if isinstance(o, (str, int)):
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, datetime.datetime):
        return o.strftime(_DATETIME_FORMAT)
    tolist = getattr(o, "tolist", None)
    if callable(tolist):
        return _normalize(tolist())
    raise DecodeError(f"cannot canonicalise a value of type {type(o).__name__} "
                      "(only JSON types, numpy values and datetime)")


def _slow_v2(data: Any) -> str:
    try:
        first = _UNSORTED(data)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"message cannot be written as JSON: {exc}") from None
    return _SORTED(json.loads(first))


def _legacy_float(x: float) -> str:
    if not math.isfinite(x):
        return "null"
    text = float.__repr__(x)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _legacy_key(key: Any) -> str:
    # The key rules of the stdlib pure-Python encoder, with the legacy floats.
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _legacy_float(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise DecodeError(f"a dict key of type {type(key).__name__} cannot be a JSON key")


def _legacy_write(o: Any, sort_keys: bool, out: list[str]) -> None:
    if isinstance(o, str):
        out.append(encode_basestring(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_legacy_float(o))
    elif isinstance(o, list):
        out.append("[")
        for i, v in enumerate(o):
            if i:
                out.append(",")
            _legacy_write(v, sort_keys, out)
        out.append("]")
    elif isinstance(o, dict):
        items: Any = o.items()
        if sort_keys:
            try:
                items = sorted(items)
            except TypeError:
                raise DecodeError("dict keys of mixed types cannot be sorted") from None
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(encode_basestring(_legacy_key(k)))
            out.append(":")
            _legacy_write(v, sort_keys, out)
        out.append("}")
    else:  # _normalize leaves nothing else
        raise DecodeError(f"cannot canonicalise a value of type {type(o).__name__}")


def _legacy_text(data: Any, sort_keys: bool) -> str:
    out: list[str] = []
    _legacy_write(data, sort_keys, out)
    return "".join(out)


def _slow_legacy(data: Any) -> str:
    return _legacy_text(data, True)


def _slow_v1(data: Any) -> str:
    return _fast_legacy(json.loads(_legacy_text(data, False)))


_SLOW = {CANON_V2: _slow_v2, CANON_V1: _slow_v1, CANON_LEGACY: _slow_legacy}
