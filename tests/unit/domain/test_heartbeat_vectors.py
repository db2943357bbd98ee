"""Heartbeat encoding and decoding against shared/vectors/heartbeats.json."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest

from pye2.domain.codecs.code import compress_text, decompress_text
from pye2.domain.codecs.heartbeat import (
    CLEAR_COUNTERS,
    DEFAULT_MAX,
    HeartbeatSummary,
    decode_heartbeat,
    encode_heartbeat,
    summarize_heartbeat,
)
from pye2.domain.codecs.heartbeat_view import DEFAULT_MAX_STATUS_BYTES, PROTECTED_FIELDS
from pye2.errors import ConfigError, DecodeError, DecompressionBomb


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        loader = next(p.load_vectors for p in metafunc.config.pluginmanager.get_plugins()
                      if hasattr(p, "load_vectors"))
        cases = loader("heartbeats.json")["cases"]
        metafunc.parametrize("case", [pytest.param(c, id=c["id"]) for c in cases])


# -- node side --------------------------------------------------------------------

def _version(case: dict[str, Any]) -> str:
    return str(case["wire_message"].get("HEARTBEAT_VERSION", "v1"))


def test_compressed_text_is_default_json_dumps(case: dict[str, Any]) -> None:
    text = case.get("compressed_json_text")
    assert text is None or json.dumps(case["node_status_before_compression"]) == text


def test_encoded_data_is_byte_identical(case: dict[str, Any]) -> None:
    status = case["node_status_before_compression"]
    if case.get("encoded_data") is not None:
        assert encode_heartbeat(status)["ENCODED_DATA"] == case["encoded_data"]
        assert compress_text(json.dumps(status)) == case["encoded_data"]
    if _version(case) == "v2":
        assert encode_heartbeat(status)["ENCODED_DATA"] == case["wire_message"]["ENCODED_DATA"]


def test_body_matches_the_wire(case: dict[str, Any]) -> None:
    status = case["node_status_before_compression"]
    wire = case["wire_message"]
    version = _version(case)
    body = encode_heartbeat(status, version=version)
    assert body["HEARTBEAT_VERSION"] == version
    if version == "v2":
        assert set(body) == {"ENCODED_DATA", "HEARTBEAT_VERSION", *(k for k in CLEAR_COUNTERS if k in status)}
        assert body == {k: wire[k] for k in body}
        # Same order as the node writes them.
        assert list(body) == [k for k in wire if k in body]
    else:
        assert "ENCODED_DATA" not in body
        assert all(k in wire for k in body)


# -- receiving side ------------------------------------------------------------------

def test_encoded_data_inflates_to_the_compressed_text(case: dict[str, Any]) -> None:
    if _version(case) == "v2":
        inner = json.loads(decompress_text(case["wire_message"]["ENCODED_DATA"]))
        assert inner == case["node_status_before_compression"]
        if case.get("compressed_json_text") is not None:
            assert decompress_text(case["wire_message"]["ENCODED_DATA"]) == case["compressed_json_text"]


def test_merged_view_equals_the_sdk_view(case: dict[str, Any]) -> None:
    assert decode_heartbeat(case["wire_message"]) == case["sdk_merged_view"]
    if case.get("wire_json"):
        assert decode_heartbeat(json.loads(case["wire_json"])) == case["sdk_merged_view"]


def test_merged_view_inner_fields_win(case: dict[str, Any]) -> None:
    view = decode_heartbeat(case["wire_message"])
    if _version(case) == "v2":
        status = case["node_status_before_compression"]
        assert all(view[k] == v for k, v in status.items())
        assert view["ENCODED_DATA"] == case["wire_message"]["ENCODED_DATA"]
    else:
        assert view == case["wire_message"]


def test_merged_view_keeps_the_envelope_s_signed_fields(case: dict[str, Any]) -> None:
    wire = case["wire_message"]
    for name in PROTECTED_FIELDS:
        assert decode_heartbeat(wire).get(name) == wire.get(name), name
    if _version(case) == "v2":
        # a sender's status cannot rename, re-sign or re-date the heartbeat, nor add a signed field
        forged = {**case["node_status_before_compression"], **{name: f"forged {name}" for name in PROTECTED_FIELDS}}
        message = {**wire, "ENCODED_DATA": encode_heartbeat(forged)["ENCODED_DATA"]}
        for view in (decode_heartbeat(message), dict(decode_heartbeat(message, lazy=True))):
            assert {n: view[n] for n in PROTECTED_FIELDS if n in view} == {
                n: wire[n] for n in PROTECTED_FIELDS if n in wire}
            assert {k: v for k, v in view.items() if k not in PROTECTED_FIELDS and k != "ENCODED_DATA"} == {
                k: v for k, v in case["sdk_merged_view"].items() if k not in PROTECTED_FIELDS and k != "ENCODED_DATA"}


def test_tracked_fields(case: dict[str, Any]) -> None:
    view = decode_heartbeat(case["wire_message"])
    summary = summarize_heartbeat(view)
    assert summary.to_dict() == case["sdk_tracked"]
    reported = view.get("CONFIG_STREAMS") is not None or view.get("PIPELINES") is not None
    assert summary.reports_pipelines is reported
    assert set(summary.configs) == set(case["sdk_tracked"]["pipelines"])


def test_v1_carries_the_status_in_clear(case: dict[str, Any]) -> None:
    status = case["node_status_before_compression"]
    body = encode_heartbeat(status, version="v1")
    assert body == {**status, "HEARTBEAT_VERSION": "v1"}
    envelope = {k: v for k, v in case["wire_message"].items() if k not in ("ENCODED_DATA", "HEARTBEAT_VERSION")}
    view = decode_heartbeat({**envelope, **body})
    assert view == {**envelope, **body}
    assert summarize_heartbeat(view).to_dict() == case["sdk_tracked"]


# -- summaries -----------------------------------------------------------------------

def test_summary_prefers_config_streams_then_pipelines_alias() -> None:
    view = {"EE_ID": "n", "PIPELINES": [{"NAME": "a"}, {"NAME": "b"}, {"NAME": "a", "X": 1}]}
    summary = summarize_heartbeat(view)
    assert summary == HeartbeatSummary(None, "n", ("a", "b"), True)
    assert summary.configs["a"] == {"NAME": "a", "X": 1}
    both = summarize_heartbeat({"EE_SENDER": "0xai_x", "CONFIG_STREAMS": [{"NAME": "c"}], "PIPELINES": []})
    assert both.pipelines == ("c",)


def test_summary_without_pipelines_reports_none() -> None:
    summary = summarize_heartbeat({"EE_SENDER": "0xai_x", "EE_ID": "n"})
    assert summary.pipelines == ()
    assert summary.reports_pipelines is False
    assert summary.to_dict() == {"node_address": "0xai_x", "node_alias": "n", "pipelines": []}


@pytest.mark.parametrize(
    "view",
    [
        {},
        {"CONFIG_STREAMS": []},
        {"EE_ID": 5},
        {"EE_ID": "n", "EE_SENDER": ["x"]},
        {"EE_ID": "n", "CONFIG_STREAMS": "admin_pipeline"},
        {"EE_ID": "n", "CONFIG_STREAMS": [{"TYPE": "Void"}]},
        {"EE_ID": "n", "CONFIG_STREAMS": ["admin_pipeline"]},
        ["EE_ID"],
    ],
)
def test_malformed_summary_input_raises_decode_error(view: Any) -> None:
    with pytest.raises(DecodeError):
        summarize_heartbeat(view)


# -- malformed heartbeats ---------------------------------------------------------------

def _v2(encoded: Any) -> dict[str, Any]:
    return {"EE_ID": "n", "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": encoded}


@pytest.mark.parametrize(
    "message",
    [
        {"EE_ID": "n", "HEARTBEAT_VERSION": "v2"},
        _v2(None),
        _v2(42),
        _v2("%%% not base64 %%%"),
        _v2(base64.b64encode(b"plain, not zlib").decode()),
        _v2(base64.b64encode(zlib.compress(b"\xff\xfe")).decode()),
        _v2(compress_text("{not json")),
        _v2(compress_text("[1, 2, 3]")),
        _v2(compress_text("null")),
        _v2(compress_text("[" * 100_000 + "]" * 100_000)),
        {"EE_ID": "n", "HEARTBEAT_VERSION": "v3", "ENCODED_DATA": compress_text("{}")},
        {"EE_ID": "n", "HEARTBEAT_VERSION": 2},
        "a heartbeat",
        None,
    ],
)
def test_malformed_heartbeat_raises_decode_error(message: Any) -> None:
    with pytest.raises(DecodeError):
        decode_heartbeat(message)


def test_inflation_cap_is_enforced() -> None:
    status = {"DEVICE_LOG": "x" * 50_000}
    body = encode_heartbeat(status)
    assert decode_heartbeat(body, max_inflated=100_000)["DEVICE_LOG"] == "x" * 50_000
    with pytest.raises(DecompressionBomb):
        decode_heartbeat(body, max_inflated=1_000)


def test_the_default_cap_is_the_session_s_status_cap() -> None:
    assert DEFAULT_MAX == DEFAULT_MAX_STATUS_BYTES == 4 * 1024 * 1024
    body = encode_heartbeat({"DEVICE_LOG": "x" * DEFAULT_MAX_STATUS_BYTES})
    with pytest.raises(DecompressionBomb):
        decode_heartbeat(body)
    with pytest.raises(DecompressionBomb, match="without inflating"):
        decode_heartbeat({**body, "ENCODED_DATA": "A" * 7_000_000})


def test_missing_version_is_read_in_clear() -> None:
    message = {"EE_ID": "n", "CONFIG_STREAMS": []}
    assert decode_heartbeat(message) == message
    assert decode_heartbeat(message) is not message


def test_counters_absent_from_the_status_stay_absent() -> None:
    body = encode_heartbeat({"CPU": "x86_64"})
    assert set(body) == {"ENCODED_DATA", "HEARTBEAT_VERSION"}
    assert decode_heartbeat(body) == {**body, "CPU": "x86_64"}


@pytest.mark.parametrize(
    ("status", "version"),
    [({"A": object()}, "v2"), ({"A": 1}, "v3"), (["A"], "v2"), ({1j: 2}, "v2")],
)
def test_bad_encode_input_raises_config_error(status: Any, version: str) -> None:
    with pytest.raises(ConfigError):
        encode_heartbeat(status, version=version)
