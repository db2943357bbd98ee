"""Hostile input on the simulated network: memory and logs stay bounded, counters stay exact."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest
from _attacker import Attacker

from pye2 import Session
from pye2.domain.codecs.heartbeat import encode_heartbeat
from pye2.errors import AmbiguousNode
from pye2.wire import Identity, sign_message
from pye2_transport_memory import SimulatedNetwork


@pytest.fixture()
def net() -> Any:
    with SimulatedNetwork(nodes=1, seed=21, profile="RATIO1") as network:
        yield network


def _session(net: Any, **options: Any) -> Session:
    sess = net.session(identity=Identity.generate(), name="victim", **options)
    sess.connect()
    assert sess.wait_for_node(net.node_ids[0], 30)
    return sess


def _check_counts(sess: Session) -> dict[str, Any]:
    s = sess.stats.as_dict()
    assert s["in_flight"] == 0
    assert s["received"] == sum(s["delivered"].values()) + sum(s["rejected"].values()) + s["filtered"] + s["dropped"]
    return s


def test_unsigned_messages_with_huge_senders_keep_logs_and_memory_small(
        net: Any, caplog: pytest.LogCaptureFixture) -> None:
    sess = _session(net)
    raw = net.transport()
    raw.connect()
    records = len(sess.network)
    with caplog.at_level(logging.DEBUG, logger="pye2"):
        for i in range(60):
            sender = f"0xai_{i}\n2026-01-01 WARNING pye2 forged line \x1b[31m" + "A" * 1_000_000
            body = {"EE_ID": f"x{i}", "EE_EVENT_TYPE": "PAYLOAD", "EE_SENDER": sender, "EE_SIGN": "x",
                    "EE_HASH": "y", "STREAM": "p"}
            raw.publish(sess.profile.payloads, json.dumps(body).encode())
        sess.sleep(1)
    assert sess.stats.rejected["signature"] == 60
    assert len(sess.network) == records  # unverified senders create no record
    assert sess.engine is not None and len(sess.engine._limiter._last) <= sess.engine._limiter.max_keys
    lines = [r.getMessage() for r in caplog.records]
    assert lines, "the rejections are logged"
    assert all("\n" not in line and "\x1b" not in line and len(line) < 1000 for line in lines), \
        max(lines, key=len)[:300]
    assert sum(len(line) for line in lines) < 100_000
    _check_counts(sess)
    sess.close()


def _hb(identity: Identity, name: str, status: dict[str, Any], seq: int = 0) -> bytes:
    body = {"EE_ID": name, "EE_EVENT_TYPE": "HEARTBEAT", "EE_MESSAGE_SEQ": seq, **encode_heartbeat(status)}
    return json.dumps(sign_message(body, identity, profile="RATIO1")).encode()


def test_node_records_are_capped_and_the_longest_silent_go_first(net: Any) -> None:
    sess = _session(net, max_nodes=10)
    raw = net.transport()
    raw.connect()
    for i in range(50):
        raw.publish(sess.profile.ctrl, _hb(Identity.generate(), f"fresh-{i}", {"CPU": "x"}))
    sess.sleep(1)
    assert len(sess.network) == 10
    assert sess.network.evicted >= 41
    assert sess.stats.delivered["heartbeat"] >= 50
    node = net.node_ids[0]
    sess.sleep(11)  # the real node comes back with its next heartbeat
    assert sess.check_node_online(node)
    _check_counts(sess)
    sess.close()


def test_retained_heartbeat_bytes_are_capped(net: Any) -> None:
    sess = _session(net, max_status_bytes=1_000_000)
    raw = net.transport()
    raw.connect()
    for i in range(12):
        noise = os.urandom(150_000).hex()  # ~300 KB of JSON that does not compress much
        raw.publish(sess.profile.ctrl, _hb(Identity.generate(), f"big-{i}", {"CPU": "x", "NOISE": noise}))
    sess.sleep(1)
    assert sess.network.status_bytes <= 1_000_000
    assert len(sess.network) < 12
    _check_counts(sess)
    sess.close()


def test_a_heartbeat_whose_status_is_over_the_cap_is_rejected(net: Any) -> None:
    sess = _session(net)
    raw = net.transport()
    raw.connect()
    noise = os.urandom(3_000_000).hex()  # 6 MB of status: over the 4 MB cap, and it does not compress below it
    raw.publish(sess.profile.ctrl, _hb(Identity.generate(), "bloated", {"CPU": "x", "NOISE": noise}))
    sess.sleep(1)
    assert sess.stats.rejected["bomb"] == 1
    assert sess.network.find("bloated") is None
    _check_counts(sess)
    sess.close()


def test_a_megabyte_node_name_is_refused(net: Any) -> None:
    sess = _session(net)
    evil = Attacker(net.transport(), sess.profile)
    evil.publish("ctrl", evil.forge({"EE_ID": "N" * 1_000_000, "EE_EVENT_TYPE": "HEARTBEAT", "CPU": "x"}))
    sess.sleep(1)
    assert sess.stats.rejected["malformed"] == 1
    assert len(sess.directory.bindings) == 1  # the real node's name only
    sess.close()


def test_absurd_message_numbers_do_not_make_absurd_missed_counts(net: Any) -> None:
    sess = _session(net)
    evil = Attacker(net.transport(), sess.profile)
    base = {"EE_ID": "numbers", "EE_EVENT_TYPE": "PAYLOAD", "STREAM": "p", "SIGNATURE": "S", "INSTANCE_ID": "i"}
    got: list[int] = []
    sess.dispatcher.add("payload", ("*",), lambda s, e2id, p, sig, inst, data: got.append(data["EE_MESSAGE_SEQ"]))
    missed = sess.stats.missed_payloads
    for seq in (1, 2**60, 2**60 + 5, 3, 10**9, 4, 6):
        evil.publish("payloads", evil.forge(base, EE_MESSAGE_SEQ=seq))
    sess.sleep(0.5)
    assert got == [1, 2**60, 2**60 + 5, 3, 10**9, 4, 6]
    assert sess.stats.missed_payloads - missed == 2  # 2 (between 1 and 3) and 5 (between 4 and 6)
    sess.close()


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_a_session_that_does_not_enforce_signatures_says_so_once(
        net: Any, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pye2"):
        sess = _session(net, verify=mode)
        sess.sleep(25)
    warnings = [r.getMessage() for r in caplog.records if f"verify={mode!r}" in r.getMessage()]
    assert len(warnings) == 1 and "claim" in warnings[0]
    sess.close()


def test_a_contested_name_is_ambiguous_for_every_api_that_takes_a_node(net: Any) -> None:
    sess = _session(net)
    node = net.node_ids[0]
    real = net.nodes[node].address
    sess.sleep(11)
    evil = Attacker(net.transport(), sess.profile)
    sess.sleep(10.5)
    evil.publish("ctrl", evil.forge(evil.last("ctrl", lambda m: m.get("EE_ID") == node), FORGED=True))
    sess.sleep(0.5)
    for call in (lambda: sess.get_node_address(node), lambda: sess.get_active_pipelines(node),
                 lambda: sess.check_node_online(node), lambda: sess.get_node_alias(node),
                 lambda: sess.create_pipeline(e2id=node, name="p"),
                 lambda: sess.send_command(node, "PIPELINE_COMMAND", {"NAME": "p"})):
        with pytest.raises(AmbiguousNode):
            call()
    # the address works, and so does the name once pinned
    assert sess.check_node_online(real) and sess.get_node_alias(real) == node
    sess.create_pipeline(e2id=real, name="by-address", wait=True)
    sess.pin_node(node, real)
    sess.create_pipeline(e2id=node, name="by-name", wait=True)
    assert {"by-address", "by-name"} <= set(net.nodes[node].pipelines)
    sess.close()


def test_late_payloads_are_not_counted_missing_and_do_not_reset_the_numbering(net: Any) -> None:
    sess = _session(net)
    evil = Attacker(net.transport(), sess.profile)  # any signer will do: it binds the name "late"
    base = {"EE_ID": "late", "EE_EVENT_TYPE": "PAYLOAD", "STREAM": "p", "SIGNATURE": "S", "INSTANCE_ID": "i"}
    missed, late = sess.stats.missed_payloads, sess.stats.late_payloads
    for seq in (100, 101, 104, 102, 103, 105, 1, 2):  # 102 and 103 late; then the node restarts at 1
        evil.publish("payloads", evil.forge(base, EE_MESSAGE_SEQ=seq))
    sess.sleep(0.5)
    assert sess.stats.missed_payloads - missed == 0
    assert sess.stats.late_payloads - late == 2
    sess.close()
