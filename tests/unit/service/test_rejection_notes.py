"""SessionStats keeps the last rejections with their details and shows each to ``on_rejected`` as it is counted."""

from __future__ import annotations

import json
import logging

import pytest

from pye2.domain.messages import Rejected
from pye2.service.stats import RECENT_REJECTIONS, SessionStats
from pye2.wire import Identity, sign_message
from pye2_transport_memory import SimulatedNetwork


def test_recent_rejections_are_bounded_and_a_failing_listener_does_not_stop_counting(
        caplog: pytest.LogCaptureFixture) -> None:
    stats = SessionStats()
    seen: list[Rejected] = []
    stats.on_rejected = seen.append
    stats.count_rejected("malformed", Rejected("malformed", "not JSON", kind="payload"))
    stats.count_rejected("replay")  # no details: a bare note
    assert [(r.reason, r.detail, r.kind) for r in seen] == [("malformed", "not JSON", "payload"), ("replay", "", None)]

    def broken(_note: Rejected) -> None:
        raise RuntimeError("observer bug")

    stats.on_rejected = broken
    with caplog.at_level(logging.WARNING, logger="pye2.service.stats"):
        for _ in range(RECENT_REJECTIONS + 5):
            stats.count_rejected("signature", Rejected("signature", "bad", sender="x"))
    assert stats.rejected == {"malformed": 1, "replay": 1, "signature": RECENT_REJECTIONS + 5}
    assert len(stats.recent_rejections) == RECENT_REJECTIONS
    assert {r.reason for r in stats.recent_rejections} == {"signature"}
    assert "on_rejected listener failed" in caplog.text


def test_a_session_records_who_sent_what_it_rejected_and_why() -> None:
    with SimulatedNetwork(nodes=1, seed=5) as net:
        session = net.session()
        notes: list[Rejected] = []
        session.stats.on_rejected = notes.append
        session.connect()
        assert session.wait_for_node(net.node_ids[0], 30)
        forger = Identity.generate()
        signed = sign_message({"EE_ID": net.node_ids[0], "EE_EVENT_TYPE": "PAYLOAD", "STREAM_NAME": "p",
                               "SIGNATURE": "X", "INSTANCE_ID": "i", "N": 1}, forger, profile=net.profile)
        signed["N"] = 2
        spy = net.transport()
        spy.connect()
        spy.publish(net.profile.payloads, b"{broken")
        spy.publish(net.profile.payloads, json.dumps(signed).encode())
        assert session.wait(lambda: len(notes) >= 2, 30)
        malformed, forged = notes[:2]
        assert (malformed.reason, malformed.kind, malformed.sender) == ("malformed", "payload", None)
        assert (forged.reason, forged.kind, forged.sender) == ("signature", "payload", forger.address(net.profile))
        assert list(session.stats.recent_rejections)[:2] == notes[:2]
        # refused by the router: a name bound to another address, then a copy of a message already received
        claim = sign_message({"EE_ID": net.node_ids[0], "EE_EVENT_TYPE": "PAYLOAD", "STREAM_NAME": "p",
                              "SIGNATURE": "X", "INSTANCE_ID": "i"}, forger, profile=net.profile)
        other = sign_message({"EE_ID": "newcomer", "EE_EVENT_TYPE": "PAYLOAD", "STREAM_NAME": "p",
                              "SIGNATURE": "X", "INSTANCE_ID": "i"}, forger, profile=net.profile)
        for message in (claim, other, other):
            spy.publish(net.profile.payloads, json.dumps(message).encode())
        assert session.wait(lambda: len(notes) >= 4, 30)
        impostor, replay = notes[2:4]
        assert (impostor.reason, impostor.sender) == ("impostor", forger.address(net.profile))
        assert impostor.detail == f"claims the name {net.node_ids[0]}, bound to another address"
        # (refused by the engine's prescreen or by the router: either way with its sender and a detail)
        assert (replay.reason, replay.kind, replay.sender) == ("replay", "payload", forger.address(net.profile))
        assert replay.detail
        assert session.stats.as_dict()["rejected"] == {"malformed": 1, "signature": 1, "impostor": 1, "replay": 1}
        session.close()
