"""HeartbeatView: ``decode_heartbeat(..., lazy=True)`` is the eager view, decoded on first use."""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest

import pye2.domain.codecs.code as code_module
from pye2.domain.codecs.code import compress_text, decompress_text, max_compressed_chars
from pye2.domain.codecs.heartbeat import DEFAULT_MAX, decode_heartbeat, encode_heartbeat
from pye2.domain.codecs.heartbeat_view import (
    DEFAULT_MAX_STATUS_BYTES,
    PROTECTED_FIELDS,
    EncodedStatus,
    HeartbeatView,
    decode_status,
)
from pye2.errors import ConfigError, DecodeError, DecompressionBomb

STATUS = {
    "CPU": "x86_64",
    "EE_ID": "node-inner",  # a protected field: the envelope's stays
    "EE_FORMATTER": "",
    "CONFIG_STREAMS": [{"NAME": "admin_pipeline", "TYPE": "NetworkListener"}],
    "NR_PAYLOADS": 3,
    "F": [1e300, -0.0, 0.1],
}
ENVELOPE = {"EE_ID": "node-1", "EE_SENDER": "0xai_sender", "EE_FORMATTER": None, "EE_EVENT_TYPE": "HEARTBEAT"}


def _message(status: dict[str, Any] = STATUS) -> dict[str, Any]:
    return {**ENVELOPE, **encode_heartbeat(status)}


def _lazy(message: dict[str, Any] | None = None, **kw: Any) -> HeartbeatView:
    view = decode_heartbeat(_message() if message is None else message, lazy=True, **kw)
    assert isinstance(view, HeartbeatView)
    return view


def test_building_decodes_nothing_and_the_envelope_is_at_hand() -> None:
    message = _message()
    view = _lazy(message)
    assert view.pending and view.error is None
    assert view.envelope is message and view.envelope["EE_ID"] == "node-1"
    compact = view.compact(["EE_FORMATTER", "MISSING"])
    assert isinstance(compact, EncodedStatus) and compact.envelope == {"EE_FORMATTER": None}
    with_id = view.compact(["EE_ID"])
    assert view.pending  # none of the above decoded
    unprotected = {k: v for k, v in STATUS.items() if k not in PROTECTED_FIELDS}
    assert compact.decode() == {"EE_FORMATTER": "", **unprotected}  # the status cannot add EE_ID either
    assert with_id.decode() == {**unprotected, "EE_ID": "node-1"}
    assert view.pending


def test_vectors_lazy_view_is_the_eager_view(vectors: Callable[[str], Any]) -> None:
    for case in vectors("heartbeats.json")["cases"]:
        lazy = decode_heartbeat(case["wire_message"], lazy=True)
        assert lazy == case["sdk_merged_view"]
        assert repr(lazy) == repr(decode_heartbeat(case["wire_message"]))
        assert list(lazy) == list(case["sdk_merged_view"])


def _as_kwargs(**kw: Any) -> dict[str, Any]:
    return kw


