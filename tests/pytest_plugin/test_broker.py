"""``--pye2-broker``: the same tests on real Mosquitto and RabbitMQ, each under a private topic root."""

from __future__ import annotations

import pytest
from _scenario import SCENARIO

WHERE = """
import pytest

def test_one(pye2_network, pye2_broker):
    print("WHERE", pye2_network.virtual, pye2_network.root, pye2_broker)

def test_two(pye2_network):
    print("WHERE", pye2_network.virtual, pye2_network.root)

@pytest.mark.pye2_network(virtual=True)
def test_virtual(pye2_network):
    print("WHERE", pye2_network.virtual, pye2_network.root)
"""


def roots(result: pytest.RunResult) -> list[str]:
    return [line.split("WHERE ", 1)[1] for line in result.outlines if "WHERE " in line]


@pytest.mark.mqtt
def test_the_same_scenario_runs_on_mosquitto(pytester: pytest.Pytester, mqtt_url: str) -> None:
    pytester.makepyfile(SCENARIO)
    result = pytester.runpytest("-s", "--strict-markers", "--pye2-broker", mqtt_url)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"pye2: simulated networks hosted on {mqtt_url} (a private topic root per test)",
                                 f"*WHERE False pye2t* {mqtt_url}*"])


@pytest.mark.amqp
def test_the_same_scenario_runs_on_rabbitmq(pytester: pytest.Pytester, amqp_url: str) -> None:
    pytester.makepyfile(SCENARIO)
    result = pytester.runpytest("-s", "--pye2-broker", amqp_url)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*WHERE False pye2t*"])
    if "@" in amqp_url:  # the header masks the password
        assert amqp_url not in "\n".join(result.outlines[:6])
        result.stdout.fnmatch_lines(["pye2: simulated networks hosted on amqp://*:***@*"])


@pytest.mark.mqtt
def test_every_test_gets_its_own_private_root_and_virtual_true_stays_in_memory(
        pytester: pytest.Pytester, mqtt_url: str) -> None:
    pytester.makepyfile(WHERE)
    result = pytester.runpytest("-s", "--pye2-broker", mqtt_url)
    result.assert_outcomes(passed=3)
    one, two, virtual = roots(result)
    assert one.startswith("False pye2t") and one.endswith(mqtt_url) and two.startswith("False pye2t")
    assert one.split()[1] != two.split()[1]
    assert virtual == "True lummetry"


@pytest.mark.mqtt
def test_the_broker_comes_from_the_environment_or_the_ini_file(pytester: pytest.Pytester, mqtt_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(WHERE)
    monkeypatch.setenv("PYE2_TEST_BROKER", mqtt_url)
    assert roots(pytester.runpytest("-s", "-k", "one"))[0].startswith("False pye2t")
    monkeypatch.setenv("PYE2_TEST_BROKER", "mqtt://127.0.0.1:1")  # the command line wins over it
    assert roots(pytester.runpytest("-s", "-k", "one", "--pye2-broker", mqtt_url))[0].endswith(mqtt_url)
    monkeypatch.delenv("PYE2_TEST_BROKER")
    pytester.makeini(f"[pytest]\npye2_broker = {mqtt_url}\n")
    assert roots(pytester.runpytest("-s", "-k", "one"))[0].startswith("False pye2t")
    monkeypatch.setenv("PYE2_TEST_BROKER", "")  # empty: fall through to the ini file
    assert roots(pytester.runpytest("-s", "-k", "one"))[0].endswith(mqtt_url)


def test_without_a_broker_the_network_is_virtual(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYE2_TEST_BROKER", raising=False)
    pytester.makepyfile(WHERE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=3)
    assert roots(result) == ["True lummetry None", "True lummetry", "True lummetry"]
    assert not any(line.startswith("pye2:") for line in result.outlines)


def test_an_unreachable_broker_is_a_setup_error_without_the_password(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WHERE)
    result = pytester.runpytest("-k", "one", "--pye2-broker", "mqtt://tester:s3cret@127.0.0.1:1")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pye2_network: cannot start the simulated network on mqtt://tester:***@127.0.0.1:1:*"])
    assert "s3cret" not in result.stdout.str()
    result = pytester.runpytest("-k", "one", "--pye2-broker", "nosuch://x")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pye2_network: cannot start the simulated network on nosuch://x*nosuch*"])
