"""A session decodes a v2 heartbeat's status only if something reads it (callback, pipelines query).

The engine hands the router ``decode_heartbeat(..., lazy=True)`` views; the
``lazy_engine`` fixture makes sure it does, whatever its default.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest

import pye2.domain.codecs.code as code_module
import pye2.service.engine as engine_module
from pye2 import Session
from pye2.domain.codecs.code import compress_text, max_compressed_chars
from pye2.domain.codecs.heartbeat import decode_heartbeat, encode_heartbeat
from pye2.domain.codecs.heartbeat_view import PROTECTED_FIELDS, HeartbeatView
from pye2.errors import DecodeError, DecompressionBomb
from pye2.wire import Identity, sign_message
from pye2_transport_memory.network import SimulatedNetwork

STATUS = {"CPU": "x86_64", "DEVICE_STATUS": "ONLINE", "SECURED": True, "EE_WHITELIST": ["0xai_x"],
          "CONFIG_STREAMS": [{"NAME": "admin_pipeline", "TYPE": "NetworkListener"}, {"NAME": "p1", "TYPE": "Void"}]}


@pytest.fixture()
def lazy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "decode_heartbeat", functools.partial(decode_heartbeat, lazy=True))


@pytest.fixture()
def net() -> Iterator[Any]:
    with SimulatedNetwork(nodes=0, seed=3) as network:
        yield network


class Rig:
    """A session on the simulated hub and a signing node that publishes hand-made heartbeats."""

    def __init__(self, net: Any, **options: Any) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.read = False
        self.session = Session(transport=net.transport(), clock=net.clock, identity=Identity.generate(),
                               on_heartbeat=self._on_heartbeat, **options)
        self.session.connect()
        self.raw = net.transport()
        self.raw.connect()
        self.node = Identity.generate()
        self.sent: list[bytes] = []

    def _on_heartbeat(self, _session: Session, e2id: str, data: dict[str, Any]) -> None:
        self.seen.append((e2id, data))
        if self.read:
            data["CPU"]

    def beat(self, alias: str = "node-1", *, status: dict[str, Any] = STATUS, encoded: str | None = None) -> None:
        # a number of its own, as a node's (the session refuses a copy of a message it accepted: a replay)
        body: dict[str, Any] = {"EE_ID": alias, "EE_EVENT_TYPE": "HEARTBEAT", "EE_MESSAGE_SEQ": len(self.sent),
                                **encode_heartbeat(status)}
        if encoded is not None:
            body["ENCODED_DATA"] = encoded
        signed = sign_message(body, self.node, profile=self.session.profile)
        self.sent.append(json.dumps(signed).encode())
        self.raw.publish(self.session.profile.ctrl, self.sent[-1])
        self.session.sleep(0.5)

    def stats(self) -> dict[str, Any]:
        return self.session.stats.as_dict()


@pytest.fixture()
def rig(net: Any, lazy_engine: None) -> Iterator[Rig]:
    r = Rig(net)
    yield r
    r.session.close()


def test_a_callback_that_does_not_read_the_data_never_decodes_it(rig: Rig) -> None:
    rig.beat()
    rig.beat()
    assert [e2id for e2id, _ in rig.seen] == ["node-1", "node-1"]
    assert all(isinstance(d, HeartbeatView) and d.pending for _, d in rig.seen)
    assert rig.stats()["delivered"] == {"heartbeat": 2} and rig.stats()["rejected"] == {}
    assert rig.session.get_active_nodes() == ["node-1"]
    assert list(rig.session.get_active_pipelines("node-1") or {}) == ["admin_pipeline", "p1"]
    record = rig.session.network.find("node-1")
    assert record is not None and record.whitelist == ("0xai_x",) and record.status == "ONLINE"
    assert all(isinstance(d, HeartbeatView) and d.pending for _, d in rig.seen)  # the query decoded its own copy


def test_a_callback_reading_the_data_sees_the_whole_merged_view(rig: Rig) -> None:
    rig.read = True
    rig.beat()
    (_, data), = rig.seen
    assert data == decode_heartbeat(json.loads(rig.sent[0])) and data["CPU"] == "x86_64"
    assert "ENCODED_DATA" in data and data["EE_SENDER"] == rig.node.address(rig.session.profile)
    assert rig.stats()["delivered"] == {"heartbeat": 1}
    assert "p1" in (rig.session.get_active_pipelines("node-1") or {})


def test_pipelines_asked_for_inside_the_callback_are_the_new_ones_decoded_once(rig: Rig) -> None:
    got: list[Any] = []

    def on_hb(session: Session, e2id: str, data: dict[str, Any]) -> None:
        got.append((sorted(session.get_active_pipelines(e2id) or {}), isinstance(data, HeartbeatView) and
                    data.pending))

    rig.session.dispatcher.add("heartbeat", ("*",), on_hb)
    rig.beat(status={**STATUS, "CONFIG_STREAMS": [{"NAME": "first"}]})
    rig.beat(status={**STATUS, "CONFIG_STREAMS": [{"NAME": "second"}]})
    assert got == [(["first"], False), (["second"], False)]  # the query decoded the callback's data too


@pytest.mark.parametrize(
    ("encoded", "reason", "error"),
    [(compress_text("{not json"), "malformed", DecodeError),
     (compress_text(json.dumps({"DEVICE_LOG": "x" * 5_000})), "bomb", DecompressionBomb)],
)
def test_an_undecodable_status_read_while_routed_is_a_counted_rejection_never_a_callback_error(
    rig: Rig, encoded: str, reason: str, error: type[Exception]
) -> None:
    assert rig.session.engine is not None
    rig.session.engine.max_inflated = 1_000
    seen: list[Any] = []

    def on_hb(_s: Session, _e: str, data: dict[str, Any]) -> None:
        seen.append((data.get("CPU"), data["EE_ID"]))  # never raises: the status is just absent

    rig.session.dispatcher.add("heartbeat", ("*",), on_hb)
    rig.beat(encoded=encoded)
    assert seen == [(None, "node-1")]
    stats = rig.stats()
    assert stats["rejected"] == {reason: 1} and stats["delivered"] == {} and stats["callback_errors"] == 0
    assert stats["received"] == 1
    record = rig.session.network.find("node-1")
    assert record is not None and record.status_error and rig.session.get_active_pipelines("node-1") is None


def test_an_undecodable_status_nobody_reads_is_delivered_and_noted_on_the_node(rig: Rig) -> None:
    rig.beat(encoded=compress_text("[1, 2]"))
    assert rig.stats()["delivered"] == {"heartbeat": 1} and rig.stats()["rejected"] == {}
    assert rig.session.get_active_nodes() == ["node-1"]
    assert rig.session.get_active_pipelines("node-1") is None
    record = rig.session.network.find("node-1")
    assert record is not None and "JSON list" in (record.status_error or "")
    rig.beat()  # the next good heartbeat replaces it
    assert record.status_error is None and "p1" in (rig.session.get_active_pipelines("node-1") or {})


def test_filtered_heartbeats_still_update_the_network_without_decoding(net: Any, lazy_engine: None) -> None:
    rig = Rig(net, filter_workers=["someone-else"])
    rig.beat()
    assert rig.seen == [] and rig.stats()["filtered"] == 1 and rig.stats()["delivered"] == {}
    assert "p1" in (rig.session.get_active_pipelines("node-1") or {})
    rig.session.close()


def test_a_status_cannot_rename_or_re_sign_the_heartbeat(rig: Rig) -> None:
    rig.read = True
    forged = {**STATUS, "EE_SENDER": "0xai_someone_else", "EE_ID": "node-2", "EE_HASH": "00" * 32,
              "EE_SIGN": "forged", "EE_TIMESTAMP": "1999-01-01 00:00:00", "EE_ETH_SENDER": "0xdead"}
    rig.beat(status=forged)
    (e2id, data), = rig.seen
    signed = json.loads(rig.sent[0])
    assert e2id == "node-1" and data["CPU"] == "x86_64"
    assert data["EE_SENDER"] == rig.node.address(rig.session.profile) == signed["EE_SENDER"]
    for name in PROTECTED_FIELDS:
        assert data.get(name) == signed.get(name), name
    assert rig.stats()["delivered"] == {"heartbeat": 1}
    assert rig.session.get_active_nodes() == ["node-1"] and rig.session.network.find("node-2") is None


@pytest.mark.parametrize(
    "encoded",
    [compress_text("{not json"), compress_text("[1]"), "%%%", compress_text(json.dumps({"DEVICE_LOG": "x" * 5_000}))],
)
def test_a_callback_using_an_undecodable_status_as_a_dict_gets_the_envelope(rig: Rig, encoded: str) -> None:
    assert rig.session.engine is not None
    rig.session.engine.max_inflated = 1_000
    got: list[Any] = []

    def on_hb(_s: Session, _e: str, data: dict[str, Any]) -> None:
        got.append((data["EE_ID"], len(data), sorted(dict(data)), json.loads(json.dumps(data))["EE_ID"]))

    rig.session.dispatcher.add("heartbeat", ("*",), on_hb)
    rig.beat(encoded=encoded)
    (alias, size, keys, dumped), = got
    assert alias == dumped == "node-1" and size == len(keys) and "ENCODED_DATA" not in keys and "CPU" not in keys
    stats = rig.stats()
    assert stats["callback_errors"] == 0 and stats["delivered"] == {} and sum(stats["rejected"].values()) == 1


def test_a_status_text_too_long_for_the_cap_is_refused_unread(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    assert rig.session.engine is not None
    rig.session.engine.max_inflated = 1_000

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("inflated a text refused by its length")

    monkeypatch.setattr(code_module, "inflate", refuse)
    rig.session.dispatcher.add("heartbeat", ("*",), lambda _s, _e, data: data.get("CPU"))
    rig.beat(encoded=compress_text("{}") + "A" * max_compressed_chars(1_000))
    (_, data), = rig.seen
    assert isinstance(data, HeartbeatView) and isinstance(data.error, DecompressionBomb)
    assert data.get("CPU") is None and data["EE_ID"] == "node-1"
    assert rig.stats()["rejected"] == {"bomb": 1} and rig.stats()["callback_errors"] == 0
