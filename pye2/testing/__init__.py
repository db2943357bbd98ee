"""pye2's shipped test kit: the transport conformance suite and its helpers.

Importing it needs pytest and hypothesis (``pip install 'pye2[test]'``); the
rest of pye2 never imports it. A transport author subclasses
:class:`TransportTests` (see :mod:`pye2.testing.transport` for the recipe) and
may implement :class:`SupportsForcedReconnect` to get the reconnect checks.
"""

from __future__ import annotations

from pye2.testing import strategies
from pye2.testing.collect import (
    Collector,
    EventRecorder,
    SupportsForcedReconnect,
    Watched,
    address_matches,
    can_force_reconnect,
    force_reconnect_and_wait,
    sync,
)
from pye2.testing.stateful import TransportMachine, run_transport_machine
from pye2.testing.transport import TransportTests

__all__ = [
    "Collector",
    "EventRecorder",
    "SupportsForcedReconnect",
    "TransportMachine",
    "TransportTests",
    "Watched",
    "address_matches",
    "can_force_reconnect",
    "force_reconnect_and_wait",
    "run_transport_machine",
    "strategies",
    "sync",
]
