"""The pipeline config model (protocol.md 6.2) and instance handles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pye2.domain.pipeline import (
    InstanceConfig,
    InstanceHandle,
    PipelineConfig,
    format_instance_handle,
    parse_instance_handle,
    upper_keys,
)
from pye2.errors import ConfigError, DecodeError


def _pipe() -> PipelineConfig:
    return PipelineConfig.create(
        "cam", "VideoStream", config={"URL": "rtsp://x"}, live_feed=False,
        instances=[
            InstanceConfig.create("OBJECT_TRACKING_01", "trk-1", {"OBJECT_TYPE": ["person"]}),
            InstanceConfig.create("CUSTOM_EXEC_01", "c1", code="eNo=", process_delay=1),
            InstanceConfig.create("OBJECT_TRACKING_01", "trk-2"),
        ],
    )


def test_to_dict_is_the_update_config_payload() -> None:
    assert _pipe().to_dict() == {
        "NAME": "cam",
        "SESSION_ID": "cam",
        "DEFAULT_PLUGIN": False,
        "PLUGINS": [
            {"SIGNATURE": "OBJECT_TRACKING_01",
             "INSTANCES": [{"INSTANCE_ID": "trk-1", "OBJECT_TYPE": ["person"]}, {"INSTANCE_ID": "trk-2"}]},
            {"SIGNATURE": "CUSTOM_EXEC_01", "INSTANCES": [{"INSTANCE_ID": "c1", "CODE": "eNo=", "PROCESS_DELAY": 1}]},
        ],
        "TYPE": "VideoStream",
        "URL": "rtsp://x",
        "LIVE_FEED": False,
    }


def test_later_keys_override_and_session_id_is_explicit() -> None:
    pipe = PipelineConfig.create("p", "Void", config={"DEFAULT_PLUGIN": True, "X": 1}, x=2, session_id="s")
    assert pipe.to_dict()["DEFAULT_PLUGIN"] is True
    assert pipe.to_dict()["X"] == 2
    assert pipe.to_dict()["SESSION_ID"] == "s"
    assert PipelineConfig("p", "Void").to_dict()["SESSION_ID"] is None


def test_values_are_isolated_from_callers() -> None:
    params = {"LIST": [1, 2]}
    inst = InstanceConfig("S", "i", params)
    params["LIST"].append(3)
    assert inst.params["LIST"] == [1, 2]
    pipe = PipelineConfig("p", "Void", instances=(inst,))
    out = pipe.to_dict()
    out["PLUGINS"][0]["INSTANCES"][0]["LIST"].append(4)
    assert pipe.to_dict()["PLUGINS"][0]["INSTANCES"][0]["LIST"] == [1, 2]
    with pytest.raises(TypeError):
        inst.params["NEW"] = 1  # type: ignore[index]


def test_signatures_and_lookup() -> None:
    pipe = _pipe()
    assert pipe.signatures == ("OBJECT_TRACKING_01", "CUSTOM_EXEC_01")
    found = pipe.get_instance("CUSTOM_EXEC_01", "c1")
    assert found is not None and found.params == {"CODE": "eNo=", "PROCESS_DELAY": 1}
    assert pipe.get_instance("CUSTOM_EXEC_01", "nope") is None


# -- edits ----------------------------------------------------------------------------------

def test_with_instance_adds_or_replaces_in_place() -> None:
    pipe = _pipe()
    added = pipe.with_instance(InstanceConfig("NEW_SIG", "n1", {"A": 1}))
    assert added.signatures[-1] == "NEW_SIG"
    assert pipe.get_instance("NEW_SIG", "n1") is None  # original untouched
    replaced = pipe.with_instance(InstanceConfig("OBJECT_TRACKING_01", "trk-1", {"OBJECT_TYPE": ["car"]}))
    plugins = replaced.to_dict()["PLUGINS"]
    assert plugins[0]["INSTANCES"][0] == {"INSTANCE_ID": "trk-1", "OBJECT_TYPE": ["car"]}
    assert len(replaced.instances) == len(pipe.instances)


def test_without_instance_drops_empty_signatures() -> None:
    pipe = _pipe().without_instance("CUSTOM_EXEC_01", "c1")
    assert pipe.signatures == ("OBJECT_TRACKING_01",)
    pipe = pipe.without_instance("OBJECT_TRACKING_01", "trk-1").without_instance("OBJECT_TRACKING_01", "trk-2")
    assert pipe.to_dict()["PLUGINS"] == []
    with pytest.raises(ConfigError):
        pipe.without_instance("OBJECT_TRACKING_01", "trk-1")


def test_with_instance_config_merges_upper_cased_delta() -> None:
    pipe = _pipe().with_instance_config("CUSTOM_EXEC_01", "c1", {"process_delay": 5}, new_key="v")
    inst = pipe.get_instance("CUSTOM_EXEC_01", "c1")
    assert inst is not None
    assert dict(inst.params) == {"CODE": "eNo=", "PROCESS_DELAY": 5, "NEW_KEY": "v"}
    assert pipe.with_instance_config("CUSTOM_EXEC_01", "c1", {"INSTANCE_ID": "c1"}) == pipe
    with pytest.raises(ConfigError):
        pipe.with_instance_config("CUSTOM_EXEC_01", "c1", {"INSTANCE_ID": "other"})
    with pytest.raises(ConfigError):
        pipe.with_instance_config("CUSTOM_EXEC_01", "missing", {"A": 1})


def test_with_config_merges_top_level_settings() -> None:
    pipe = _pipe().with_config({"URL": "rtsp://y"}, cap_resolution=2)
    assert pipe.config == {"URL": "rtsp://y", "LIVE_FEED": False, "CAP_RESOLUTION": 2}
    with pytest.raises(ConfigError):
        pipe.with_config({"NAME": "renamed"})


# -- construction errors --------------------------------------------------------------------

@pytest.mark.parametrize(
    "build",
    [
        lambda: PipelineConfig("", "Void"),
        lambda: PipelineConfig("p", None),
        lambda: PipelineConfig("p", "Void", session_id=3),
        lambda: PipelineConfig("p", "Void", config={"PLUGINS": []}),
        lambda: PipelineConfig("p", "Void", config={"TYPE": "x"}),
        lambda: PipelineConfig("p", "Void", config={1: "x"}),
        lambda: PipelineConfig("p", "Void", instances=({"SIGNATURE": "S"},)),
        lambda: PipelineConfig("p", "Void", instances=(InstanceConfig("S", "i"), InstanceConfig("S", "i"))),
        lambda: InstanceConfig("S", "", {}),
        lambda: InstanceConfig("S", "i", {"INSTANCE_ID": "j"}),
        lambda: InstanceConfig("S", "i", ["A"]),
        lambda: InstanceConfig.create("S", "i", {"a": 1}, A=2, a=3),
        lambda: upper_keys({"a": 1, "A": 2}),
    ],
)
def test_invalid_values_raise_config_error(build: Any) -> None:
    with pytest.raises(ConfigError):
        build()


def test_same_instance_id_under_two_signatures_is_allowed() -> None:
    pipe = PipelineConfig("p", "Void", instances=(InstanceConfig("A", "i"), InstanceConfig("B", "i")))
    assert pipe.signatures == ("A", "B")


# -- reading what nodes report ---------------------------------------------------------------

def test_stored_config_round_trips(spec_samples: Path) -> None:
    stored = json.loads((spec_samples / "stored_pipeline_config_probe_pipe.json").read_text("utf-8"))
    pipe = PipelineConfig.from_dict(stored)
    assert pipe.name == "probe_pipe"
    assert pipe.session_id == "probe"
    assert pipe.config["VALIDATED"] is True  # node-added keys are kept
    assert pipe.to_dict() == stored


def test_sent_config_round_trips(spec_samples: Path) -> None:
    sent = json.loads((spec_samples / "received_command_02.json").read_text("utf-8"))["PAYLOAD"]
    pipe = PipelineConfig.from_dict(sent)
    assert [i.instance_id for i in pipe.instances] == ["good", "boom", "imp"]
    assert {k: v for k, v in pipe.to_dict().items() if k not in ("SESSION_ID", "DEFAULT_PLUGIN")} == sent


def test_heartbeat_config_streams_parse(vectors: Any) -> None:
    for case in vectors("heartbeats.json")["cases"]:
        for stream in case["node_status_before_compression"].get("CONFIG_STREAMS") or []:
            pipe = PipelineConfig.from_dict(stream)
            assert pipe.name == stream["NAME"]
            assert {k: v for k, v in pipe.to_dict().items() if k in stream} == stream


def test_from_dict_tolerates_missing_plugins_and_merges_repeated_signatures() -> None:
    assert PipelineConfig.from_dict({"NAME": "p", "TYPE": "Void"}).instances == ()
    assert PipelineConfig.from_dict({"NAME": "p", "TYPE": "Void", "PLUGINS": None}).instances == ()
    pipe = PipelineConfig.from_dict({"NAME": "p", "TYPE": "Void", "PLUGINS": [
        {"SIGNATURE": "S", "INSTANCES": [{"INSTANCE_ID": "a"}]},
        {"SIGNATURE": "T", "INSTANCES": []},
        {"SIGNATURE": "S", "INSTANCES": [{"INSTANCE_ID": "b"}]},
    ]})
    assert pipe.to_dict()["PLUGINS"] == [{"SIGNATURE": "S", "INSTANCES": [{"INSTANCE_ID": "a"}, {"INSTANCE_ID": "b"}]}]


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"TYPE": "Void"},
        {"NAME": "p"},
        {"NAME": 3, "TYPE": "Void"},
        {"NAME": "p", "TYPE": "Void", "SESSION_ID": 1},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": "CUSTOM_EXEC_01"},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": ["CUSTOM_EXEC_01"]},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": [{"SIGNATURE": "S", "INSTANCES": {"INSTANCE_ID": "a"}}]},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": [{"SIGNATURE": "S", "INSTANCES": ["a"]}]},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": [{"SIGNATURE": "S", "INSTANCES": [{"X": 1}]}]},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": [{"INSTANCES": [{"INSTANCE_ID": "a"}]}]},
        {"NAME": "p", "TYPE": "Void", "PLUGINS": [{"SIGNATURE": "S", "INSTANCES": [{"INSTANCE_ID": "a"},
                                                                                     {"INSTANCE_ID": "a"}]}]},
    ],
)
def test_from_dict_malformed_raises_decode_error(data: Any) -> None:
    with pytest.raises(DecodeError):
        PipelineConfig.from_dict(data)


# -- handles --------------------------------------------------------------------------------

def test_handle_format_and_parse() -> None:
    text = format_instance_handle("node-a", "cam", "OBJECT_TRACKING_01", "trk-1")
    assert text == "node-a##cam##OBJECT_TRACKING_01##trk-1"
    handle = parse_instance_handle(text)
    assert handle == InstanceHandle("node-a", "cam", "OBJECT_TRACKING_01", "trk-1")
    assert str(handle) == text


@pytest.mark.parametrize("text", ["", "a##b##c", "a##b##c##d##e", "a####c##d", "a##b##c##", 5, None, "a#b#c#d"])
def test_handle_parse_errors(text: Any) -> None:
    with pytest.raises(DecodeError):
        parse_instance_handle(text)


@pytest.mark.parametrize("parts", [("a##x", "b", "c", "d"), ("", "b", "c", "d"), ("a", "b", "c", None)])
def test_handle_format_errors(parts: Any) -> None:
    with pytest.raises(ConfigError):
        format_instance_handle(*parts)