def _merged_into_empty(view: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out.update(view)
    return out


READS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "getitem": lambda v: v["CPU"],
    "getitem-envelope": lambda v: v["EE_ID"],
    "get": lambda v: (v.get("CPU"), v.get("nope", 5)),
    "contains": lambda v: ("CPU" in v, "nope" in v),
    "len": len,
    "bool": bool,
    "iter": list,
    "reversed": lambda v: list(reversed(v)),
    "keys": lambda v: list(v.keys()),
    "values": lambda v: list(v.values()),
    "items": lambda v: list(v.items()),
    "eq": lambda v: v == decode_heartbeat(_message()),
    "eq-reflected": lambda v: decode_heartbeat(_message()) == v,
    "ne": lambda v: v != {},
    "repr": repr,
    "str": str,
    "dict": dict,
    "unpack": lambda v: {**v},
    "kwargs": lambda v: _as_kwargs(**v),
    "json": json.dumps,
    "json-sorted": lambda v: json.dumps(v, sort_keys=True),
    "copy-method": lambda v: v.copy(),
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda v: pickle.loads(pickle.dumps(v)),
    "or": lambda v: v | {"X": 1},
    "ror": lambda v: {"X": 1} | v,
    "update-other": _merged_into_empty,
    "format-map": lambda v: "{CPU}".format_map(v),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_every_read_gives_what_the_eager_view_gives(read: Callable[[dict[str, Any]], Any]) -> None:
    view = _lazy()
    assert read(view) == read(decode_heartbeat(_message()))
    assert not view.pending


WRITES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "setitem": lambda v: v.__setitem__("X", 1),
    "delitem": lambda v: v.__delitem__("CPU"),
    "pop": lambda v: v.pop("CPU"),
    "pop-default": lambda v: v.pop("nope", None),
    "popitem": lambda v: v.popitem(),
    "setdefault": lambda v: v.setdefault("CPU", "other"),
    "update": lambda v: v.update({"CPU": "arm"}, Y=2),
    "ior": lambda v: v.__ior__({"CPU": "arm"}),
    "clear": lambda v: v.clear(),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_writes_decode_first_then_act_as_on_a_dict(write: Callable[[dict[str, Any]], Any]) -> None:
    view, eager = _lazy(), decode_heartbeat(_message())
    out, expected = write(view), write(eager)
    if expected is eager:
        assert out is view
    else:
        assert out == expected
    assert dict(view) == eager and list(view) == list(eager)


def test_two_pending_views_compare_by_content() -> None:
    assert _lazy() == _lazy()
    other = _lazy({**ENVELOPE, **encode_heartbeat({**STATUS, "CPU": "arm"})})
    assert _lazy() != other


def test_v1_and_unversioned_heartbeats_stay_plain_copies() -> None:
    v1 = {**ENVELOPE, **encode_heartbeat(STATUS, version="v1")}
    for message in (v1, dict(ENVELOPE)):
        view = decode_heartbeat(message, lazy=True)
        assert type(view) is dict and view == message and view is not message


def _status_of(size: int) -> str:
    """ENCODED_DATA of a status whose JSON is ``size`` bytes (mostly zeros: it compresses to a few KB)."""
    return compress_text('{"A": "' + "0" * (size - 9) + '"}')


#: a status over the default cap (5 MiB of JSON, 5 KB compressed)
OVER_THE_CAP = _status_of(5 * 1024 * 1024)
#: longer than any compressed form of a status within the default cap
TOO_LONG = "A" * (max_compressed_chars(DEFAULT_MAX_STATUS_BYTES) + 4)

BROKEN = [
    pytest.param("%%% not base64 %%%", id="not-base64"),
    pytest.param("", id="empty"),
    pytest.param(base64.b64encode(b"plain, not zlib").decode(), id="not-zlib"),
    pytest.param(base64.b64encode(zlib.compress(b'{"CPU": 1}')[:-3]).decode(), id="truncated-zlib"),
    pytest.param(base64.b64encode(zlib.compress(b"\xff\xfe")).decode(), id="not-utf8"),
    pytest.param(compress_text("{not json"), id="not-json"),
    pytest.param(compress_text("[1, 2, 3]"), id="json-list"),
    pytest.param(compress_text("null"), id="json-null"),
    pytest.param(compress_text('"CPU"'), id="json-string"),
    pytest.param(compress_text("5"), id="json-number"),
    pytest.param(compress_text("[" * 100_000 + "]" * 100_000), id="too-deep"),
    pytest.param(OVER_THE_CAP, id="over-the-cap"),
    pytest.param(TOO_LONG, id="text-too-long"),
]


def _no_raise_reads(view: dict[str, Any]) -> None:
    """Every read of READS works on ``view``; those of a key it lacks raise KeyError, as on any dict."""
    for name, read in READS.items():
        if name in ("getitem", "format-map"):  # they read CPU, a status key
            with pytest.raises(KeyError):
                read(view)
        else:
            read(view)


@pytest.mark.parametrize("encoded", BROKEN)
def test_an_undecodable_status_never_raises_the_view_is_the_envelope_and_says_why(encoded: str) -> None:
    message = {**ENVELOPE, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": encoded}
    envelope_only = {k: v for k, v in message.items() if k != "ENCODED_DATA"}
    with pytest.raises(DecodeError) as eager:
        decode_heartbeat(message)
    assert _lazy(message).error is None
    view = _lazy(message)  # building it does not find out
    assert view.pending
    for _ in range(2):  # reading finds out, raises nothing: the status is just absent
        assert view.get("CPU") is None and "CPU" not in view
        with pytest.raises(KeyError):
            view["CPU"]
    assert type(view.error) is type(eager.value) and str(view.error) == str(eager.value)
    assert view.error.__traceback__ is None  # nothing of the decoding kept alive
    assert not view.pending
    # the envelope alone, without the blob that did not decode
    assert view["EE_ID"] == ENVELOPE["EE_ID"] and dict(view) == envelope_only and len(view) == len(envelope_only)
    assert "ENCODED_DATA" not in view and view.get("ENCODED_DATA") is None
    assert json.loads(json.dumps(view)) == envelope_only and view == envelope_only
    assert "undecodable" in repr(view)
    assert view.envelope is message and view.envelope["ENCODED_DATA"] == encoded
    _no_raise_reads(view)
    with pytest.raises(type(eager.value)):
        view.compact().decode()  # a node record's reader catches it and records why


@pytest.mark.parametrize("encoded", BROKEN)
@pytest.mark.parametrize("first", ["getitem-envelope", "dict", "len", "json", "iter", "repr", "eq"])
def test_whatever_reads_an_undecodable_view_first_raises_nothing(encoded: str, first: str) -> None:
    message = {**ENVELOPE, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": encoded}
    view = _lazy(message)
    READS[first](view)
    assert isinstance(view.error, DecodeError) and not view.pending
    assert view["EE_ID"] == "node-1" and "ENCODED_DATA" not in dict(view)


def test_a_write_to_an_undecodable_view_acts_on_the_envelope() -> None:
    view = _lazy({**ENVELOPE, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": compress_text("[]")})
    view["X"] = 1
    assert isinstance(view.error, DecodeError)
    assert dict(view) == {**ENVELOPE, "HEARTBEAT_VERSION": "v2", "X": 1}


def test_the_inflation_cap_applies_when_first_read() -> None:
    message = {**ENVELOPE, **encode_heartbeat({"DEVICE_LOG": "x" * 50_000})}
    assert _lazy(message, max_inflated=100_000)["DEVICE_LOG"] == "x" * 50_000
    view = _lazy(message, max_inflated=1_000)
    assert view.get("DEVICE_LOG") is None and "DEVICE_LOG" not in view
    assert isinstance(view.error, DecompressionBomb)


def test_the_status_never_overrides_the_signed_envelope() -> None:
    forged = {"CPU": "x", "EE_SENDER": "0xai_someone_else", "EE_ID": "other", "EE_HASH": "00", "EE_SIGN": "forged",
              "EE_TIMESTAMP": "1999-01-01 00:00:00", "EE_ETH_SENDER": "0xdead"}
    message = {**ENVELOPE, **encode_heartbeat(forged)}
    for view in (_lazy(message), decode_heartbeat(message)):
        assert view["CPU"] == "x"
        for name in ("EE_SENDER", "EE_ID", "EE_HASH", "EE_SIGN", "EE_TIMESTAMP"):
            assert view.get(name) == message.get(name), name
        assert "EE_ETH_SENDER" not in view  # not in the envelope: a status cannot add it either


SIGNED = {"EE_ID": "node-1", "EE_SENDER": "0xai_sender", "EE_SIGN": "MEUCIQ==", "EE_HASH": "ab" * 32,
          "EE_TIMESTAMP": "2026-01-01 00:00:00.000001", "EE_EVENT_TYPE": "HEARTBEAT"}


def test_no_protected_field_of_the_status_reaches_any_view() -> None:
    forged = {"CPU": "x", **{name: f"forged {name}" for name in PROTECTED_FIELDS}}
    message = {**SIGNED, **encode_heartbeat(forged)}
    lazy = _lazy(message)
    views = {
        "eager": decode_heartbeat(message),
        "lazy": dict(lazy),
        "lazy-get": {name: lazy.get(name) for name in (*PROTECTED_FIELDS, "CPU") if name in lazy},
        "copy": copy.copy(_lazy(message)),
        "pickle": pickle.loads(pickle.dumps(_lazy(message))),
        "compact-all": {**SIGNED, **_lazy(message).compact(SIGNED).decode()},
        "compact-none": {**SIGNED, **_lazy(message).compact().decode()},
    }
    for how, view in views.items():
        assert view["CPU"] == "x", how
        for name in PROTECTED_FIELDS:
            assert view.get(name) == SIGNED.get(name), (how, name)  # the envelope's, or absent as in it
    assert not set(PROTECTED_FIELDS) & set(_lazy(message).compact().decode())
    assert set(PROTECTED_FIELDS) & set(EncodedStatus(message["ENCODED_DATA"], 100_000, SIGNED).decode()) == {
        "EE_ID", "EE_SENDER", "EE_SIGN", "EE_HASH", "EE_TIMESTAMP"}


def test_a_status_over_the_default_cap_is_a_bomb_found_without_inflating_it_all() -> None:
    assert DEFAULT_MAX == DEFAULT_MAX_STATUS_BYTES == 4 * 1024 * 1024
    message = {**SIGNED, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": _status_of(20 * 1024 * 1024)}
    assert len(message["ENCODED_DATA"]) < 30_000
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBomb):
            decode_heartbeat(message)
        view = _lazy(message)
        assert view["EE_ID"] == "node-1"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(view.error, DecompressionBomb)
    # at most cap + 1 bytes were inflated, never 20 MiB (zlib joins its output blocks: twice that at the peak)
    assert peak < 2 * DEFAULT_MAX_STATUS_BYTES + 1024 * 1024


def test_a_status_just_within_the_default_cap_decodes() -> None:
    message = {**SIGNED, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": _status_of(DEFAULT_MAX_STATUS_BYTES)}
    assert len(decode_heartbeat(message)["A"]) == DEFAULT_MAX_STATUS_BYTES - 9
    assert len(_lazy(message)["A"]) == DEFAULT_MAX_STATUS_BYTES - 9 and _lazy(message).get("CPU") is None
    view = _lazy({**message, "ENCODED_DATA": _status_of(DEFAULT_MAX_STATUS_BYTES + 1)})
    assert "A" not in view and isinstance(view.error, DecompressionBomb)


@pytest.fixture()
def no_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("decoded or inflated a text refused by its length")

    monkeypatch.setattr(code_module, "inflate", refuse)
    monkeypatch.setattr(code_module, "b64_to_bytes", refuse)


@pytest.mark.usefixtures("no_inflating")
@pytest.mark.parametrize("cap", [1, 1_000, DEFAULT_MAX_STATUS_BYTES])
def test_a_text_too_long_for_the_cap_is_refused_before_inflating(cap: int) -> None:
    text = compress_text("{}") + "A" * max_compressed_chars(cap)  # valid, then trailing junk
    message = {**SIGNED, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": text}
    with pytest.raises(DecompressionBomb, match="without inflating"):
        decompress_text(text, max_size=cap)
    with pytest.raises(DecompressionBomb, match="without inflating"):
        decode_status(text, max_inflated=cap)
    with pytest.raises(DecompressionBomb, match="without inflating"):
        decode_heartbeat(message, max_inflated=cap)
    view = _lazy(message, max_inflated=cap)
    assert view["EE_ID"] == "node-1" and dict(view) == {**SIGNED, "HEARTBEAT_VERSION": "v2"}
    assert isinstance(view.error, DecompressionBomb) and "without inflating" in str(view.error)
    with pytest.raises(DecompressionBomb, match="without inflating"):
        EncodedStatus(text, cap).decode()


def test_a_text_as_long_as_the_bound_is_still_inflated() -> None:
    cap = 1_000
    text = compress_text("{}")
    padded = text + "=" * (max_compressed_chars(cap) - len(text))  # skipped by the lenient base64 reader
    assert decode_status(padded, max_inflated=cap) == {}
    with pytest.raises(DecompressionBomb):
        decode_status(padded + "=", max_inflated=cap)


@pytest.mark.parametrize("size", [1, 2, 3, 100, 1_000, 65_536, 300_001])
def test_no_zlib_setting_compresses_within_the_cap_to_more_than_the_bound(size: int) -> None:
    raw = os.urandom(size)  # incompressible: the worst case
    for level in (0, 1, 6, 9):
        for mem_level in (1, 8, 9):
            compressor = zlib.compressobj(level, zlib.DEFLATED, 15, mem_level)
            text = base64.b64encode(compressor.compress(raw) + compressor.flush()).decode()
            assert len(text) <= max_compressed_chars(size), (level, mem_level)
            assert code_module.inflate(base64.b64decode(text), max_size=size) == raw


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_the_bound_needs_a_positive_int_cap(cap: Any) -> None:
    with pytest.raises(ConfigError):
        max_compressed_chars(cap)


@pytest.mark.parametrize(
    "message",
    [
        {"EE_ID": "n", "HEARTBEAT_VERSION": "v2"},
        {"EE_ID": "n", "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": 42},
        {"EE_ID": "n", "HEARTBEAT_VERSION": "v3", "ENCODED_DATA": compress_text("{}")},
        "a heartbeat",
        None,
    ],
)
def test_what_needs_no_decoding_is_still_checked_at_once(message: Any) -> None:
    with pytest.raises(DecodeError):
        decode_heartbeat(message, lazy=True)


@pytest.mark.parametrize("cap", [0, -1, True, 1.5, "10"])
def test_a_bad_cap_is_refused_at_once(cap: Any) -> None:
    with pytest.raises(ConfigError):
        decode_heartbeat(_message(), max_inflated=cap, lazy=True)
