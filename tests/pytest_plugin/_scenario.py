"""Test files the plugin's tests run with ``pytester``: the same source on virtual time and on brokers."""

from __future__ import annotations

SCENARIO = '''
import pytest


def test_a_session_drives_a_node(pye2_network, pye2_session):
    pipe = pye2_session.create_pipeline(e2id="sim-node-2", name="cam", wait=True)
    assert pye2_network.pipelines("sim-node-2") == ["cam"]
    assert pye2_network.actions("sim-node-2") == ["UPDATE_CONFIG"]
    results = []
    pipe.start_custom_plugin(instance_id="c1", plain_code="_result = 6 * 7", params={},
                             on_data=lambda _pipe, data: results.append(data))
    pye2_network.wait_until(lambda: len(results) >= 2, virtual_seconds=30)
    assert set(results) == {42}
    assert pye2_network.instances("sim-node-2") == [("cam", "CUSTOM_EXEC_01", "c1")]
    pipe.close()
    pye2_network.wait_until(lambda: pye2_network.pipelines("sim-node-2") == [], virtual_seconds=10)
    assert pye2_network.actions("sim-node-2")[-1] == "ARCHIVE_CONFIG"
    first = pye2_network.commands("sim-node-2", action="UPDATE_CONFIG")[0]
    assert first.sender == pye2_session.address and first.payload["NAME"] == "cam"
    assert pye2_network.commands("sim-node-1") == []


@pytest.mark.pye2_network(nodes=2, profile="RATIO1", seed=7)
def test_marker_options(pye2_network, pye2_session):
    assert pye2_network.node_ids == ["sim-node-1", "sim-node-2"]
    assert all(a.startswith("0xai_") for a in pye2_network.addresses.values())
    assert sorted(pye2_session.get_active_nodes()) == sorted(pye2_network.addresses.values())


def test_where(pye2_network, pye2_broker):
    print("WHERE", pye2_network.virtual, pye2_network.root, pye2_broker)
'''
