"""The plugin's fixtures and helpers on the in-memory hub (virtual time), run in inner pytest sessions."""

from __future__ import annotations

import pytest
from _scenario import SCENARIO

from pye2.domain.profiles import RATIO1
from pye2_transport_memory.network import SimulatedNetwork


def test_the_scenario_runs_on_virtual_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SCENARIO)
    result = pytester.runpytest("-s", "--strict-markers")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*WHERE True lummetry None*"])
    assert "unavailable" not in result.stdout.str()  # the whole plugin catalog loaded in the inner run


def test_defaults_three_nodes_seed_zero_aixp_virtual_time(pytester: pytest.Pytester) -> None:
    expected = SimulatedNetwork(3, seed=0).addresses
    pytester.makepyfile(f"""
        def test_defaults(pye2_network):
            assert pye2_network.virtual and pye2_network.broker is None
            assert pye2_network.addresses == {expected!r}
            assert pye2_network.profile.name == "AIXP"
            assert pye2_network.clock.monotonic() == 0.0
            assert all(node.is_running for node in pye2_network.nodes.values())
            assert pye2_network.pipelines("sim-node-1") == []
            assert pye2_network.pipelines("sim-node-1", include_admin=True) == ["admin_pipeline"]
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_markers_merge_from_module_class_and_function(pytester: pytest.Pytester) -> None:
    seven = SimulatedNetwork(["a", "b"], seed=7, profile=RATIO1).addresses
    pytester.makepyfile(f"""
        import pytest

        pytestmark = pytest.mark.pye2_network(profile="RATIO1", seed=7, heartbeat_interval=5)

        @pytest.mark.pye2_network(nodes=["a", "b"])
        class TestGroup:
            def test_class_marker(self, pye2_network):
                assert pye2_network.addresses == {seven!r}

            @pytest.mark.pye2_network(1)
            def test_function_marker_wins(self, pye2_network):
                assert pye2_network.node_ids == ["sim-node-1"]
                assert pye2_network.profile.name == "RATIO1" and pye2_network.network.seed == 7
                assert pye2_network.nodes["sim-node-1"].heartbeat_interval == 5.0
    """)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=2)


def test_indirect_parametrisation_wins_over_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pye2_network(nodes=4, seed=3)
        @pytest.mark.parametrize("pye2_network, count", [({"nodes": 1}, 1), (2, 2), ({}, 4)], indirect=["pye2_network"])
        def test_sizes(pye2_network, count):
            assert len(pye2_network.nodes) == count and pye2_network.network.seed == 3
    """)
    pytester.runpytest("-v").assert_outcomes(passed=3)


def test_every_test_gets_a_new_network_and_the_last_one_is_stopped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        seen = []

        def test_first(pye2_network, pye2_session):
            pye2_session.create_pipeline(e2id="sim-node-1", name="leftover", wait=True)
            seen.append((pye2_network, pye2_session))

        def test_second(pye2_network, pye2_session):
            old_network, old_session = seen[0]
            assert pye2_network is not old_network and pye2_session is not old_session
            assert pye2_network.pipelines("sim-node-1") == [] and pye2_network.actions("sim-node-1") == []
            assert not any(node.is_running for node in old_network.nodes.values())
            assert not old_session.is_connected
    """)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_an_unknown_marker_option_names_the_closest_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pye2_network(nodez=2)
        def test_typo(pye2_network):
            pass

        @pytest.mark.pye2_network(nodes="three")
        def test_bad_value(pye2_network):
            pass

        @pytest.mark.pye2_network(profile="RATIO2")
        def test_bad_profile(pye2_network):
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "pye2_network: unknown option 'nodez'; did you mean 'nodes'? (known: nodes, seed, profile, *)",
        "pye2_network: nodes must be a count or a list of node ids, not 'three'",
        "pye2_network: unknown wire profile 'RATIO2'; known: AIXP, RATIO1",
    ])
    assert "Traceback" not in result.stdout.str() and "During handling" not in result.stdout.str()


def test_the_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pye2_network(nodes=1)
        def test_marked():
            pass
    """)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)
    assert any("pye2_network(" in line for line in pytester.runpytest("--markers").stdout.lines)


