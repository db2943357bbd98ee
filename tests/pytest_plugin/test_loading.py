"""The plugin is found through its entry point, costs nothing to tests that do not use it, and can be disabled."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest


def test_the_pytest11_entry_point_names_the_plugin() -> None:
    (point,) = entry_points(group="pytest11", name="pye2")
    assert point.value == "pye2_transport_memory.pytest_plugin"


def test_importing_the_plugin_loads_neither_pye2_nor_heavy_modules() -> None:
    probe = ("import sys, pye2_transport_memory.pytest_plugin as p; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "{'pye2', 'cryptography', 'hypothesis', 'numpy', 'paho', 'pika', 'PIL'} "
             "or m.startswith('pye2_transport_memory.') and m != p.__name__))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_test_that_uses_no_pye2_fixture_loads_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import sys, threading

        def test_plain():
            assert "pye2" not in sys.modules and "pye2_transport_memory.network" not in sys.modules
            assert threading.active_count() == 1
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    for name, doc in [("pye2_broker [[]session scope]", "broker URL"), ("pye2_network", "simulated network"),
                      ("pye2_session", "connected*Session")]:
        result.stdout.fnmatch_lines([f"{name} -- *pytest_plugin.py:*", f"    *{doc}*"], consecutive=True)
    names = [line.split()[0] for line in result.outlines if line.startswith("pye2")]
    assert sorted(names) == ["pye2_broker", "pye2_network", "pye2_session"]


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_uses_it(pye2_network):
            pass
    """)
    result = pytester.runpytest("-p", "no:pye2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'pye2_network' not found*"])
