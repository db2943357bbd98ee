"""Commands: ACTION payloads, validation, envelopes per profile, confirmations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pye2.domain import commands as c
from pye2.domain.pipeline import InstanceConfig, PipelineConfig
from pye2.domain.profiles import AIXP, RATIO1
from pye2.errors import CommandError

PIPE = PipelineConfig.create("p1", "Void", instances=[InstanceConfig("CUSTOM_EXEC_01", "i1", {"CODE": "eNo="})])


# -- payloads -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("command", "action", "payload"),
    [
        (c.UpdatePipeline(PIPE), "UPDATE_CONFIG", PIPE.to_dict()),
        (c.UpdatePipeline({"NAME": "p", "TYPE": "Void", "X": [1]}), "UPDATE_CONFIG",
         {"NAME": "p", "TYPE": "Void", "X": [1]}),
        (c.ArchivePipeline("p1"), "ARCHIVE_CONFIG", "p1"),
        (c.DeletePipeline("p1"), "DELETE_CONFIG", "p1"),
        (c.UpdateInstance("p1", "SIG", "i1", {"process_delay": 2, "X": 1}), "UPDATE_PIPELINE_INSTANCE",
         {"NAME": "p1", "SIGNATURE": "SIG", "INSTANCE_ID": "i1", "INSTANCE_CONFIG": {"PROCESS_DELAY": 2, "X": 1}}),
        (c.BatchUpdateInstances([c.UpdateInstance("p1", "S", "a", {"x": 1}),
                                 {"NAME": "p2", "SIGNATURE": "T", "INSTANCE_ID": "b", "INSTANCE_CONFIG": {}}]),
         "BATCH_UPDATE_PIPELINE_INSTANCE",
         [{"NAME": "p1", "SIGNATURE": "S", "INSTANCE_ID": "a", "INSTANCE_CONFIG": {"X": 1}},
          {"NAME": "p2", "SIGNATURE": "T", "INSTANCE_ID": "b", "INSTANCE_CONFIG": {}}]),
        (c.PipelineCommand("p1", "RESTART_CAPTURE"), "PIPELINE_COMMAND",
         {"NAME": "p1", "PIPELINE_COMMAND": {"RESTART_CAPTURE": True}}),
        (c.PipelineCommand("p1", "GO", extra={"SPEED": 2}, params={"A": 1}), "PIPELINE_COMMAND",
         {"NAME": "p1", "PIPELINE_COMMAND": {"GO": True, "SPEED": 2, "COMMAND_PARAMS": {"A": 1}}}),
        (c.PipelineCommand("p1", {"OPEN": 1}), "PIPELINE_COMMAND", {"NAME": "p1", "PIPELINE_COMMAND": {"OPEN": 1}}),
        (c.InstanceCommand("p1", "SIG", "i1", "START"), "UPDATE_PIPELINE_INSTANCE",
         {"NAME": "p1", "SIGNATURE": "SIG", "INSTANCE_ID": "i1",
          "INSTANCE_CONFIG": {"INSTANCE_COMMAND": {"COMMAND_PARAMS": {"START": True}}}}),
        (c.InstanceCommand("p1", "SIG", "i1", {"CODE": "x"}, extra={"Y": 1}, params={"P": 2}),
         "UPDATE_PIPELINE_INSTANCE",
         {"NAME": "p1", "SIGNATURE": "SIG", "INSTANCE_ID": "i1",
          "INSTANCE_CONFIG": {"INSTANCE_COMMAND": {"CODE": "x", "Y": 1, "COMMAND_PARAMS": {"P": 2}}}}),
        (c.StopNode(), "STOP", None),
        (c.RestartNode(), "RESTART", None),
        (c.FullHeartbeat(), "FULL_HEARTBEAT", None),
        (c.TimersOnlyHeartbeat(), "TIMERS_ONLY_HEARTBEAT", None),
        (c.SimpleHeartbeat(), "SIMPLE_HEARTBEAT", None),
        (c.ReloadConfigFromDisk(), "RELOAD_CONFIG_FROM_DISK", None),
        (c.ArchiveAllPipelines(), "ARCHIVE_CONFIG_ALL", None),
        (c.DeleteAllPipelines(), "DELETE_CONFIG_ALL", None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_action_and_payload(command: c.Command, action: str, payload: Any) -> None:
    assert command.action == action
    assert action in c.ACTIONS
    assert command.payload() == payload
    assert c.command_body(command) == {"ACTION": action, "PAYLOAD": payload}
    json.dumps(command.payload())  # the payload is plain JSON


def test_every_action_has_a_builder() -> None:
    builders = {cls.action for cls in vars(c).values()
                if isinstance(cls, type) and issubclass(cls, c.Command) and isinstance(cls.__dict__.get("action"), str)}
    assert c.ACTIONS <= builders


def test_payloads_are_copies() -> None:
    source = {"NAME": "p", "TYPE": "Void", "PLUGINS": []}
    command = c.UpdatePipeline(source)
    source["TYPE"] = "changed"
    first = command.payload()
    first["PLUGINS"].append("junk")
    assert command.payload() == {"NAME": "p", "TYPE": "Void", "PLUGINS": []}
    cmd = c.InstanceCommand("p", "S", "i", "GO")
    cmd.payload()["INSTANCE_CONFIG"]["INSTANCE_COMMAND"]["COMMAND_PARAMS"]["EVIL"] = True
    assert cmd.payload()["INSTANCE_CONFIG"]["INSTANCE_COMMAND"] == {"COMMAND_PARAMS": {"GO": True}}


# -- validation -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "build",
    [
        lambda: c.ArchivePipeline(""),
        lambda: c.ArchivePipeline(5),
        lambda: c.DeletePipeline(None),
        lambda: c.UpdatePipeline({"TYPE": "Void"}),
        lambda: c.UpdatePipeline({"NAME": "p"}),
        lambda: c.UpdatePipeline({"NAME": "p", "TYPE": "Void", "PLUGINS": {}}),
        lambda: c.UpdatePipeline(["NAME"]),
        lambda: c.UpdateInstance("p", "S", "", {}),
        lambda: c.UpdateInstance("p", "S", "i", {"a": 1, "A": 2}),
        lambda: c.UpdateInstance("p", "S", "i", [("A", 1)]),
        lambda: c.BatchUpdateInstances([]),
        lambda: c.BatchUpdateInstances({"NAME": "p"}),
        lambda: c.BatchUpdateInstances([{"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i"}]),
        lambda: c.BatchUpdateInstances([{"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i", "INSTANCE_CONFIG": []}]),
        lambda: c.BatchUpdateInstances(["p"]),
        lambda: c.PipelineCommand("", "GO"),
        lambda: c.PipelineCommand("p", ""),
        lambda: c.PipelineCommand("p", 5),
        lambda: c.InstanceCommand("p", "S", "i", "GO", params=["x"]),
        lambda: c.InstanceCommand("p", "S", "i", {1: "x"}),
    ],
)
def test_bad_commands_raise_command_error(build: Any) -> None:
    with pytest.raises(CommandError):
        build()


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("UPDATE_CONFIG", {"NAME": "p", "TYPE": "Void"}),
        ("ARCHIVE_CONFIG", "p"),
        ("DELETE_CONFIG", "p"),
        ("UPDATE_PIPELINE_INSTANCE", {"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i", "INSTANCE_CONFIG": {"a": 1}}),
        ("BATCH_UPDATE_PIPELINE_INSTANCE",
         [{"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i", "INSTANCE_CONFIG": {}}]),
        ("PIPELINE_COMMAND", {"NAME": "p", "PIPELINE_COMMAND": "anything"}),
        ("STOP", None),
        ("FULL_HEARTBEAT", None),
        ("RESET_WHITELIST_COMMANDS_TO_TEMPLATE", None),
        ("SOMETHING_NEW", {"free": "form"}),
    ],
)
def test_raw_actions_pass_verbatim(action: str, payload: Any) -> None:
    command = c.command_from_action(action, payload)
    assert c.command_body(command) == {"ACTION": action, "PAYLOAD": payload}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("", None),
        (None, None),
        ("UPDATE_CONFIG", {"NAME": "p"}),
        ("ARCHIVE_CONFIG", {"NAME": "p"}),
        ("ARCHIVE_CONFIG", ""),
        ("DELETE_CONFIG", None),
        ("UPDATE_PIPELINE_INSTANCE", {"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i"}),
        ("UPDATE_PIPELINE_INSTANCE", {"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": 3, "INSTANCE_CONFIG": {}}),
        ("BATCH_UPDATE_PIPELINE_INSTANCE", []),
        ("BATCH_UPDATE_PIPELINE_INSTANCE", [{"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i",
                                             "INSTANCE_CONFIG": "x"}]),
        ("PIPELINE_COMMAND", {"NAME": "p"}),
        ("STOP", {"now": True}),
    ],
)
def test_raw_actions_with_bad_payloads(action: Any, payload: Any) -> None:
    with pytest.raises(CommandError):
        c.command_from_action(action, payload)


# -- envelopes --------------------------------------------------------------------------

NOW = 1706628997.123456  # 2024-01-30 15:36:37.123456 UTC


def test_aixp_envelope() -> None:
    env = c.build_envelope(c.ArchivePipeline("p1"), profile=AIXP, target_id="node-a", target_address="0xai_x",
                           initiator_id="pySDK", session_id="s", now=NOW)
    assert env == {"EE_ID": "node-a", "SB_ID": "node-a", "ACTION": "ARCHIVE_CONFIG", "PAYLOAD": "p1",
                   "INITIATOR_ID": "pySDK"}
    assert c.command_address(AIXP, target_id="node-a", target_address="0xai_x") == "lummetry/node-a/config"


def test_ratio1_envelope() -> None:
    env = c.build_envelope(c.UpdatePipeline(PIPE), profile=RATIO1, target_id="node-a",
                           target_address="0xai_AoNFrjOo0rd75GfR-8LFkKwHikzaab6SyeUryJyOoT0N",
                           initiator_id="pySDK", session_id="sess", now=NOW)
    assert env == {
        "EE_ID": "0xai_AoNFrjOo0rd75GfR-8LFkKwHikzaab6SyeUryJyOoT0N",
        "EE_DEST": "0xai_AoNFrjOo0rd75GfR-8LFkKwHikzaab6SyeUryJyOoT0N",
        "ACTION": "UPDATE_CONFIG", "PAYLOAD": PIPE.to_dict(), "INITIATOR_ID": "pySDK",
        "SESSION_ID": "sess", "TIME": "2024-01-30 15:36:37.123456",
    }
    assert (c.command_address(RATIO1, target_id="node-a", target_address=env["EE_ID"])
            == f"naeural/{env['EE_ID']}/config")


def test_ratio1_falls_back_to_the_node_id_without_an_address() -> None:
    env = c.build_envelope(c.StopNode(), profile=RATIO1, target_id="node-a", target_address=None,
                           initiator_id="me", session_id=None, now=NOW)
    assert env["EE_ID"] == env["EE_DEST"] == "node-a"
    assert c.command_address(RATIO1, target_id="node-a", target_address=None) == "naeural/node-a/config"


def test_envelope_from_action_and_payload() -> None:
    env = c.build_envelope("STOP", None, profile=RATIO1, target_id="n", target_address="0xai_x",
                           initiator_id="me", session_id=None, now=0)
    assert env == {"EE_ID": "0xai_x", "EE_DEST": "0xai_x", "ACTION": "STOP", "PAYLOAD": None,
                   "INITIATOR_ID": "me", "SESSION_ID": None, "TIME": "1970-01-01 00:00:00.000000"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"profile": RATIO1, "target_address": None, "target_id": None},
        {"profile": RATIO1, "target_address": ""},
        {"profile": AIXP, "target_id": ""},
        {"profile": AIXP, "target_id": None},
        {"initiator_id": ""},
        {"initiator_id": 7},
        {"profile": RATIO1, "session_id": 5},
        {"profile": RATIO1, "now": float("nan")},
        {"profile": RATIO1, "now": float("inf")},
        {"profile": RATIO1, "now": 1e20},
        {"profile": RATIO1, "now": True},
        {"profile": RATIO1, "now": "2024-01-01"},
    ],
)
def test_envelope_errors(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"profile": AIXP, "target_id": "n", "target_address": "0xai_x", "initiator_id": "me",
                            "session_id": None, "now": NOW, **kwargs}
    with pytest.raises(CommandError):
        c.build_envelope(c.StopNode(), **args)


def test_envelope_refuses_command_plus_payload_and_non_commands() -> None:
    args: dict[str, Any] = {"profile": AIXP, "target_id": "n", "target_address": None, "initiator_id": "me",
                            "session_id": None, "now": NOW}
    with pytest.raises(CommandError):
        c.build_envelope(c.StopNode(), None, **args)
    with pytest.raises(CommandError):
        c.build_envelope(42, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["a/b", "a+b", "#"])
def test_topic_unsafe_targets_are_refused(target: str) -> None:
    with pytest.raises(CommandError):
        c.command_address(AIXP, target_id=target, target_address=None)


# -- confirmations -------------------------------------------------------------------------

def _notification(spec_samples: Path, name: str) -> dict[str, Any]:
    return json.loads((spec_samples / f"{name}.json").read_text("utf-8"))["message"]


def test_tags_match_what_nodes_send(spec_samples: Path) -> None:
    seen = 0
    for path in spec_samples.glob("notification_*.json"):
        message = json.loads(path.read_text("utf-8"))["message"]
        if message["NOTIFICATION_CODE"] is not None:
            assert c.NOTIFICATION_TAGS[message["NOTIFICATION_CODE"]] == message["NOTIFICATION_TAG"]
            seen += 1
    assert seen >= 6


def test_expected_codes_per_command() -> None:
    def pairs(command: c.Command) -> list[tuple[set[int], set[int]]]:
        return [(set(r.success), set(r.failure)) for r in command.expected_responses()]

    assert pairs(c.UpdatePipeline(PIPE)) == [({1}, {-1})]
    assert pairs(c.ArchivePipeline("p")) == [({4}, {-4})]
    assert pairs(c.UpdateInstance("p", "S", "i")) == [({1}, {-1}), ({100, 120}, {-100, -120})]
    assert pairs(c.InstanceCommand("p", "S", "i", "GO")) == [({101}, {-101})]
    assert pairs(c.StopNode()) == []
    batch = c.BatchUpdateInstances([c.UpdateInstance("p", "S", "a"), c.UpdateInstance("p", "S", "b")])
    assert len(batch.expected_responses()) == 3  # one pipeline response, two instance responses


@pytest.mark.parametrize(
    ("sample", "command", "verdict"),
    [
        ("notification_NORMAL_1_ConfigManager", c.UpdatePipeline({"NAME": "raw_pipe", "TYPE": "Void"}), True),
        ("notification_ABNORMAL_FUNCTIONING_-4_ConfigManager", c.ArchivePipeline("no_such_pipe"), False),
        ("notification_EXCEPTION_-1_ConfigManager", c.UpdateInstance("no_such_pipe", "custom_exec_01", "x"), False),
        ("notification_NORMAL_100_CustomExec01Plugin", c.UpdateInstance("raw_pipe", "CUSTOM_EXEC_01", "good"), True),
        ("notification_NORMAL_120_CustomExec01Plugin", c.UpdateInstance("raw_pipe", "CUSTOM_EXEC_01", "good"), True),
    ],
)
def test_real_notifications_settle_commands(spec_samples: Path, sample: str, command: c.Command,
                                            verdict: bool) -> None:
    message = _notification(spec_samples, sample)
    verdicts = [r.verdict(message) for r in command.expected_responses()]
    assert verdict in verdicts
    assert (not verdict) not in verdicts
    if not verdict:
        response = next(r for r in command.expected_responses() if r.verdict(message) is False)
        assert response.reason(message) in (message["NOTIFICATION"], message["INFO"])


def test_unrelated_notifications_settle_nothing(spec_samples: Path) -> None:
    good = _notification(spec_samples, "notification_NORMAL_100_CustomExec01Plugin")
    assert c.ExpectedResponse.instance_configured("raw_pipe", "CUSTOM_EXEC_01", "other").verdict(good) is None
    assert c.ExpectedResponse.pipeline_ok("other_pipe").verdict(good) is None
    assert c.ExpectedResponse.pipeline_archived("raw_pipe").verdict(good) is None
    shift = _notification(spec_samples, "notification_NORMAL_112_CustomExec01Plugin")
    assert c.ExpectedResponse.instance_configured("raw_pipe", "CUSTOM_EXEC_01", "good").verdict(shift) is None
    assert c.ExpectedResponse.pipeline_ok("raw_pipe").verdict({**good, "NOTIFICATION_CODE": True}) is None
    assert c.ExpectedResponse.pipeline_ok("raw_pipe").verdict("not a dict") is None  # type: ignore[arg-type]


def test_responses_match_without_a_payload_path() -> None:
    response = c.ExpectedResponse.instance_command("p", "sig", "i")
    note = {"STREAM_NAME": "p", "SIGNATURE": "SIG", "INSTANCE_ID": "i", "NOTIFICATION_CODE": -101, "INFO": "boom"}
    assert response.verdict(note) is False
    assert response.reason(note) == "boom"
