"""The requirements document's scenarios under asyncio: on the simulated network (virtual clock)
and on the shared Mosquitto and RabbitMQ (each test under a private topic root)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from _brokers import SHARED_KINDS, SharedBroker, shared_broker
from _scenarios import Place, distributed_primes, hello_world, on_broker, on_simulated_network, person_tracking, run

SCENARIOS: list[Callable[[Place], Coroutine[Any, Any, None]]] = [hello_world, distributed_primes, person_tracking]
IDS = [s.__name__ for s in SCENARIOS]


@pytest.fixture(params=SHARED_KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[SharedBroker]:
    yield from shared_broker(request)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_on_the_simulated_network(scenario: Callable[[Place], Coroutine[Any, Any, None]]) -> None:
    run(scenario(on_simulated_network()))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_on_a_real_broker(scenario: Callable[[Place], Coroutine[Any, Any, None]],
                                   broker: SharedBroker) -> None:
    run(scenario(on_broker(broker)))
