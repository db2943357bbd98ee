"""NetworkView: online tracking, and node fields read from the last heartbeat only when asked for."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pye2.domain.codecs.code import compress_text
from pye2.domain.codecs.heartbeat import decode_heartbeat, encode_heartbeat
from pye2.domain.codecs.heartbeat_view import HeartbeatView
from pye2.domain.network import NetworkView, NodeStatus


def _status(*names: str, **extra: Any) -> dict[str, Any]:
    return {"CONFIG_STREAMS": [{"NAME": n, "TYPE": "Void"} for n in names], "EE_WHITELIST": ["0xai_a", "0xai_b"],
            "SECURED": True, "DEVICE_STATUS": "ONLINE", "CPU": "x86_64", **extra}


def _view(alias: str, status: dict[str, Any], version: str = "v2") -> dict[str, Any]:
    message = {"EE_ID": alias, "EE_SENDER": f"0xai_{alias}", **encode_heartbeat(status, version=version)}
    return decode_heartbeat(message, lazy=True)


def test_the_fields_come_from_the_last_heartbeat_and_are_decoded_only_when_asked() -> None:
    net = NetworkView(60)
    view = _view("n1", _status("p1", "p2"))
    rec = net.heartbeat("n1", "0xai_n1", 10.0, view)
    rec.settle()
    assert isinstance(view, HeartbeatView) and view.pending  # feeding and settling decoded nothing
    assert net.is_online("0xai_n1", 20.0) and net.known() == ["n1"]
    assert list(net.pipelines("n1", 20.0) or {}) == ["p1", "p2"]
    assert (rec.whitelist, rec.secured, rec.status, rec.status_error) == (("0xai_a", "0xai_b"), True, "ONLINE", None)
    assert view.pending  # the record decoded its own copy, not the view
    net.heartbeat("n1", "0xai_n1", 30.0, _view("n1", _status("p3"))).settle()
    assert list(net.pipelines("0xai_n1", 40.0) or {}) == ["p3"]
    assert net.pipelines("n1", 30.0 + 60) is None  # offline


def test_a_heartbeat_without_a_pipeline_list_lists_none() -> None:
    net = NetworkView(60)
    net.heartbeat("n1", None, 1.0, _view("n1", _status("p1"))).settle()
    assert net.pipelines("n1", 2.0) == {"p1": {"NAME": "p1", "TYPE": "Void"}}
    net.heartbeat("n1", None, 3.0, _view("n1", {"CPU": "x"})).settle()
    assert net.pipelines("n1", 4.0) is None
    assert net.find("n1").secured is None  # type: ignore[union-attr]


def test_reading_while_routed_decodes_the_view_once_for_both() -> None:
    net = NetworkView(60)
    view = _view("n1", _status("p1"))
    rec = net.heartbeat("n1", None, 1.0, view)
    assert rec.pipelines == {"p1": {"NAME": "p1", "TYPE": "Void"}}
    assert isinstance(view, HeartbeatView) and not view.pending  # the callback's data is now decoded too
    rec.settle()
    assert rec.pipelines == {"p1": {"NAME": "p1", "TYPE": "Void"}}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_heartbeats_in_clear_or_already_decoded_are_read_at_once(version: str) -> None:
    net = NetworkView(60)
    view = _view("n1", _status("p1"), version)
    if isinstance(view, HeartbeatView):
        view["CPU"]  # decoded by a reader before the network sees it
    rec = net.heartbeat("n1", None, 1.0, view)
    view.clear()  # what the record keeps does not depend on the view any more
    assert rec.pipelines == {"p1": {"NAME": "p1", "TYPE": "Void"}} and rec.status == "ONLINE"


@pytest.mark.parametrize(
    ("encoded", "error"),
    [(compress_text("{not json"), "not valid JSON"), (compress_text('{"CONFIG_STREAMS": 5}'), "not a list"),
     ("%%%", "not valid zlib")],
)
def test_an_undecodable_status_lists_nothing_and_says_why(encoded: str, error: str) -> None:
    net = NetworkView(60)
    message = {"EE_ID": "n1", "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": encoded}
    rec = net.heartbeat("n1", None, 1.0, decode_heartbeat(message, lazy=True))
    rec.settle()
    assert net.is_online("n1", 2.0)
    assert net.pipelines("n1", 2.0) is None and rec.whitelist == () and rec.secured is None
    assert error in (rec.status_error or "")


def test_an_error_found_while_routed_is_kept_without_decoding_again() -> None:
    net = NetworkView(60)
    view = decode_heartbeat({"EE_ID": "n1", "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": compress_text("[]")},
                            lazy=True)
    rec = net.heartbeat("n1", None, 1.0, view)
    assert view.get("CPU") is None  # a callback reading it finds no status, and no exception
    assert "JSON list" in str(view.error)
    rec.settle()
    assert "JSON list" in (rec.status_error or "") and rec.pipelines is None


def test_parsed_fields_are_kept_for_a_bounded_number_of_nodes() -> None:
    net = NetworkView(60, parsed_nodes=2)
    for i in range(6):
        net.heartbeat(f"n{i}", None, 1.0, _view(f"n{i}", _status(f"p{i}"))).settle()
    for _ in range(2):  # the second round decodes again what the cache let go
        assert [list(net.pipelines(f"n{i}", 2.0) or {}) for i in range(6)] == [[f"p{i}"] for i in range(6)]
    held = net._parsed._held
    assert len(held) == 2 and sum(h._status is not None for h in held) == 2


def test_readers_on_other_threads_always_see_a_whole_heartbeat() -> None:
    net = NetworkView(60, parsed_nodes=1)
    names = [[f"a{i}", f"b{i}"] for i in range(50)]
    net.heartbeat("n1", None, 0.0, _view("n1", _status(*names[0]))).settle()
    seen: list[list[str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(list(net.pipelines("n1", 1.0) or {}))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(1, len(names)):
        net.heartbeat("n1", None, 0.0, _view("n1", _status(*names[i]))).settle()
    stop.set()
    for t in readers:
        t.join()
    assert seen and all(s in names for s in seen)
    assert list(net.pipelines("n1", 1.0) or {}) == names[-1]


def test_node_status_reads_the_tracked_fields_leniently() -> None:
    status = NodeStatus.of({"PIPELINES": [{"NAME": "a"}, "junk", {"X": 1}], "EE_WHITELIST": "not a list",
                            "SECURED": "yes", "DEVICE_STATUS": ""})
    assert status == NodeStatus(pipelines={"a": {"NAME": "a"}, "None": {"X": 1}})
    assert NodeStatus.of({"CONFIG_STREAMS": None, "PIPELINES": [{"NAME": "a"}]}).pipelines is None
