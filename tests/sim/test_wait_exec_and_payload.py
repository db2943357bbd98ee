"""wait_exec again and at once on one pipeline; Payload is a dict."""

from __future__ import annotations

import copy
import json
import pickle
import threading
from typing import Any

from pye2 import Payload
from pye2_transport_memory import SimulatedNetwork


def test_wait_exec_twice_in_a_row_on_one_pipeline() -> None:
    with SimulatedNetwork(nodes=1, seed=9) as net:
        sess = net.session()
        sess.connect()
        assert sess.wait_for_node(net.node_ids[0], 30)
        pipe = sess.create_pipeline(e2id=net.node_ids[0], name="exec", data_source="Void", wait=True)
        for n in range(3):
            result, error = pipe.wait_exec(plain_code=f"_result = {n} * 7", timeout=30)
            assert (result, error) == (n * 7, None)
        # each call had an instance of its own, and each was stopped
        sess.sleep(2)
        assert net.nodes[net.node_ids[0]].pipelines["exec"]["PLUGINS"] in ([], [{"SIGNATURE": "REST_CUSTOM_EXEC_01",
                                                                                  "INSTANCES": []}])
        sess.close()


def test_wait_exec_from_several_threads_at_once() -> None:
    with SimulatedNetwork(nodes=1, seed=9, realtime=True) as net:
        sess = net.session(command_timeout=30)
        sess.connect()
        assert sess.wait_for_node(net.node_ids[0], 30)
        pipe = sess.create_pipeline(e2id=net.node_ids[0], name="exec", data_source="Void", wait=True)
        results: dict[int, Any] = {}

        def run(n: int) -> None:
            results[n] = pipe.wait_exec(plain_code=f"_result = {n} + 100", timeout=30)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {n: (n + 100, None) for n in range(3)}
        sess.close()


def test_the_rest_instance_allows_empty_inputs_as_a_real_node_needs_on_a_void_pipeline() -> None:
    with SimulatedNetwork(nodes=1, seed=9) as net:
        sess = net.session()
        sess.connect()
        assert sess.wait_for_node(net.node_ids[0], 30)
        seen: list[dict[str, Any]] = []
        spy = net.transport()
        spy.connect()
        spy.subscribe(f"{net.profile.root}/+/config", lambda d: seen.append(json.loads(d.body)))
        pipe = sess.create_pipeline(e2id=net.node_ids[0], name="exec", data_source="Void", wait=True)
        pipe.wait_exec(plain_code="_result = 1", timeout=30)
        started = [c for c in seen if c.get("ACTION") == "UPDATE_CONFIG" and c["PAYLOAD"]["PLUGINS"]]
        instance = started[0]["PAYLOAD"]["PLUGINS"][0]["INSTANCES"][0]
        assert instance["ALLOW_EMPTY_INPUTS"] is True
        sess.close()


def test_payload_is_a_dict_that_pickles_copies_and_serialises() -> None:
    p = Payload({"STREAM": "s", "N": 1, "data": "a key named data"})
    assert isinstance(p, dict) and p.STREAM == "s" and p["data"] == "a key named data"
    assert json.loads(json.dumps(p)) == {"STREAM": "s", "N": 1, "data": "a key named data"}
    for twin in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p), p.copy()):
        assert type(twin) is Payload and twin == p and twin is not p
    p.EXTRA = 2
    assert p["EXTRA"] == 2
    del p.EXTRA
    assert "EXTRA" not in p
