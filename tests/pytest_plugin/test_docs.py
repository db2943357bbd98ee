"""docs/testing.md's before/after example runs: both on virtual time, the "after" one on Mosquitto too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def example_files() -> dict[str, str]:
    """``# test_x.py`` code blocks of the document -> their source."""
    blocks = re.findall(r"```python\n(# (test_\w+\.py)\n.*?)```", DOC.read_text("utf-8"), re.DOTALL)
    return {name: source for source, name in blocks}


def test_the_document_has_the_before_and_after_example() -> None:
    assert sorted(example_files()) == ["test_after.py", "test_before.py"]


def test_both_versions_pass_on_virtual_time(pytester: pytest.Pytester) -> None:
    for name, source in example_files().items():
        pytester.makepyfile(**{name[:-3]: source})
    pytester.runpytest("--strict-markers").assert_outcomes(passed=2)


@pytest.mark.mqtt
def test_the_plugin_version_runs_unchanged_on_mosquitto(pytester: pytest.Pytester, mqtt_url: str) -> None:
    pytester.makepyfile(test_after=example_files()["test_after.py"])
    pytester.runpytest("--pye2-broker", mqtt_url).assert_outcomes(passed=1)


def test_the_documented_failure_messages_are_the_real_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
        import pytest

        def test_never(pye2_network):
            pye2_network.wait_until(lambda: False, virtual_seconds=45)

        @pytest.mark.pye2_network(nodez=2)
        def test_typo(pye2_network):
            pass
    """)
    out = pytester.runpytest().stdout.str()
    text = DOC.read_text("utf-8")
    documented_lines = re.findall(r"^ *(?:E   WaitTimeout: |)((?:condition|pye2_network:) .*)$", text, re.MULTILINE)
    assert len(documented_lines) == 2
    for documented in documented_lines:
        shown = documented.split(" (known:")[0].replace("test_x.py:2", "test_x.py:4")
        assert shown in out, documented
