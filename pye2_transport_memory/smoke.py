"""A simulated node on any transport, for the conformance kit's Session smoke test.

A transport author's test file provides::

    @pytest.fixture
    def make_node(self):
        return start_smoke_node

and the kit starts a node on a transport from ``make_transport``, connects a
``pye2.Session`` on another, creates a pipeline with custom code and waits
for its result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pye2.domain.profiles import WireProfile
from pye2.ports.clock import Clock
from pye2.ports.transport import Transport

__all__ = ["SmokeNode", "start_smoke_node"]


@dataclass
class SmokeNode:
    """A started simulated node and the clock a client session must share with it."""

    node: Any
    clock: Clock
    owns_clock: bool

    @property
    def alias(self) -> str:
        return str(self.node.alias)

    def stop(self) -> None:
        self.node.stop()
        self.node.transport.close()
        if self.owns_clock:
            close = getattr(self.clock, "close", None)
            if close is not None:
                close()


def start_smoke_node(transport: Transport, profile: WireProfile, *, clock: Clock | None = None,
                     heartbeat_interval: float = 1.0) -> SmokeNode:
    """Start a simulated node on ``transport`` (wall clock unless ``clock`` is given)."""
    from pye2.adapters.system_clock import SystemClock
    from pye2_transport_memory.node._allow import AllowList
    from pye2_transport_memory.node.node import SimulatedNode

    owns = clock is None
    clock = clock if clock is not None else SystemClock()
    # open to every signed sender: the kit's session has a key of its own, and the node lives for one test
    node = SimulatedNode(f"smoke-{uuid.uuid4().hex[:8]}", transport=transport, clock=clock, profile=profile,
                         heartbeat_interval=heartbeat_interval, allow_list=AllowList(allow_any=True))
    node.start()
    return SmokeNode(node, clock, owns)