def test_a_failed_wait_says_what_was_awaited_and_for_how_long(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_never(pye2_network):
            pye2_network.wait_until(lambda: pye2_network.pipelines("sim-node-1"), virtual_seconds=45)

        def test_with_message(pye2_network):
            pye2_network.wait_until(lambda: False, virtual_seconds=5, message="the cam pipeline on sim-node-3")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        ("E *WaitTimeout: condition test_never.<locals>.<lambda> (test_a_failed_wait_says_what_was_awaited_and_for_how_long"
         ".py:2) still false after 45 virtual seconds on <SimulatedNetwork 3 nodes on memory (AIXP, seed=0)>"),
        "E *WaitTimeout: condition the cam pipeline on sim-node-3 still false after 5 virtual seconds*",
    ])
    assert "waiting.py" not in result.stdout.str()  # the traceback points at the test, not at the plugin


def test_wait_until_runs_virtual_time_only_as_far_as_needed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_time(pye2_network):
            node = pye2_network.nodes["sim-node-1"]
            beats = node.counters["heartbeats"]
            assert pye2_network.wait_until(lambda: node.counters["heartbeats"] >= beats + 3, virtual_seconds=3600)
            assert pye2_network.clock.monotonic() == 30.0
            pye2_network.advance(15)
            assert pye2_network.clock.monotonic() == 45.0
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_commands_are_recorded_decrypted_and_per_node(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pye2_network(profile="RATIO1")
        def test_encrypted(pye2_network):
            session = pye2_network.session(encrypt_comms=True)
            session.create_pipeline(e2id=pye2_network.addresses["sim-node-3"], name="secret", wait=True)
            (command,) = pye2_network.commands("sim-node-3")
            assert command.encrypted and command.message["EE_IS_ENCRYPTED"] is True
            assert command.action == "UPDATE_CONFIG" and command.payload["NAME"] == "secret"
            assert command.node == "sim-node-3" and 0 < command.time <= pye2_network.clock.time()
            assert pye2_network.commands("sim-node-1") == [] == pye2_network.commands("sim-node-2")
            pye2_network.recorder.clear()
            assert pye2_network.actions("sim-node-3") == []

        def test_unknown_node(pye2_network):
            pye2_network.pipelines("sim-node-9")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ConfigError: unknown node 'sim-node-9'; known: sim-node-1, sim-node-2, sim-node-3*"])


def test_start_false_and_a_session_that_does_not_wait(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pye2_network(nodes=1, start=False)
        def test_not_started(pye2_network):
            assert not pye2_network.nodes["sim-node-1"].is_running
            session = pye2_network.session(wait_for_nodes=False)
            assert session.get_active_nodes() == []
            pye2_network.network.start()
            pye2_network.wait_until(lambda: session.get_active_nodes() == ["sim-node-1"], virtual_seconds=1)
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_tests_wait_without_blocking_the_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import asyncio

        def test_async(pye2_network, pye2_session):
            ticks = []

            async def ticker():
                while True:
                    ticks.append(pye2_network.clock.monotonic())
                    await asyncio.sleep(0)

            async def main():
                task = asyncio.create_task(ticker())
                node = pye2_network.nodes["sim-node-2"]
                beats = node.counters["heartbeats"]
                await pye2_network.wait_until_async(lambda: node.counters["heartbeats"] >= beats + 2,
                                                    virtual_seconds=60)
                task.cancel()
                try:
                    await pye2_network.wait_until_async(lambda: False, virtual_seconds=5)
                except AssertionError as exc:
                    return str(exc)

            failure = asyncio.run(main())
            assert "still false after 5 virtual seconds" in failure
            assert len(set(ticks)) > 2  # the loop ran while virtual time moved
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_one_fresh_network_per_hypothesis_example(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from hypothesis import given, settings, strategies as st
        from pye2_transport_memory.harness import NetworkHarness

        networks = []

        @settings(max_examples=5, deadline=None, database=None)
        @given(seed=st.integers(0, 1000), nodes=st.integers(1, 3))
        def test_examples(seed, nodes):
            with NetworkHarness.create(nodes=nodes, seed=seed) as net:
                networks.append(net)
                assert len(net.nodes) == nodes and net.pipelines("sim-node-1") == []
                session = net.session()
                session.create_pipeline(e2id="sim-node-1", name="p", wait=True)
                assert net.pipelines("sim-node-1") == ["p"]

        def test_all_stopped():
            assert len({id(n) for n in networks}) == len(networks) >= 5
            assert not any(node.is_running for net in networks for node in net.nodes.values())
    """)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
