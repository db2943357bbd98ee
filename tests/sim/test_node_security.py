"""Commands a simulated node must refuse: its state never changes, it reports as a real node, it keeps running."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _node_rig import CLIENT, STRANGER, Rig, key, pipeline
from hypothesis import given, settings
from hypothesis import strategies as st

from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.domain.profiles import AIXP, RATIO1, WireProfile
from pye2.wire import sign_message, verify_message
from pye2_transport_memory.node._allow import AllowList


def snapshot(rig: Rig) -> tuple[Any, ...]:
    return copy.deepcopy(rig.node.pipelines), sorted(rig.node.instances), rig.node.is_running


def assert_still_running(rig: Rig) -> None:
    mark = rig.mark()
    rig.clock.advance(10)
    assert rig.node.is_running and len(rig.events("HEARTBEAT", mark)) == 1


@pytest.fixture(params=[AIXP, RATIO1], ids=["aixp", "ratio1"])
def rig(request: pytest.FixtureRequest) -> Rig:
    r = Rig(profile=request.param)
    r.send("UPDATE_CONFIG", pipeline("keep"))
    return r


def bad_signature_notice(rig: Rig, since: int) -> dict[str, Any]:
    [message] = rig.events("NOTIFICATION", since)
    assert (message["NOTIFICATION_TYPE"], message["NOTIFICATION_CODE"], message["NOTIFICATION_TAG"]) == \
        ("ABNORMAL FUNCTIONING", -5000, "COMM_RECEIVED_BAD_COMMAND")
    assert message["MODULE"] == "CommunicationManager"
    assert message["NOTIFICATION"].startswith("INCOMING: Received invalid command from ")
    assert len(message["NOTIFICATION"]) <= 255
    return message


def test_unsigned_command_on_a_secured_node(rig: Rig, spec_samples: Path) -> None:
    real = json.loads((spec_samples / "notification_ABNORMAL_FUNCTIONING_-5000_CommunicationManager.json")
                      .read_text("utf-8"))["message"]
    before, mark = snapshot(rig), rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("unsigned_pipe"), signer=None)
    message = bad_signature_notice(rig, mark)
    assert message["NOTIFICATION"].startswith("INCOMING: Received invalid command from tester(None):{'EE_ID': ")
    assert set(message) - {"EE_ETH_SENDER", "EE_ETH_SIGN", "SIGN_CANON_V"} == \
        set(real) - {"SIGN_CANON_V"}
    assert snapshot(rig) == before and rig.node.counters["rejected_signature"] == 1
    assert_still_running(rig)


def test_command_altered_after_signing(rig: Rig) -> None:
    message = sign_message(rig.envelope("UPDATE_CONFIG", pipeline("forged")), CLIENT, profile=rig.profile)
    message["PAYLOAD"]["NAME"] = "evil"
    before, mark = snapshot(rig), rig.mark()
    rig.publish(message)
    rig.clock.advance(0.5)
    bad_signature_notice(rig, mark)
    assert snapshot(rig) == before
    assert_still_running(rig)


def test_command_signed_by_another_key_than_its_sender_claims(rig: Rig) -> None:
    """A replay 'from another sender': signed by the stranger, EE_SENDER says the client."""
    forged = sign_message(rig.envelope("ARCHIVE_CONFIG", "keep"), STRANGER, profile=rig.profile)
    forged["EE_SENDER"] = CLIENT.address(rig.profile)
    before, mark = snapshot(rig), rig.mark()
    rig.publish(forged)
    rig.clock.advance(0.5)
    bad_signature_notice(rig, mark)
    assert snapshot(rig) == before


def test_valid_command_replayed_is_still_a_valid_command(rig: Rig) -> None:
    """Replay protection is not in the spec: the same signed bytes run again (idempotent archive)."""
    message = rig.send("ARCHIVE_CONFIG", "keep")
    mark = rig.mark()
    rig.publish(message)
    rig.clock.advance(0.5)
    assert [c for c in rig.codes(mark)] == [-4]  # executed again: the pipeline is already gone


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe\x00", b"[1, 2, 3]", b"", b'{"EE_ID": ', b"null"])
def test_malformed_bodies_are_counted_and_ignored(rig: Rig, body: bytes) -> None:
    before, mark = snapshot(rig), rig.mark()
    rig.publish(body)
    rig.clock.advance(0.5)
    assert rig.seen[mark + 1:] == []  # only our own publish was sniffed
    assert rig.node.counters["rejected_malformed"] == 1 and snapshot(rig) == before
    assert_still_running(rig)


def test_command_for_another_node_is_ignored(rig: Rig) -> None:
    message = rig.envelope("ARCHIVE_CONFIG", "keep")
    message["EE_ID"] = "someone-else"
    before, mark = snapshot(rig), rig.mark()
    rig.publish(sign_message(message, CLIENT, profile=rig.profile))
    rig.clock.advance(0.5)
    assert rig.events("NOTIFICATION", mark) == [] and snapshot(rig) == before
    assert rig.node.counters["rejected_not_for_me"] == 1


@pytest.mark.parametrize("profile", [AIXP, RATIO1], ids=["aixp", "ratio1"])
def test_not_allow_listed_sender_is_dropped_silently(profile: WireProfile) -> None:
    friend = key("friend")
    other_prefix = "0xai_" if profile is AIXP else "aixp_"
    rig = Rig(profile=profile, allow_list=[other_prefix + friend.address(profile).split("_", 1)[1]])
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("stranger_pipe"), signer=STRANGER)
    assert rig.events("NOTIFICATION", mark) == [] and "stranger_pipe" not in rig.node.pipelines
    assert rig.node.counters["rejected_not_allowed"] == 1
    rig.send("UPDATE_CONFIG", pipeline("friend_pipe"), signer=friend)  # prefix-insensitive match
    assert "friend_pipe" in rig.node.pipelines
    view = decode_heartbeat(rig.events("HEARTBEAT")[0])
    assert view["EE_WHITELIST"] == [friend.address(profile)] and "EE_NT_ALLOW_ANY" not in view


def test_unknown_action_from_a_stranger_with_an_allow_list_publishes_nothing() -> None:
    rig = Rig(allow_list=[CLIENT.address(AIXP)])
    mark = rig.mark()
    rig.send("STOP", signer=STRANGER)
    assert rig.node.is_running and rig.events("NOTIFICATION", mark) == []


def test_unsecured_node_runs_unsigned_commands_as_non_validated() -> None:
    rig = Rig(secured=False, allow_list=AllowList(allow_any=True))  # an unsigned command names no sender to allow
    mark = rig.mark()
    rig.send("UPDATE_CONFIG", pipeline("loose"), signer=None)
    notes = rig.notes(mark)
    assert notes[0][:2] == ("ABNORMAL FUNCTIONING", None)
    assert notes[1] == ("NORMAL", None, ("Received NON-VALIDATED command for new pipeline 'loose' from "
                                         "tester:test-session"))
    assert rig.node.pipelines["loose"]["VALIDATED"] is False
    assert decode_heartbeat(rig.events("HEARTBEAT")[0])["SECURED"] is False


def test_encrypted_command_for_another_receiver_is_dropped() -> None:
    from pye2.wire import encrypt_command

    rig = Rig(profile=RATIO1)
    message = encrypt_command(rig.envelope("UPDATE_CONFIG", pipeline("hidden")), sender=CLIENT,
                              receivers=STRANGER.address(RATIO1))
    mark = rig.mark()
    rig.publish(sign_message(message, CLIENT, profile=RATIO1))
    rig.clock.advance(0.5)
    assert "hidden" not in rig.node.pipelines and rig.events("NOTIFICATION", mark) == []
    assert rig.node.counters["rejected_decrypt"] == 1


def test_everything_the_node_publishes_verifies_as_the_node(rig: Rig) -> None:
    rig.send("UPDATE_CONFIG", pipeline("p2"), advance=12)
    rig.send("ARCHIVE_CONFIG", "nope")
    messages = [m for t, m in rig.seen if not t.endswith("/config")]
    assert len(messages) > 10
    assert {verify_message(m, profile=rig.profile) for m in messages} == {rig.node.address}


@settings(max_examples=60, deadline=None)
@given(body=st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(["EE_ID", "ACTION", "PAYLOAD", "EE_SIGN", "EE_SENDER", "EE_HASH",
                                     "EE_IS_ENCRYPTED", "EE_ENCRYPTED_DATA", "INITIATOR_ID"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                              st.just("node-1"), st.just("UPDATE_CONFIG"),
                              st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))))
def test_random_input_never_changes_state_or_stops_the_node(body: Any) -> None:
    rig = Rig()
    before = snapshot(rig)
    rig.publish(body if isinstance(body, bytes) else json.dumps(body).encode())
    rig.clock.advance(0.5)
    assert snapshot(rig) == before
    assert rig.node.counters["commands_received"] == 1
    assert rig.node.counters["commands_accepted"] == 0
