"""pye2's pytest plugin: a simulated network per test, a session on it, and a switch to a real broker.

Registered through the ``pytest11`` entry point, so installing pye2 is enough.

Fixtures (all function-scoped, none autouse):

* ``pye2_network`` -- a :class:`~pye2_transport_memory.harness.NetworkHarness`:
  a started simulated network (3 nodes, seed 0, AIXP, virtual time by
  default), closed after the test. Options come from
  ``@pytest.mark.pye2_network(nodes=..., seed=..., profile=..., ...)`` (on the
  test, class or module) and from indirect parametrisation
  (``@pytest.mark.parametrize("pye2_network", [{"nodes": 1}, 5], indirect=True)``).
* ``pye2_session`` -- a connected ``pye2.Session`` on that network that has
  already seen every node.
* ``pye2_broker`` (session scope) -- the configured broker URL, or None.

``--pye2-broker URL`` (else the ``PYE2_TEST_BROKER`` environment variable,
else the ``pye2_broker`` ini setting) hosts every test's network on that
broker (``mqtt://...`` or ``amqp://...``) under a private topic root, on the
wall clock, as ``pye2 sim`` does: the same tests run unchanged against real
MQTT or AMQP. A test marked ``pye2_network(virtual=True)`` stays on the
in-memory hub.

Importing this module imports nothing but pytest and the standard library;
pye2 and the simulator load when a test first asks for a fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pye2_transport_memory.harness import NetworkHarness

__all__ = ["ENV_BROKER", "pye2_broker", "pye2_network", "pye2_session"]

#: environment variable naming the broker (after ``--pye2-broker``, before the ini setting)
ENV_BROKER = "PYE2_TEST_BROKER"

_MARKER = ("pye2_network(nodes=3, seed=0, profile='AIXP', heartbeat_interval=None, virtual=False, ...): "
           "options of the pye2_network fixture (see docs/testing.md)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pye2", "pye2 simulated network")
    group.addoption("--pye2-broker", dest="pye2_broker", metavar="URL", default=None,
                    help=f"host the pye2_network fixture's simulated nodes on this broker (mqtt://... or amqp://...), "
                         f"a private topic root per test (default: ${ENV_BROKER}, else the pye2_broker ini setting; "
                         f"none: in-memory hub, virtual time)")
    parser.addini("pye2_broker", help="broker URL for the pye2_network fixture (see --pye2-broker)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)


def _configured_broker(config: pytest.Config) -> str | None:
    url = config.getoption("pye2_broker", None) or os.environ.get(ENV_BROKER) or config.getini("pye2_broker")
    url = str(url).strip() if url else ""
    return url or None


def pytest_report_header(config: pytest.Config) -> str | None:
    url = _configured_broker(config)
    if url is None:
        return None
    from pye2_transport_memory.harness.options import mask_url

    return f"pye2: simulated networks hosted on {mask_url(url)} (a private topic root per test)"


@pytest.fixture(scope="session")
def pye2_broker(pytestconfig: pytest.Config) -> str | None:
    """The broker URL that ``pye2_network`` hosts its nodes on, or None (in-memory hub, virtual time)."""
    return _configured_broker(pytestconfig)


def _layers(request: pytest.FixtureRequest) -> list[tuple[tuple[Any, ...], Mapping[str, Any]]]:
    """Marker options, farthest (module) first, then the fixture parameter if any."""
    layers: list[tuple[tuple[Any, ...], Mapping[str, Any]]] = [
        (tuple(m.args), m.kwargs) for m in reversed(list(request.node.iter_markers("pye2_network")))]
    if hasattr(request, "param"):
        param = request.param
        layers.append(((), param) if isinstance(param, Mapping) else ((param,), {}))
    return layers


@pytest.fixture()
def pye2_network(request: pytest.FixtureRequest, pye2_broker: str | None) -> Iterator[NetworkHarness]:
    """A started simulated network for this test (a ``NetworkHarness``), stopped afterwards.

    Options: ``@pytest.mark.pye2_network(nodes=3, seed=0, profile="AIXP", ...)`` or indirect
    parametrisation; ``--pye2-broker URL`` hosts it on a real broker (docs/testing.md).
    """
    from pye2.errors import ConfigError, Pye2Error
    from pye2_transport_memory.harness import NetworkHarness, merge_options
    from pye2_transport_memory.harness.options import mask_url

    failure = ""
    try:
        harness = NetworkHarness.create(merge_options(_layers(request)), pye2_broker)
    except ConfigError as exc:
        failure = f"pye2_network: {exc}"
    except Pye2Error as exc:
        where = mask_url(pye2_broker) if pye2_broker else "the in-memory hub"
        failure = f"pye2_network: cannot start the simulated network on {where}: {exc}"
    if failure:  # outside the except block: the report shows this line, not a chained traceback
        pytest.fail(failure, pytrace=False)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture()
def pye2_session(pye2_network: NetworkHarness) -> Any:
    """A connected ``pye2.Session`` on ``pye2_network`` that has seen every running node (closed afterwards)."""
    return pye2_network.session()
