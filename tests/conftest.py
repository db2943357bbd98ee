"""Shared fixtures: test vectors, broker URLs, hermetic plugin host."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, settings

# pytester for tests/pytest_plugin (pytest only takes pytest_plugins from the top-level conftest)
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(os.environ.get("PYE2_VECTORS", ROOT.parent / "shared" / "vectors"))
SPEC = VECTORS.parent / "spec"

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def load_vectors(name: str) -> Any:
    """Load ``shared/vectors/<name>`` (fails loudly if the folder is missing)."""
    path = VECTORS / name
    if not path.exists():
        pytest.fail(f"test vectors not found at {path} (set PYE2_VECTORS)")
    return json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="session")
def vectors() -> Callable[[str], Any]:
    """``vectors("signatures.json")`` -> parsed file."""
    return load_vectors


@pytest.fixture(scope="session")
def spec_samples() -> Path:
    """Folder of messages captured from a real node."""
    return SPEC / "samples"


def _require_brokers() -> bool:
    return os.environ.get("PYE2_REQUIRE_BROKERS", "") not in ("", "0", "false", "no")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _broker_url(env: str, default: str, port: int, how: str) -> str:
    url = os.environ.get(env, default)
    if not _reachable(url, port):
        msg = f"broker not reachable at {url} (set {env}); start one with: {how}"
        if _require_brokers():
            pytest.fail(msg + " [PYE2_REQUIRE_BROKERS=1: this is a failure, not a skip]")
        pytest.skip(msg)
    return url


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """URL of a reachable MQTT broker (Mosquitto on this machine)."""
    return _broker_url("PYE2_MQTT_URL", "mqtt://127.0.0.1:1883", 1883,
                       "mosquitto -d -p 1883   (or: apt-get install mosquitto)")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of a reachable AMQP broker (RabbitMQ on this machine)."""
    return _broker_url("PYE2_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", 5672,
                       "rabbitmq-server -detached   (or: apt-get install rabbitmq-server)")


@pytest.fixture()
def plugin_host() -> Any:
    """A loaded PluginHost that sees our own entry points (installed package)."""
    from pye2.plugins import PluginHost

    return PluginHost().load()
