"""HeartbeatView: ``decode_heartbeat(..., lazy=True)`` is the eager view, decoded on first use."""

from __future__ import annotations

import base64
import copy
import json
import pickle
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from pye2.domain.codecs.code import compress_text
from pye2.domain.codecs.heartbeat import decode_heartbeat, encode_heartbeat
from pye2.domain.codecs.heartbeat_view import EncodedStatus, HeartbeatView
from pye2.errors import ConfigError, DecodeError, DecompressionBomb

STATUS = {
    "CPU": "x86_64",
    "EE_ID": "node-inner",  # the status wins over the envelope
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
    assert view.pending  # none of the above decoded
    assert compact.decode() == {"EE_FORMATTER": "", **STATUS}


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


BROKEN = [
    "%%% not base64 %%%",
    base64.b64encode(b"plain, not zlib").decode(),
    base64.b64encode(zlib.compress(b"\xff\xfe")).decode(),
    compress_text("{not json"),
    compress_text("[1, 2, 3]"),
    compress_text("[" * 100_000 + "]" * 100_000),
]


@pytest.mark.parametrize("encoded", BROKEN)
def test_an_undecodable_status_never_raises_the_view_is_the_envelope_and_says_why(encoded: str) -> None:
    message = {**ENVELOPE, "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": encoded}
    with pytest.raises(DecodeError) as eager:
        decode_heartbeat(message)
    view = _lazy(message)  # building it does not find out
    for _ in range(2):  # reading finds out, raises nothing: the status is just absent
        assert view.get("CPU") is None and "CPU" not in view
        with pytest.raises(KeyError):
            view["CPU"]
    assert type(view.error) is type(eager.value) and str(view.error) == str(eager.value)
    assert not view.pending
    assert view["EE_ID"] == ENVELOPE["EE_ID"] and dict(view) == message and len(view) == len(message)
    assert json.loads(json.dumps(view)) == message
    assert "undecodable" in repr(view)
    assert view.envelope is message


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
