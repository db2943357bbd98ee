"""Every ACTION a simulated node executes, and every notification code it emits.

Commands are sent as a client sends them (``pye2.domain.commands`` +
``sign_message``, raw on the command topic); the node's state, heartbeats and
notifications are checked against node.md and the captured real messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _node_rig import CLIENT, Rig, pipeline

from pye2.domain.codecs.code import code_to_base64
from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.profiles import AIXP, RATIO1
from pye2.wire import decrypt_command, verify_message
from pye2_transport_memory.node.plugin_base import (
    DataSourceRegistry,
    InputItem,
    PluginRegistry,
    SimDataSource,
    SimPlugin,
)
from pye2_transport_memory.node.plugins.catalog import default_plugins

SIG_FIELDS = {"EE_ETH_SENDER", "EE_ETH_SIGN", "SIGN_CANON_V"}


class Boom(SimPlugin):
    SIGNATURE = "TEST_BOOM"
    DEFAULTS: ClassVar[dict[str, Any]] = {**SimPlugin.DEFAULTS, "ALLOW_EMPTY_INPUTS": True, "PROCESS_DELAY": 1}
    calls = 0

    def process(self, inputs: list[InputItem]) -> dict[str, Any]:
        Boom.calls += 1
        raise ZeroDivisionError("boom")


class Picky(SimPlugin):
    SIGNATURE = "TEST_PICKY"
    DEFAULTS: ClassVar[dict[str, Any]] = {**SimPlugin.DEFAULTS, "ALLOW_EMPTY_INPUTS": True, "PROCESS_DELAY": 1}

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.commands: list[Any] = []

    def on_command(self, command: Any) -> Any:
        if command == "FAIL":
            raise ValueError("refused")
        self.commands.append(command)
        return None

    def process(self, inputs: list[InputItem]) -> None:
        return None


class Painter(SimPlugin):
    SIGNATURE = "TEST_PAINTER"
    DEFAULTS: ClassVar[dict[str, Any]] = {**SimPlugin.DEFAULTS, "ALLOW_EMPTY_INPUTS": True, "PROCESS_DELAY": 1}

    def process(self, inputs: list[InputItem]) -> dict[str, Any]:
        import numpy as np

        return {"IMG": np.full((40, 60, 3), 200, dtype=np.uint8), "label": "grey"}


class Recording(SimDataSource):
    TYPES: ClassVar[tuple[str, ...]] = ("TEST_SOURCE",)
    DEFAULT_CAP_RESOLUTION: ClassVar[float] = 2.0
    commands: ClassVar[list[Any]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.n = 0

    def poll(self) -> list[InputItem]:
        self.n += 1
        return [InputItem("STRUCT_DATA", struct_data={"N": self.n}, metadata={"frame_current": self.n})]

    def on_pipeline_command(self, command: Any) -> None:
        Recording.commands.append(command)


def make_rig(**kw: Any) -> Rig:
    plugins = PluginRegistry([*default_plugins(), Boom, Picky, Painter])
    return Rig(plugins=plugins, sources=DataSourceRegistry([Recording]), **kw)


@pytest.fixture()
def rig() -> Rig:
    return make_rig()


def sample(spec_samples: Path, name: str) -> dict[str, Any]:
    data = json.loads((spec_samples / name).read_text("utf-8"))
    return data.get("message", data.get("merged", data))


def counter_values(rig: Rig, since: int, instance: str = "i1") -> list[int]:
    return [m["COUNTER"] for m in rig.events("PAYLOAD", since) if m.get("INSTANCE_ID") == instance and "COUNTER" in m]


# -- start-up and heartbeats ------------------------------------------------------------------

def test_start_publishes_comm_and_admin_notifications_then_a_full_heartbeat(rig: Rig) -> None:
    assert rig.codes() == [1000, 1000, 1000, 1000, 1]
    assert rig.notes()[-1][2].startswith("Started capture thread for pipeline admin_pipeline")
    beats = rig.events("HEARTBEAT")
    assert len(beats) == 1
    view = decode_heartbeat(beats[0])
    assert [c["NAME"] for c in view["CONFIG_STREAMS"]] == ["admin_pipeline"]
    assert view["CONFIG_STREAMS"][0]["TYPE"] == "NetworkListener"
    # UPDATE_MONITOR_01's PROCESS_DELAY above a day makes it skip, as on the real node: 5 admin instances
    assert len(view["ACTIVE_PLUGINS"]) == 5
    assert isinstance(view["DEVICE_LOG"], list)  # the first heartbeat is a full one
    assert view["DEVICE_STATUS"] == "ONLINE" and view["SECURED"] is True and view["EE_HB_TIME"] == 10


def test_heartbeats_every_interval_on_the_clock(rig: Rig) -> None:
    rig.clock.advance(35)
    assert len(rig.events("HEARTBEAT")) == 4  # t=0, 10, 20, 30


def test_heartbeat_has_the_real_field_set_and_envelope(rig: Rig, spec_samples: Path) -> None:
    real = sample(spec_samples, "heartbeat_v2_decoded.json")
    envelope = json.loads((spec_samples / "heartbeat_v2_envelope.json").read_text("utf-8"))["message"]
    rig.clock.advance(10)
    ours = rig.events("HEARTBEAT")[-1]
    assert set(envelope) - SIG_FIELDS <= set(ours)
    assert set(real) - SIG_FIELDS <= set(decode_heartbeat(ours))
    assert ours["HEARTBEAT_VERSION"] == "v2" and "ENCODED_DATA" in ours and "CONFIG_STREAMS" not in ours
    assert verify_message(ours, profile=AIXP) == rig.node.address


def test_v1_heartbeat_carries_the_status_in_clear() -> None:
    rig = make_rig(heartbeat_version="v1")
    beat = rig.events("HEARTBEAT")[0]
    assert beat["HEARTBEAT_VERSION"] == "v1" and "ENCODED_DATA" not in beat
    assert beat["CONFIG_STREAMS"][0]["NAME"] == "admin_pipeline" and beat["DEVICE_STATUS"] == "ONLINE"


def test_machine_figures_are_deterministic_from_the_seed() -> None:
    def figures(seed: int) -> tuple[Any, ...]:
        view = decode_heartbeat(make_rig(seed=seed).events("HEARTBEAT")[0])
        return view["CPU"], view["MACHINE_MEMORY"], view["CPU_NR_CORES"], view["TOTAL_DISK"], view["CPU_USED"]

    assert figures(7) == figures(7)
    assert make_rig(seed=7).node.address == make_rig(seed=7).node.address != make_rig(seed=8).node.address


# -- UPDATE_CONFIG -----------------------------------------------------------------------------

def test_update_config_new_pipeline_sequence_state_and_heartbeat(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1"), advance=0.5)
    assert rig.notes(mark) == [
        ("NORMAL", None, "Received VALIDATED command for new pipeline 'p1' from tester:test-session"),
        ("NORMAL", 1, "Successfully updated new configuration for pipeline 'p1' initiated by 'tester'"),
        ("NORMAL", 120, "Plugin configured while being stopped"),
        ("NORMAL", 112, "Starting new working hours shift NON-STOP"),
        ("NORMAL", 100, (" >>>>>>> Instance <stream='p1' sign='SIMPLE_COUNTER' inst='i1'> exec ok post config "
                         "(itr 1). <<<<<<<")),
    ]
    payloads = rig.events("PAYLOAD", mark)
    assert payloads[0]["STATUS"] == "Working hours shift STARTED" and payloads[0]["ID"] == 0
    assert payloads[1]["COUNTER"] == 1 and payloads[1]["ID"] == 1
    stored = rig.node.pipelines["p1"]
    assert stored["INITIATOR_ID"] == "tester" and stored["SESSION_ID"] == "test-session"
    assert stored["INITIATOR_ADDR"] == stored["MODIFIED_BY_ADDR"] == CLIENT.address(AIXP)
    assert stored["VALIDATED"] is True and "LAST_UPDATE_TIME" in stored and "EE_SENDER" not in stored
    beat = rig.node.send_heartbeat()
    view = decode_heartbeat(beat)
    streams = {c["NAME"]: c for c in view["CONFIG_STREAMS"]}
    # instances are reported with the keys the client sent, not with the plugin defaults
    assert streams["p1"]["PLUGINS"][0]["INSTANCES"] == [{"INSTANCE_ID": "i1", "PROCESS_DELAY": 1}]
    assert ("p1", "SIMPLE_COUNTER", "i1") in {(a["STREAM_ID"], a["SIGNATURE"], a["INSTANCE_ID"])
                                               for a in view["ACTIVE_PLUGINS"]}


def test_notification_and_payload_field_sets_match_the_real_node(spec_samples: Path) -> None:
    rig = make_rig(profile=RATIO1)
    code = code_to_base64("plugin.int_cache['n'] += 1\n_result = {'iter': plugin.int_cache['n']}")
    rig.send("UPDATE_CONFIG", pipeline("raw_pipe", {"INSTANCE_ID": "good", "CODE": code, "PROCESS_DELAY": 3},
                                       signature="CUSTOM_EXEC_01"), advance=0.5)
    by_code = {m["NOTIFICATION_CODE"]: m for m in rig.events("NOTIFICATION") if m["NOTIFICATION_CODE"]}
    for code_value, name in ((1, "notification_NORMAL_1_ConfigManager.json"),
                             (120, "notification_NORMAL_120_CustomExec01Plugin.json"),
                             (112, "notification_NORMAL_112_CustomExec01Plugin.json"),
                             (100, "notification_NORMAL_100_CustomExec01Plugin.json")):
        assert set(by_code[code_value]) - SIG_FIELDS == set(sample(spec_samples, name)) - SIG_FIELDS, name
    assert by_code[100]["MODULE"] == "CustomExec01Plugin" and by_code[1]["MODULE"] == "ConfigManager"
    status, result = rig.events("PAYLOAD")[:2]
    assert set(status) - SIG_FIELDS == set(sample(spec_samples, "payload_status_good.json")) - SIG_FIELDS
    assert set(result) - SIG_FIELDS == set(sample(spec_samples, "payload_result_good.json")) - SIG_FIELDS
    assert result["EXEC_RESULT"] == {"iter": 1} and result["STREAM"] == result["STREAM_NAME"] == "raw_pipe"
    assert result["EE_PAYLOAD_PATH"] == ["node-1", "raw_pipe", "CUSTOM_EXEC_01", "good"]
    assert result["INITIATOR_ADDR"] == CLIENT.address(RATIO1)
    assert verify_message(result, profile=RATIO1) == rig.node.address


def test_update_config_existing_pipeline_reconfigures_adds_and_removes(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1", {"INSTANCE_ID": "i1", "PROCESS_DELAY": 1},
                                       {"INSTANCE_ID": "i2", "PROCESS_DELAY": 1}))
    rig.clock.advance(3)
    before = counter_values(rig, 0)[-1]
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1", {"INSTANCE_ID": "i1", "PROCESS_DELAY": 2},
                                       {"INSTANCE_ID": "i3", "PROCESS_DELAY": 1}), advance=3)
    notes = rig.notes(mark)
    assert notes[0] == ("NORMAL", None, ("Received VALIDATED command to update for existing pipeline 'p1' from "
                                         "tester:test-session"))
    assert notes[1] == ("NORMAL", 1, ("Successfully updated existing configuration for pipeline 'p1' initiated by "
                                      "'tester'"))
    assert [c for c in rig.codes(mark) if c in (100, 120, 112)].count(100) == 2  # i1 reconfigured, i3 new
    assert {(k[1], k[2]) for k in rig.node.instances if k[0] == "p1"} == {("SIMPLE_COUNTER", "i1"),
                                                                         ("SIMPLE_COUNTER", "i3")}
    assert counter_values(rig, mark)[0] == before + 1  # reconfigured in place: the counter went on
    later = rig.mark()
    rig.clock.advance(3)
    assert {m.get("INSTANCE_ID") for m in rig.events("PAYLOAD", later)} == {"i1", "i3"}  # i2 was stopped


def test_update_config_merge_keeps_unsent_keys_and_dotted_keys_reach_nested_ones(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1", STREAM_CONFIG_METADATA={"A": 1, "B": 2}, URL="u1"))
    rig.send("UPDATE_CONFIG", {"NAME": "p1", "TYPE": "Void", "STREAM_CONFIG_METADATA.B": 3})
    stored = rig.node.pipelines["p1"]
    assert stored["URL"] == "u1" and stored["STREAM_CONFIG_METADATA"] == {"A": 1, "B": 3}
    assert stored["PLUGINS"][0]["INSTANCES"][0]["INSTANCE_ID"] == "i1"


def test_duplicate_update_config_is_flagged_but_applied(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1"))
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1"))
    notes = rig.notes(mark)
    assert ("ABNORMAL FUNCTIONING", -1) in [(t, c) for t, c, _ in notes]
    assert any(text.startswith("Received duplicate") for _, _, text in notes)
    assert [c for c in rig.codes(mark) if c is not None][-1] == 1


def test_update_config_with_an_inconsistent_initiator_is_refused(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1", INITIATOR_ID="somebody-else"))
    assert rig.codes(mark) == [-1]
    assert rig.notes(mark)[0][2].startswith("Received initiator inconsistent")
    assert "p1" not in rig.node.pipelines


def test_admin_pipeline_is_protected(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("admin_pipeline"))
    rig.send("ARCHIVE_CONFIG", "admin_pipeline")
    rig.send("DELETE_CONFIG", "admin_pipeline")
    rig.send("ARCHIVE_CONFIG_ALL")
    assert rig.codes(mark) == [-3, -4, -4]
    assert rig.node.pipelines["admin_pipeline"]["TYPE"] == "NetworkListener"


def test_unknown_data_source_type_is_reported(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1", type_="NoSuchSource"))
    assert -3 in rig.codes(mark) and "p1" in rig.node.pipelines


def test_unknown_signature_is_an_exception_and_the_instance_is_skipped(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1", signature="NO_SUCH_PLUGIN"))
    assert ("EXCEPTION", None, "Error loading business plugin <NO_SUCH_PLUGIN:i1> - No code/script defined.") \
        in rig.notes(mark)
    assert not [k for k in rig.node.instances if k[0] == "p1"]


# -- ARCHIVE / DELETE ---------------------------------------------------------------------------

def test_archive_config(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1"))
    mark = rig.mark()
    rig.send("ARCHIVE_CONFIG", "p1", advance=5)
    assert rig.notes(mark) == [
        ("NORMAL", None, "Successfully deleted pipeline p1"),
        ("NORMAL", 4, "Successfully archived (and deleted) pipeline 'p1' (currently 1 active pipelines)"),
    ]
    assert "p1" not in rig.node.pipelines and not rig.events("PAYLOAD", mark)


def test_archive_unknown_pipeline_matches_the_real_text(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("raw_pipe"))
    mark = rig.mark()
    rig.send("ARCHIVE_CONFIG", "no_such_pipe")
    [message] = rig.events("NOTIFICATION", mark)
    assert message["NOTIFICATION"] == ("Attempted to archive pipeline 'no_such_pipe' that does not exist. "
                                       "Current pipelines: ['admin_pipeline', 'raw_pipe']")
    assert (message["NOTIFICATION_TYPE"], message["NOTIFICATION_CODE"], message["NOTIFICATION_TAG"]) == \
        ("ABNORMAL FUNCTIONING", -4, "PIPELINE_ARCHIVE_FAILED")
    assert message["EE_PAYLOAD_PATH"] == ["node-1", "no_such_pipe", None, None]
    assert message["INITIATOR_ID"] == "tester" and message["SESSION_ID"] == "test-session"


def test_delete_config_and_the_all_variants(rig: Rig) -> None:
    for name in ("a", "b", "c"):
        rig.send("UPDATE_CONFIG", pipeline(name))
    mark = rig.mark()
    rig.send("DELETE_CONFIG", "a")
    assert rig.notes(mark)[-1] == ("NORMAL", 4, "Successfully deleted pipeline 'a' (currently 3 active pipelines)")
    rig.send("DELETE_CONFIG_ALL")
    assert list(rig.node.pipelines) == ["admin_pipeline"]
    rig.send("UPDATE_CONFIG", pipeline("d"))
    rig.send("ARCHIVE_CONFIG_ALL")
    assert list(rig.node.pipelines) == ["admin_pipeline"] and not rig.node.disk


# -- instance updates ---------------------------------------------------------------------------

def test_update_pipeline_instance_reconfigures_in_place(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1"), advance=3)
    plugin_before = rig.node.instances[("p1", "SIMPLE_COUNTER", "i1")]
    mark = rig.mark()
    rig.send("UPDATE_PIPELINE_INSTANCE", {"NAME": "p1", "SIGNATURE": "SIMPLE_COUNTER", "INSTANCE_ID": "i1",
                                          "INSTANCE_CONFIG": {"PROCESS_DELAY": 5, "X": 7}}, advance=1)
    assert rig.notes(mark)[0] == ("NORMAL", 1, "Successfully updated with VALIDATED command i1:p1:SIMPLE_COUNTER")
    assert 100 in rig.codes(mark)
    assert rig.node.instances[("p1", "SIMPLE_COUNTER", "i1")] is plugin_before
    assert plugin_before.config["PROCESS_DELAY"] == 5 and plugin_before.config["X"] == 7
    inst = rig.node.pipelines["p1"]["PLUGINS"][0]["INSTANCES"][0]
    assert inst == {"INSTANCE_ID": "i1", "PROCESS_DELAY": 5, "X": 7}
    values = counter_values(rig, mark)
    assert values == sorted(values) and values[0] > 1  # the counter survived


def test_update_pipeline_instance_on_a_missing_pipeline_matches_the_real_node(rig: Rig, spec_samples: Path) -> None:
    real = sample(spec_samples, "notification_EXCEPTION_-1_ConfigManager.json")
    mark = rig.mark()
    rig.send("UPDATE_PIPELINE_INSTANCE", {"NAME": "no_such_pipe", "SIGNATURE": "CUSTOM_EXEC_01",
                                          "INSTANCE_ID": "x", "INSTANCE_CONFIG": {"A": 1}})
    [message] = rig.events("NOTIFICATION", mark)
    assert message["NOTIFICATION"] == real["NOTIFICATION"]
    assert message["INFO"].startswith(real["INFO"].split("Full received command")[0])
    assert message["EE_PAYLOAD_PATH"] == ["node-1", "no_such_pipe", "CUSTOM_EXEC_01", "x"]
    assert set(message) - SIG_FIELDS == set(real) - SIG_FIELDS


def test_update_pipeline_instance_on_a_missing_instance_fails(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1"))
    mark = rig.mark()
    rig.send("UPDATE_PIPELINE_INSTANCE", {"NAME": "p1", "SIGNATURE": "SIMPLE_COUNTER", "INSTANCE_ID": "nope",
                                          "INSTANCE_CONFIG": {"A": 1}})
    assert rig.codes(mark) == [-1] and rig.notes(mark)[0][2].startswith("Cannot find instance")


def test_admin_instances_can_be_updated(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_PIPELINE_INSTANCE", {"NAME": "admin_pipeline", "SIGNATURE": "NET_MON_01",
                                          "INSTANCE_ID": "NET_MON_01_INST", "INSTANCE_CONFIG": {"PROCESS_DELAY": 20}})
    assert rig.codes(mark)[0] == 1
    admin = rig.node.pipelines["admin_pipeline"]
    netmon = next(p for p in admin["PLUGINS"] if p["SIGNATURE"] == "NET_MON_01")["INSTANCES"][0]
    assert netmon["PROCESS_DELAY"] == 20


def test_instance_command_runs_on_command_and_answers_101_or_minus_101(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1", signature="TEST_PICKY"))
    mark = rig.mark()
    update = {"NAME": "p1", "SIGNATURE": "TEST_PICKY", "INSTANCE_ID": "i1", "INSTANCE_CONFIG": {"INSTANCE_COMMAND": "GO"}}
    rig.send("UPDATE_PIPELINE_INSTANCE", update)
    assert rig.codes(mark) == [1, 101]
    assert rig.node.instances[("p1", "TEST_PICKY", "i1")].commands == ["GO"]
    assert "INSTANCE_COMMAND" not in rig.node.pipelines["p1"]["PLUGINS"][0]["INSTANCES"][0]  # one-shot
    mark = rig.mark()
    rig.send("UPDATE_PIPELINE_INSTANCE", {**update, "INSTANCE_CONFIG": {"INSTANCE_COMMAND": "FAIL"}})
    assert rig.codes(mark) == [1, -101]
    assert rig.events("NOTIFICATION", mark)[-1]["NOTIFICATION_TYPE"] == "EXCEPTION"


def test_batch_update_pipeline_instance(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1", {"INSTANCE_ID": "i1"}, {"INSTANCE_ID": "i2"}))
    mark = rig.mark()
    items = [{"NAME": "p1", "SIGNATURE": "SIMPLE_COUNTER", "INSTANCE_ID": iid, "INSTANCE_CONFIG": {"X": n}}
             for n, iid in enumerate(("i1", "i2"))]
    rig.send("BATCH_UPDATE_PIPELINE_INSTANCE", items)
    notes = rig.notes(mark)
    assert notes[:3] == [
        ("NORMAL", 1, "Successfully updated with NON-VALIDATED command i1:p1:SIMPLE_COUNTER"),
        ("NORMAL", 1, "Successfully updated with NON-VALIDATED command i2:p1:SIMPLE_COUNTER"),
        ("NORMAL", None, "Successfully updated 2 pipelines with `batch_update_pipeline_instance`"),
    ]
    assert [i["X"] for i in rig.node.pipelines["p1"]["PLUGINS"][0]["INSTANCES"]] == [0, 1]


# -- other actions ----------------------------------------------------------------------------------

def test_pipeline_command_reaches_the_data_source(rig: Rig) -> None:
    Recording.commands.clear()
    rig.send("UPDATE_CONFIG", pipeline("p1", type_="TEST_SOURCE"))
    mark = rig.mark()
    rig.send("PIPELINE_COMMAND", {"NAME": "p1", "PIPELINE_COMMAND": {"RESTART": True}})
    assert rig.notes(mark) == [("NORMAL", None, "Prepared pipeline command for pipeline 'p1'")]
    assert Recording.commands == [{"RESTART": True}]
    mark = rig.mark()
    rig.send("PIPELINE_COMMAND", {"NAME": "nope", "PIPELINE_COMMAND": {}})
    assert rig.notes(mark)[0][0] == "EXCEPTION"


def test_data_source_feeds_instances_with_capture_metadata(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1", {"INSTANCE_ID": "e1"}, signature="SIMPLE_ECHO", type_="TEST_SOURCE"),
             advance=3)
    echoes = [m for m in rig.events("PAYLOAD") if "ECHO" in m]
    assert [m["ECHO"]["N"] for m in echoes] == list(range(1, len(echoes) + 1)) and len(echoes) >= 4
    assert echoes[0]["_C_FRAME_CURRENT"] == 1


@pytest.mark.parametrize(("action", "kind"), [("FULL_HEARTBEAT", "full"), ("TIMERS_ONLY_HEARTBEAT", "timers"),
                                              ("SIMPLE_HEARTBEAT", "simple")])
def test_heartbeat_commands_send_one_at_once(rig: Rig, action: str, kind: str) -> None:
    rig.node.log("something happened")
    mark = rig.mark()
    rig.send(action, advance=0.2)
    [beat] = rig.events("HEARTBEAT", mark)
    view = decode_heartbeat(beat)
    assert view["INITIATOR_ID"] == "tester"
    assert isinstance(view["DEVICE_LOG"], list) == (kind == "full")
    assert (view["TIMERS"] != "Timers not available in summary") == (kind in ("full", "timers"))


def test_reload_config_from_disk_restarts_pipelines(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1"), advance=4)
    old = rig.node.instances[("p1", "SIMPLE_COUNTER", "i1")]
    mark = rig.mark()
    rig.send("RELOAD_CONFIG_FROM_DISK", advance=0.5)
    assert ("NORMAL", None, "Reloaded 1 pipeline configurations from disk") in rig.notes(mark)
    assert 120 in rig.codes(mark)
    assert rig.node.instances[("p1", "SIMPLE_COUNTER", "i1")] is not old
    assert counter_values(rig, mark) == [1]


def test_stop_sends_a_notification_and_a_last_heartbeat_then_goes_silent(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("STOP", advance=0.5)
    assert rig.notes(mark) == [("NORMAL", None, "  Running 'STOP' command in main loop received from 'tester'")]
    [beat] = rig.events("HEARTBEAT", mark)
    assert decode_heartbeat(beat)["DEVICE_STATUS"] == "STOP"
    assert not rig.node.is_running
    mark = rig.mark()
    rig.clock.advance(60)
    assert rig.seen[mark:] == []


def test_restart_comes_back_with_its_pipelines(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1"))
    mark = rig.mark()
    rig.send("RESTART", advance=0.5)
    assert decode_heartbeat(rig.events("HEARTBEAT", mark)[0])["DEVICE_STATUS"] == "RESTART"
    assert not rig.node.is_running
    rig.clock.advance(6)
    assert rig.node.is_running
    beat = rig.events("HEARTBEAT", mark)[-1]
    assert decode_heartbeat(beat)["DEVICE_STATUS"] == "ONLINE"
    assert {c["NAME"] for c in decode_heartbeat(beat)["CONFIG_STREAMS"]} == {"admin_pipeline", "p1"}
    assert counter_values(rig, mark)[:1] == [1]  # a new process: fresh instances


def test_unknown_action_publishes_nothing(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("DO_SOMETHING", {}, advance=0.5)
    assert rig.events("NOTIFICATION", mark) == [] and rig.node.counters["unknown_action"] == 1


# -- plugins ---------------------------------------------------------------------------------------

def test_plugin_exception_sends_exception_and_backs_off_ten_seconds(rig: Rig) -> None:
    Boom.calls = 0
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1", signature="TEST_BOOM"), advance=9)
    assert Boom.calls == 1
    errors = [m for m in rig.events("NOTIFICATION", mark) if m["NOTIFICATION_TYPE"] == "EXCEPTION"]
    assert errors[0]["NOTIFICATION"] == "Exception in <stream='p1' sign='TEST_BOOM' inst='i1'>"
    assert "ZeroDivisionError" in errors[0]["INFO"] and errors[0]["MODULE"] == "BoomPlugin"
    rig.clock.advance(2)
    assert Boom.calls == 2 and rig.node.is_running


def test_numpy_images_are_encoded_in_payloads(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p1", signature="TEST_PAINTER"), advance=1)
    [painted] = [m for m in rig.events("PAYLOAD") if m.get("LABEL") == "grey"]
    assert isinstance(painted["IMG"], str) and painted["IMG_IN_PAYLOAD"] is True
    assert (painted["IMG_HEIGHT"], painted["IMG_WIDTH"]) == (40, 60)
    assert verify_message(painted, profile=AIXP) == rig.node.address


def test_listener_filters() -> None:
    from pye2_transport_memory.node.sources import message_matches, path_matches

    path = ["node-1", "pipe", "CUSTOM_EXEC_01", "inst"]
    assert path_matches(None, path) and path_matches([None, None, None, None], path)
    assert path_matches([None, "PIPE", ["SIMPLE_ECHO", "custom_exec_01"], None], path)
    assert not path_matches([None, "other", None, None], path)
    assert not path_matches([None, None, None, "x"], None)
    message = {"A": 1, "B": {"C": 2, "D": 3}}
    assert message_matches({"B": {"C": 2}}, message) and message_matches(None, message)
    assert not message_matches({"B": {"C": 3}}, message) and not message_matches({"Z": None, "A": 2}, message)


def test_listener_filter_by_destination_and_message_filter(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("listen", {"INSTANCE_ID": "e"}, signature="SIMPLE_ECHO",
                                       type_="IotQueueListener", FILTER_BY_DESTINATION=True))
    rig.send("UPDATE_CONFIG", pipeline("picky", {"INSTANCE_ID": "e"}, signature="SIMPLE_ECHO",
                                       type_="IoTQueueListener", MESSAGE_FILTER={"KIND": "wanted"}))
    for body in ({"KIND": "wanted"}, {"KIND": "other"}, {"KIND": "wanted", "EE_DEST": rig.node.address}):
        rig.client.publish("lummetry/payloads", json.dumps(body).encode())  # unsigned IoT data is accepted
    rig.clock.advance(1)
    echoes = [(m["STREAM"], m["ECHO"]) for m in rig.events("PAYLOAD") if "KIND" in m.get("ECHO", {})]
    assert sorted(map(str, echoes)) == sorted(map(str, [
        ("listen", {"KIND": "wanted", "EE_DEST": rig.node.address}),
        ("picky", {"KIND": "wanted"}), ("picky", {"KIND": "wanted", "EE_DEST": rig.node.address})]))


def test_listener_drops_payloads_whose_signature_does_not_verify(rig: Rig) -> None:
    from pye2.wire import sign_message

    rig.send("UPDATE_CONFIG", pipeline("listen", {"INSTANCE_ID": "e"}, signature="SIMPLE_ECHO",
                                       type_="IotQueueListener"))
    signed = sign_message({"KIND": "real"}, CLIENT, profile=AIXP)
    forged = {**signed, "KIND": "fake"}
    for body in (signed, forged):
        rig.client.publish("lummetry/payloads", json.dumps(body).encode())
    rig.clock.advance(1)
    # (the listener also hears its own node's payloads, echoes included, as a real one does)
    assert [m["ECHO"]["KIND"] for m in rig.events("PAYLOAD") if "KIND" in m.get("ECHO", {})] == ["real"]


def test_failing_custom_code_matches_the_real_node(spec_samples: Path) -> None:
    rig = make_rig(profile=RATIO1)
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("raw_pipe", {"INSTANCE_ID": "boom", "CODE": code_to_base64("_result = 1 / 0"),
                                                    "PROCESS_DELAY": 3}, signature="CUSTOM_EXEC_01"), advance=1)
    errors = [m for m in rig.events("PAYLOAD", mark) if m.get("EXEC_ERRORS")]
    assert len(errors) == 1 and "ZeroDivisionError" in errors[0]["EXEC_ERRORS"]
    assert set(errors[0]) - SIG_FIELDS == set(sample(spec_samples, "payload_error_boom.json")) - SIG_FIELDS
    [exc] = [m for m in rig.events("NOTIFICATION", mark) if m["NOTIFICATION_TYPE"] == "EXCEPTION"]
    real = sample(spec_samples, "notification_EXCEPTION_None_CustomExec01Plugin.json")
    assert exc["NOTIFICATION"] == "Exception in <stream='raw_pipe' sign='CUSTOM_EXEC_01' inst='boom'>"
    assert set(exc) - SIG_FIELDS == set(real) - SIG_FIELDS
    rig.clock.advance(8)  # backing off: PROCESS_DELAY is 3 but the next run is 10 s after the error
    assert len([m for m in rig.events("PAYLOAD", mark) if m.get("EXEC_ERRORS")]) == 1
    rig.clock.advance(2)
    assert len([m for m in rig.events("PAYLOAD", mark) if m.get("EXEC_ERRORS")]) == 2


def test_custom_code_commands_to_itself_bypass_the_broker(rig: Rig) -> None:
    code = code_to_base64(
        "if plugin.int_cache['started'] == 0:\n"
        "    plugin.int_cache['started'] = 1\n"
        "    inner = plugin.cmdapi_start_simple_custom_pipeline(base64code=plugin.cfg_inner, name='child')\n"
        "    _result = inner\n")
    inner = code_to_base64("_result = 42")
    rig.send("UPDATE_CONFIG", pipeline("parent", {"INSTANCE_ID": "c", "CODE": code, "INNER": inner,
                                                  "PROCESS_DELAY": 1}, signature="CUSTOM_EXEC_01"), advance=2)
    assert "child" in rig.node.pipelines
    child = rig.node.pipelines["child"]
    assert child["INITIATOR_ID"] == "node-1" and child["INITIATOR_ADDR"] == rig.node.address
    assert not [t for t, _ in rig.seen if t.endswith("/config") and t != rig.command_topic]
    assert any(m.get("EXEC_RESULT") == 42 for m in rig.events("PAYLOAD"))


def test_encrypted_payloads_go_to_the_initiator_only(rig: Rig) -> None:
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("p1", {"INSTANCE_ID": "i1", "ENCRYPT_PAYLOAD": True}), advance=1.5)
    topics = [t for t, m in rig.seen[mark:] if m.get("EE_EVENT_TYPE") == "PAYLOAD"]
    assert topics and set(topics) == {f"lummetry/{CLIENT.address(AIXP)}/payloads"}
    message = [m for _, m in rig.seen[mark:] if m.get("EE_EVENT_TYPE") == "PAYLOAD"][-1]
    assert message["EE_IS_ENCRYPTED"] is True and "COUNTER" not in message
    assert verify_message(message, profile=AIXP) == rig.node.address
    clear = decrypt_command(message, receiver=CLIENT)
    assert clear["COUNTER"] >= 1 and clear["STREAM"] == "p1"


def test_encrypted_command_is_decrypted_and_executed() -> None:
    rig = make_rig(profile=RATIO1)
    message = rig.send("UPDATE_CONFIG", pipeline("secret"), encrypt=True)
    assert "ACTION" not in message and message["EE_IS_ENCRYPTED"] is True
    assert "secret" in rig.node.pipelines


def test_ratio1_node_accepts_commands_by_alias_and_by_address() -> None:
    rig = make_rig(profile=RATIO1)
    rig.send("UPDATE_CONFIG", pipeline("by_address"))
    message = rig.envelope("UPDATE_CONFIG", pipeline("by_alias"))
    message["EE_ID"] = rig.node.alias
    from pye2.wire import sign_message

    rig.publish(sign_message(message, CLIENT, profile=RATIO1), topic=RATIO1.config(rig.node.alias))
    rig.clock.advance(0.5)
    assert {"by_address", "by_alias"} <= set(rig.node.pipelines)
