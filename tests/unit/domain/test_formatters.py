"""Output formatters: default, aixp1, cavi2 (protocol.md section 8).

Real node messages from spec/samples decode with the default formatter and
survive an aixp1 / cavi2 encode-decode round trip (with each layout's
documented losses); hand-written aixp1 and cavi2 wire messages decode to the
expected flat view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pye2.domain.codecs.formatters import Aixp1Formatter, Cavi2Formatter, DefaultFormatter, formatter_name
from pye2.errors import ConfigError, DecodeError
from pye2.ports.formatter import Formatter


def _sample_messages(folder: Path) -> list[Any]:
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        message = data.get("message") or data.get("merged")
        if isinstance(message, dict) and "EE_EVENT_TYPE" in message:
            out.append(pytest.param(message, id=path.stem))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample" in metafunc.fixturenames:
        conftest = next(p for p in metafunc.config.pluginmanager.get_plugins() if hasattr(p, "SPEC"))
        metafunc.parametrize("sample", _sample_messages(conftest.SPEC / "samples"))


def test_samples_were_found(spec_samples: Path) -> None:
    assert len(_sample_messages(spec_samples)) >= 15


# -- formatter selection ------------------------------------------------------------

@pytest.mark.parametrize(
    ("message", "name"),
    [
        ({}, "default"),
        ({"EE_FORMATTER": None, "SB_IMPLEMENTATION": None}, "default"),
        ({"EE_FORMATTER": ""}, "default"),
        ({"EE_FORMATTER": "AIXP1"}, "aixp1"),
        ({"EE_FORMATTER": None, "SB_IMPLEMENTATION": "cavi2"}, "cavi2"),
        ({"EE_FORMATTER": "", "SB_IMPLEMENTATION": "Cavi2"}, "cavi2"),
        ({"EE_FORMATTER": "aixp1", "SB_IMPLEMENTATION": "cavi2"}, "aixp1"),
        ({"SB_IMPLEMENTATION": " custom "}, "custom"),
    ],
)
def test_formatter_name(message: dict[str, Any], name: str) -> None:
    assert formatter_name(message) == name


@pytest.mark.parametrize("message", [{"EE_FORMATTER": 1}, {"SB_IMPLEMENTATION": ["x"]}, [], "aixp1", None])
def test_formatter_name_of_malformed_message(message: Any) -> None:
    with pytest.raises(DecodeError):
        formatter_name(message)


def test_builtins_implement_the_port_under_their_registered_names(plugin_host: Any) -> None:
    for cls in (DefaultFormatter, Aixp1Formatter, Cavi2Formatter):
        formatter = plugin_host.formatter(cls.name)
        assert isinstance(formatter, cls)
        assert isinstance(formatter, Formatter)


# -- default ------------------------------------------------------------------------

def test_real_messages_decode_with_the_default_formatter(sample: dict[str, Any]) -> None:
    assert formatter_name(sample) == "default"
    decoded = DefaultFormatter().decode(sample)
    assert decoded == sample
    assert decoded is not sample
    assert DefaultFormatter().encode(decoded) == sample


@pytest.mark.parametrize("message", [None, [1], "x", {1: "a"}])
def test_default_rejects_non_objects(message: Any) -> None:
    with pytest.raises(DecodeError):
        DefaultFormatter().decode(message)
    with pytest.raises(ConfigError):
        DefaultFormatter().encode(message)


# -- aixp1 --------------------------------------------------------------------------

AIXP1_PAYLOAD = {
    "EE_ID": "ignored-alias", "EE_EVENT_TYPE": "PAYLOAD", "EE_FORMATTER": "aixp1",
    "EE_PAYLOAD_PATH": ["node-a", "pipe", "SIG_01", "inst"], "EE_TIMESTAMP": "2024-01-30 15:36:37.123456",
    "DATA": {"PLUGIN_META": {"_P_VERSION": "1.0"}, "PIPELINE_META": {"_C_FPS": 10},
             "RESULT": 42, "PLUGIN_CATEGORY": "special"},
}


def test_aixp1_payload_decodes_to_the_flat_view() -> None:
    assert Aixp1Formatter().decode(AIXP1_PAYLOAD) == {
        "EE_ID": "node-a", "EE_EVENT_TYPE": "PAYLOAD", "EE_FORMATTER": "aixp1",
        "EE_PAYLOAD_PATH": ["node-a", "pipe", "SIG_01", "inst"], "EE_TIMESTAMP": "2024-01-30 15:36:37.123456",
        "STREAM_NAME": "pipe", "SIGNATURE": "SIG_01", "INSTANCE_ID": "inst", "STREAM": "pipe", "PIPELINE": "pipe",
        "_P_VERSION": "1.0", "_C_FPS": 10, "RESULT": 42, "PLUGIN_CATEGORY": "special",
    }


def test_aixp1_heartbeat_and_pipeline_notification() -> None:
    hb = Aixp1Formatter().decode({"EE_EVENT_TYPE": "HEARTBEAT", "EE_PAYLOAD_PATH": ["n", None, None, None],
                                  "EE_FORMATTER": "AIXP1", "DATA": {"CPU": "x86"}})
    assert hb == {"EE_EVENT_TYPE": "HEARTBEAT", "EE_PAYLOAD_PATH": ["n", None, None, None], "EE_ID": "n",
                  "EE_FORMATTER": "AIXP1", "CPU": "x86"}
    notif = Aixp1Formatter().decode({"EE_EVENT_TYPE": "NOTIFICATION", "EE_PAYLOAD_PATH": ["n", "p", None, None],
                                     "DATA": {"NOTIFICATION_CODE": 1}})
    assert notif["STREAM_NAME"] == "p"
    assert notif["SIGNATURE"] is None  # the path names a pipeline, so SIGNATURE is set (to null)
    assert "INSTANCE_ID" not in notif
    assert notif["EE_FORMATTER"] == "aixp1"


def test_aixp1_round_trip_of_real_messages(sample: dict[str, Any]) -> None:
    fmt = Aixp1Formatter()
    wire = fmt.encode(sample)
    assert set(wire) - {"DATA"} <= set(sample) | {"EE_FORMATTER", "SB_IMPLEMENTATION"}
    assert formatter_name(wire) == "aixp1"
    for key in ("STREAM_NAME", "SIGNATURE", "INSTANCE_ID"):
        assert key not in wire  # routing travels only in EE_PAYLOAD_PATH
    expected = {**sample, "EE_FORMATTER": "aixp1", "SB_IMPLEMENTATION": "aixp1"}
    if sample["EE_PAYLOAD_PATH"][1] is not None:
        expected.setdefault("SIGNATURE", None)
    assert fmt.decode(wire) == expected


def test_aixp1_without_a_path_keeps_the_routing_it_has() -> None:
    decoded = Aixp1Formatter().decode({"EE_EVENT_TYPE": "HEARTBEAT", "EE_ID": "n", "DATA": {"CPU": "x"}})
    assert decoded == {"EE_EVENT_TYPE": "HEARTBEAT", "EE_ID": "n", "CPU": "x", "EE_FORMATTER": "aixp1"}


def test_aixp1_payload_splits_metadata() -> None:
    flat = {"EE_EVENT_TYPE": "PAYLOAD", "EE_ID": "n", "STREAM_NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i",
            "STREAM": "p", "PIPELINE": "p", "_P_A": 1, "_C_B": 2, "X": 3}
    wire = Aixp1Formatter().encode(flat)
    assert wire["EE_PAYLOAD_PATH"] == ["n", "p", "S", "i"]
    assert wire["DATA"] == {"PLUGIN_META": {"_P_A": 1}, "PIPELINE_META": {"_C_B": 2}, "X": 3}


@pytest.mark.parametrize(
    "message",
    [
        {"EE_EVENT_TYPE": "PAYLOAD", "EE_PAYLOAD_PATH": ["n", "p", "s", "i"]},
        {"EE_PAYLOAD_PATH": ["n", None, None, None], "DATA": {}},
        {"EE_EVENT_TYPE": "HEARTBEAT", "EE_PAYLOAD_PATH": ["n", None], "DATA": {}},
        {"EE_EVENT_TYPE": "HEARTBEAT", "EE_PAYLOAD_PATH": "n", "DATA": {}},
        {"EE_EVENT_TYPE": "HEARTBEAT", "EE_PAYLOAD_PATH": ["n", None, None, None], "DATA": [1]},
        {"EE_EVENT_TYPE": "PAYLOAD", "EE_PAYLOAD_PATH": ["n", "p", "s", "i"], "DATA": {"PLUGIN_META": 3}},
        {"EE_EVENT_TYPE": "HEARTBEAT", "EE_FORMATTER": "cavi2", "DATA": {}},
        [],
    ],
)
def test_aixp1_malformed_messages_raise_decode_error(message: Any) -> None:
    with pytest.raises(DecodeError):
        Aixp1Formatter().decode(message)


def test_aixp1_encode_needs_an_event_type() -> None:
    with pytest.raises(ConfigError):
        Aixp1Formatter().encode({"EE_ID": "n"})


# -- cavi2 --------------------------------------------------------------------------

CAVI2_PAYLOAD = {
    "messageID": "m-1", "type": "object_tracking_01", "category": "general", "version": "3.28.57",
    "data": {
        "identifiers": {"streamId": "cam", "instanceId": "trk-1", "payloadId": 7, "initiatorId": "pySDK",
                        "sessionId": "s1", "idTags": []},
        "value": {"count": 3},
        "specificValue": {"exec_result": {"a": 1}, "exec_errors": None},
        "time": "2024-01-30 15:36:36.900000",
        "img": {"id": "aGVsbG8=", "height": 480, "width": 640},
    },
    "metadata": {"sbTotalMessages": 1007, "sbCurrentMessage": "m-1",
                 "captureMetadata": {"FPS": 10}, "pluginMetadata": {"VERSION": "1.0"}},
    "time": {"deviceTime": "", "hostTime": "2024-01-30 15:36:37.123456", "internetTime": ""},
    "sender": {"id": "AiXp-ExecutionEngine", "instanceId": "AiXp-EE-v3.28.57", "hostId": "node-a"},
    "demoMode": False,
    "EE_FORMATTER": "cavi2", "SB_IMPLEMENTATION": "cavi2", "EE_PAYLOAD_PATH": ["node-a", "cam", "OBJECT_TRACKING_01",
                                                                            "trk-1"],
    "EE_SIGN": "sig", "SIGN_CANON_V": "v2",
}


def test_cavi2_payload_decodes_to_the_flat_view() -> None:
    assert Cavi2Formatter().decode(CAVI2_PAYLOAD) == {
        "EE_EVENT_TYPE": "PAYLOAD", "EE_ID": "node-a", "EE_TIMESTAMP": "2024-01-30 15:36:37.123456",
        "EE_TOTAL_MESSAGES": 1007, "EE_MESSAGE_ID": "m-1", "SIGNATURE": "OBJECT_TRACKING_01", "STREAM": "cam",
        "INITIATOR_ID": "pySDK", "INSTANCE_ID": "trk-1", "SESSION_ID": "s1", "ID": 7, "ID_TAGS": [],
        "COUNT": 3, "EXEC_RESULT": {"a": 1}, "EXEC_ERRORS": None,
        "IMG": "aGVsbG8=", "IMG_HEIGHT": 480, "IMG_WIDTH": 640, "TIMESTAMP_EXECUTION": "2024-01-30 15:36:36.900000",
        "PLUGIN_CATEGORY": "general", "_C_FPS": 10, "_P_VERSION": "1.0",
        "EE_FORMATTER": "cavi2", "EE_PAYLOAD_PATH": ["node-a", "cam", "OBJECT_TRACKING_01", "trk-1"], "EE_SIGN": "sig",
    }


def test_cavi2_heartbeat_metadata_is_upper_cased() -> None:
    hb = {"messageID": "m", "type": "heartbeat", "category": "", "version": "1", "data": {},
          "metadata": {"sbTotalMessages": 1, "sbCurrentMessage": "m", "config_streams": [], "cpu": "x86"},
          "time": {"hostTime": "t"}, "sender": {"hostId": "n"}, "demoMode": False, "SB_IMPLEMENTATION": "cavi2"}
    assert Cavi2Formatter().decode(hb) == {
        "EE_EVENT_TYPE": "HEARTBEAT", "EE_ID": "n", "EE_TIMESTAMP": "t", "EE_TOTAL_MESSAGES": 1,
        "EE_MESSAGE_ID": "m", "CONFIG_STREAMS": [], "CPU": "x86", "EE_FORMATTER": "cavi2",
    }


def _cavi2_expected(flat: dict[str, Any]) -> dict[str, Any]:
    """What survives cavi2: EE* and _-prefixed keys as is, other keys upper-cased, null images dropped."""
    out = {}
    for key, value in flat.items():
        if key == "SB_IMPLEMENTATION" or (key == "IMG" and value is None):
            continue
        out[key if key.startswith(("EE", "_")) else key.upper()] = value
    out["EE_FORMATTER"] = "cavi2"
    return out


def test_cavi2_round_trip_of_real_messages(sample: dict[str, Any]) -> None:
    fmt = Cavi2Formatter()
    wire = fmt.encode(sample)
    assert {"messageID", "type", "data", "metadata", "time", "sender", "demoMode"} <= set(wire)
    assert wire["sender"]["hostId"] == sample["EE_ID"]
    assert formatter_name(wire) == "cavi2"
    assert fmt.decode(json.loads(json.dumps(wire))) == _cavi2_expected(sample)


@pytest.mark.parametrize("drop", ["messageID", "type", "data", "metadata", "time", "sender"])
def test_cavi2_missing_part_raises_decode_error(drop: str) -> None:
    message = {k: v for k, v in CAVI2_PAYLOAD.items() if k != drop}
    with pytest.raises(DecodeError):
        Cavi2Formatter().decode(message)


@pytest.mark.parametrize(
    "patch",
    [
        {"sender": {"id": "x"}},
        {"time": {"deviceTime": ""}},
        {"metadata": {"sbTotalMessages": 1}},
        {"data": {"identifiers": {"streamId": "cam"}}},
        {"data": "oops"},
        {"type": 5},
        {"EE_FORMATTER": "aixp1"},
    ],
)
def test_cavi2_malformed_parts_raise_decode_error(patch: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        Cavi2Formatter().decode({**CAVI2_PAYLOAD, **patch})


def test_cavi2_encode_names_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="STREAM"):
        Cavi2Formatter().encode({"EE_EVENT_TYPE": "PAYLOAD", "EE_ID": "n", "EE_TIMESTAMP": "t",
                                 "EE_MESSAGE_ID": "m", "EE_TOTAL_MESSAGES": 1, "EE_VERSION": "1",
                                 "SIGNATURE": "S", "INSTANCE_ID": "i"})
