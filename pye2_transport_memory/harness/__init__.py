"""Test harness behind pye2's pytest plugin: a simulated network per test, and helpers to assert on it.

The plugin (:mod:`pye2_transport_memory.pytest_plugin`) imports this package
only when a test asks for a ``pye2_*`` fixture. Import it yourself for type
hints (``def test_x(pye2_network: NetworkHarness)``) or to use the harness
without pytest.
"""

from __future__ import annotations

from pye2_transport_memory.harness.harness import NetworkHarness
from pye2_transport_memory.harness.options import NetworkOptions, merge_options
from pye2_transport_memory.harness.recorder import CommandRecorder, ReceivedCommand
from pye2_transport_memory.harness.waiting import WaitTimeout

__all__ = ["CommandRecorder", "NetworkHarness", "NetworkOptions", "ReceivedCommand", "WaitTimeout", "merge_options"]
