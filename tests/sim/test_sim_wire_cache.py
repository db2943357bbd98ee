"""The simulator's write-once shortcuts change its speed only: the wire is byte for byte the same without them.

What is cached or skipped (see ``bench/simnet_hour.py`` for why):

* the allow-list's JSON (``AllowList.entries_json``), spliced into the
  heartbeat status text like ``ACTIVE_PLUGINS``, while the list is unchanged;
  so are ``CONFIG_STREAMS`` (remembered with a ``marshal`` image of the
  pipelines, which are changed in place here: 1, 1.0, True, NaN...) and the
  constant ``COMM_STATS`` and ``LOOPS_TIMINGS``;
* the address bodies of an allow-list ``NET_MON_01`` reads (``trusted``);
* the orjson canonical text (signatures) and the skipped float trimming of
  float-free legacy texts.

Two seeded networks run the same story (heartbeats, a session joining the
allow-lists, an explicit allow-list on one node, a restart, an open node,
a pipeline config edited in place):
one as shipped, one with every shortcut replaced by the plain computation.
Every published body must be equal, byte for byte, and every heartbeat must
verify and hold the allow-list the node had when it was sent. Not timed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import zlib
from typing import Any

import pytest

from pye2.domain import canonical
from pye2.domain.codecs.heartbeat import decode_heartbeat
from pye2.wire import Identity, verify_message
from pye2_transport_memory.network import SimulatedNetwork
from pye2_transport_memory.node import _allow, _heartbeat, _outbound, netmon
from pye2_transport_memory.node.netmon import body_of

SESSION = Identity.from_private_bytes(hashlib.sha256(b"pye2-test:wire-cache:session").digest())
OTHER = Identity.from_private_bytes(hashlib.sha256(b"pye2-test:wire-cache:other").digest())
#: values a pipeline config takes in turn, in place (the heartbeats' CONFIG_STREAMS must follow)
EDITS: list[Any] = [1, 1.0, True, math.nan, None, [1], (1,), "1"]


def _plain_entries_json(self: _allow.AllowList, prefix: str) -> tuple[tuple[str, ...], str]:
    """``AllowList.entries_json`` as it was: sorted and written on every call."""
    if self.allow_any:
        return (), "[]"
    clients = sorted(self._clients - set(self._bodies)) if self._clients else []
    entries = tuple(prefix + body for body in (*self._bodies, *clients))
    return entries, json.dumps(list(entries))


def _story(profile: str = "AIXP") -> tuple[list[tuple[str, bytes]], SimulatedNetwork]:
    """A seeded run; every (topic, body) the hub was given, in order."""
    net = SimulatedNetwork(5, seed=11, profile=profile)
    assert net.hub is not None
    published: list[tuple[str, bytes]] = []
    publish = net.hub.publish

    def record(address: str, body: bytes) -> None:
        published.append((address, bytes(body)))
        publish(address, body)

    net.hub.publish = record  # type: ignore[method-assign]
    with net:
        net.advance(35)
        net.allow_client(SESSION.address(net.profile))  # a session joins: every allow-list grows
        net.advance(25)
        net.set_allow_list([OTHER.address(net.profile)], node="sim-node-2")
        net.advance(25)
        net.nodes["sim-node-3"].restart()
        net.advance(20)
        net.nodes["sim-node-4"].allow = _allow.AllowList(allow_any=True)  # opened: an empty list
        net.advance(25)
        admin = net.nodes["sim-node-1"].pipelines["admin_pipeline"]
        for value in EDITS:  # changed in place: equal under ==, not in JSON
            admin["PYE2_TEST"] = value
            net.advance(10)
    return published, net


@pytest.mark.parametrize("profile", ["AIXP", "RATIO1"])
def test_the_wire_is_the_same_byte_for_byte_without_the_shortcuts(profile: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fast, _ = _story(profile)
    with monkeypatch.context() as patch:
        patch.setattr(_heartbeat, "_status_json", lambda status, fragments: json.dumps(dict(status)))
        patch.setattr(_allow.AllowList, "entries_json", _plain_entries_json)
        patch.setattr(netmon, "_bodies_of", lambda whitelist: frozenset(body_of(a) for a in whitelist))
        survey = canonical._survey  # never "floatless": every legacy text goes through the trimming
        patch.setattr(canonical, "_survey", lambda data, budget=canonical._WALK_BUDGET, *, check_keys=True:
                      min(survey(data, budget, check_keys=check_keys), canonical._PLAIN))
        patch.setattr(_outbound, "_sorted_text", lambda: None)
        plain, _ = _story(profile)
    assert len(fast) == len(plain) > 100
    assert [topic for topic, _ in fast] == [topic for topic, _ in plain]
    for (topic, got), (_, expected) in zip(fast, plain, strict=True):
        assert got == expected, f"{topic}: the body differs from the one written without shortcuts"
    assert any(b'"NET_MON_01"' in body for _, body in fast)


def _heartbeats(published: list[tuple[str, bytes]], profile: Any) -> list[tuple[dict[str, Any], str]]:
    out = []
    for topic, body in published:
        if topic != profile.ctrl:
            continue
        message = json.loads(body)
        text = zlib.decompress(base64.b64decode(message["ENCODED_DATA"])).decode()
        out.append((message, text))
    return out


def test_every_heartbeat_verifies_and_lists_the_allow_list_of_its_moment() -> None:
    published, net = _story()
    beats = _heartbeats(published, net.profile)
    assert len(beats) > 60
    session = SESSION.address(net.profile)
    other = OTHER.address(net.profile)
    seen: dict[str, list[list[str]]] = {}
    streams: list[dict[str, Any]] = []
    for message, text in beats:
        sender = verify_message(message, profile=net.profile)
        assert sender == message["EE_SENDER"]
        # the spliced status text is exactly what json.dumps writes for the status it holds
        status = json.loads(text)
        assert json.dumps(status) == text
        assert decode_heartbeat(message)["EE_WHITELIST"] == status["EE_WHITELIST"]
        seen.setdefault(message["EE_ID"], []).append(status["EE_WHITELIST"])
        if message["EE_ID"] == "sim-node-1":
            streams.append(status)
    first = seen["sim-node-1"]
    assert session not in first[0] and session in first[-1]  # the cache followed the session joining
    assert len(first[0]) == 5 and len(first[-1]) == 6
    node2 = seen["sim-node-2"]
    assert node2[-1][0] == other and session in node2[-1]  # explicit entry first, then the network's own
    assert seen["sim-node-4"][-1] == []  # opened: nothing listed
    assert seen["sim-node-4"][0] != []
    edits = [next((c.get("PYE2_TEST", "-") for c in status["CONFIG_STREAMS"] if c.get("NAME") == "admin_pipeline"),
                  "-") for status in streams]
    written = [json.dumps(value) for value in edits if value != "-"]
    assert list(dict.fromkeys(written)) == ["1", "1.0", "true", "NaN", "null", "[1]", '"1"']


def test_the_status_text_splices_only_the_object_it_was_given() -> None:
    listed = ["aixp_a", "aixp_b"]
    status = {"CURRENT_TIME": "t", "EE_WHITELIST": listed, "X": {"EE_WHITELIST": [1.5]}}
    text = _heartbeat._status_json(status, {"EE_WHITELIST": (listed, json.dumps(listed))})
    assert text == json.dumps(status)
    assert status["EE_WHITELIST"] is listed  # put back
    stale = _heartbeat._status_json(status, {"EE_WHITELIST": (list(listed), '["stale"]')})
    assert stale == json.dumps(status)  # not the same object: written anew
