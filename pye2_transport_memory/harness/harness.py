"""NetworkHarness: one simulated network for one test, with assertion helpers.

What the ``pye2_network`` fixture returns. It owns a
:class:`~pye2_transport_memory.network.SimulatedNetwork` (on the in-memory hub
with virtual time, or hosted on a real broker under a private topic root),
the sessions it made, and a :class:`CommandRecorder`; :meth:`close` stops them
all. The helpers read the same on both::

    session = pye2_network.session()
    session.create_pipeline(e2id="sim-node-2", name="cam", wait=True)
    assert "cam" in pye2_network.pipelines("sim-node-2")
    assert pye2_network.actions("sim-node-2") == ["UPDATE_CONFIG"]
    pye2_network.wait_until(lambda: results, virtual_seconds=30)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pye2.domain.profiles import get_profile
from pye2.errors import ConfigError
from pye2_transport_memory.harness.options import NetworkOptions, merge_options, private_root
from pye2_transport_memory.harness.recorder import CommandRecorder, ReceivedCommand
from pye2_transport_memory.harness.waiting import WaitTimeout, wait_async, wait_sync
from pye2_transport_memory.network import SimulatedNetwork
from pye2_transport_memory.node._admin import ADMIN_PIPELINE
from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["NetworkHarness"]

log = logging.getLogger(__name__)

#: wall seconds :meth:`NetworkHarness.commands` waits for the recorder to catch up with a node on a broker
RECORDER_CATCH_UP = 5.0

#: seconds a new session waits to see every running node (virtual, or wall on a broker)
SESSION_READY = 60.0


class NetworkHarness:
    """A test's simulated network (see the module docstring).

    Build it with :meth:`create`; the fixture does. Attributes: ``network``
    (the :class:`SimulatedNetwork`), ``options``, ``broker`` (None on the
    in-memory hub), ``root`` (the topic root, private on a broker).
    """

    def __init__(self, network: SimulatedNetwork, options: NetworkOptions, broker: str | None) -> None:
        self.network = network
        self.options = options
        self.broker = broker
        self.recorder = CommandRecorder(network)
        self._sessions: list[Any] = []
        self._closed = False

    @classmethod
    def create(cls, options: NetworkOptions | None = None, broker: str | None = None,
               **overrides: Any) -> NetworkHarness:
        """Build the network (on ``broker`` under a private root unless ``options.virtual``), start it.

        ``overrides`` are :class:`NetworkOptions` fields (``nodes=2, seed=7``)
        applied over ``options``. Use it as a context manager where a fixture
        cannot serve, e.g. one fresh network per hypothesis example::

            with NetworkHarness.create(nodes=2, seed=seed) as net: ...

        Raises:
            ConfigError: a bad option (an unknown one names the closest valid one).
            Pye2Error: the broker cannot be reached (the network is stopped again).
        """
        options = merge_options([((), overrides)], base=options)
        broker = None if options.virtual else (broker or None)
        profile = get_profile(options.profile)
        if broker is not None:
            profile = profile.with_root(private_root())
        network = SimulatedNetwork(profile=profile, **options.network_kwargs(broker))
        harness = cls(network, options, broker)
        try:
            harness.recorder.attach()
            if options.start:
                network.start()
        except BaseException:
            harness.close()
            raise
        return harness

    def __repr__(self) -> str:
        return f"<NetworkHarness {self.network!r}>"

    def __enter__(self) -> NetworkHarness:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- what the network is ----------------------------------------------------------------
    @property
    def virtual(self) -> bool:
        """True on virtual time (the in-memory hub); False on the wall clock (a broker)."""
        return not self.network.realtime

    @property
    def profile(self) -> Any:
        """The wire profile, with the private root on a broker."""
        return self.network.profile

    @property
    def root(self) -> str:
        """The topic root (private on a broker)."""
        return str(self.network.profile.root)

    @property
    def clock(self) -> Any:
        """The network's clock (a ``VirtualClock`` or the wall clock)."""
        return self.network.clock

    @property
    def faults(self) -> Any:
        """The network's :class:`~pye2_transport_memory.faults.FaultPlan`."""
        return self.network.faults

    @property
    def node_ids(self) -> list[str]:
        """The node ids, in order."""
        return list(self.network.node_ids)

    @property
    def nodes(self) -> dict[str, SimulatedNode]:
        """Node id -> :class:`SimulatedNode`."""
        return self.network.nodes

    @property
    def addresses(self) -> dict[str, str]:
        """Node id -> address."""
        return self.network.addresses

    def node(self, name: str) -> SimulatedNode:
        """A node by id, alias or address (ConfigError naming the known ones)."""
        return self.network.node(name)

    # -- sessions -----------------------------------------------------------------------------
    def session(self, *, wait_for_nodes: bool = True, **kwargs: Any) -> Any:
        """A connected ``pye2.Session`` on this network (closed with the harness).

        Keyword arguments go to ``Session`` (default ``name="pytest"``). With
        ``wait_for_nodes`` it returns once the session has seen every running
        node's heartbeat (on a broker the nodes are asked to beat at once).

        Raises:
            WaitTimeout: a running node was not seen in time.
        """
        kwargs.setdefault("name", "pytest")
        session = self.network.session(**kwargs)
        self._sessions.append(session)
        session.connect()
        if wait_for_nodes:
            running = [n for n in self.network.nodes.values() if n.is_running]
            if not self.virtual:
                with self.network.lock:
                    for node in running:
                        node.send_heartbeat()
            self.wait_until(lambda: all(session.check_node_online(n.node_id) or session.check_node_online(n.address)
                                        for n in running),
                            virtual_seconds=SESSION_READY,
                            message=f"the session sees every running node ({', '.join(n.node_id for n in running)})")
        return session

    # -- time ---------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: virtual time moves at once; on a broker this waits that long."""
        if self.virtual:
            self.network.advance(seconds)
            return
        wake = self.network.clock.condition
        with wake:
            wake.wait_for(lambda: False, seconds)

    def wait_until(self, condition: Callable[[], object], virtual_seconds: float = 30.0, *,
                   wall_seconds: float | None = None, message: str | None = None) -> bool:
        """Run the network until ``condition()`` is truthy; True, else :class:`WaitTimeout` (an AssertionError).

        Args:
            condition: no-argument callable, evaluated between steps.
            virtual_seconds: how much virtual time may pass.
            wall_seconds: the bound on a broker (default: ``virtual_seconds``).
            message: what the failure says instead of the condition's name.
        """
        __tracebackhide__ = True
        return wait_sync(self.network, condition, virtual_seconds, wall_seconds, message)

    async def wait_until_async(self, condition: Callable[[], object], virtual_seconds: float = 30.0, *,
                               wall_seconds: float | None = None, message: str | None = None) -> bool:
        """:meth:`wait_until` for ``async def`` tests: the event loop keeps running while it waits."""
        __tracebackhide__ = True
        return await wait_async(self.network, condition, virtual_seconds, wall_seconds, message)

    # -- what the nodes hold and received -------------------------------------------------------------
    def pipelines(self, node: str, *, include_admin: bool = False) -> list[str]:
        """Names of the pipelines ``node`` runs, sorted (its admin pipeline only with ``include_admin``)."""
        target = self.node(node)
        with self.network.lock:
            names = list(target.pipelines)
        return sorted(n for n in names if include_admin or n != ADMIN_PIPELINE)

    def pipeline_config(self, node: str, name: str) -> dict[str, Any]:
        """The stored config of pipeline ``name`` on ``node`` (a copy).

        Raises:
            ConfigError: the node runs no such pipeline (naming those it runs).
        """
        target = self.node(node)
        with self.network.lock:
            config = target.pipelines.get(name)
            if config is None:
                raise ConfigError(f"{target.node_id} runs no pipeline {name!r}; it runs: "
                                  f"{', '.join(self.pipelines(node)) or 'none'}")
            return dict(config)

    def instances(self, node: str, pipeline: str | None = None) -> list[tuple[str, str, str]]:
        """``(pipeline, signature, instance_id)`` of the plugin instances ``node`` runs, sorted."""
        target = self.node(node)
        with self.network.lock:
            keys = list(target.instances)
        return sorted(k for k in keys if (pipeline is None or k[0] == pipeline) and k[0] != ADMIN_PIPELINE)

    def commands(self, node: str, action: str | None = None) -> list[ReceivedCommand]:
        """Commands that arrived for ``node`` (only ``action`` ones if given), oldest first.

        On a broker the recorder's copy travels apart from the node's: this
        first waits (up to ``RECORDER_CATCH_UP`` seconds) until the recorder has
        had every command the node counts as received.
        """
        target = self.node(node)
        if not self.virtual:
            try:
                wait_sync(self.network, lambda: self.recorder.delivered(target.node_id)
                          >= target.counters["commands_received"], 0.0, RECORDER_CATCH_UP, None)
            except WaitTimeout:
                log.warning("command recorder: %s counts more commands than were recorded", target.node_id)
        return [c for c in self.recorder.commands(target.node_id) if action is None or c.action == action]

    def actions(self, node: str) -> list[str]:
        """The ``ACTION`` of each command that arrived for ``node``, oldest first."""
        return [c.action for c in self.commands(node)]

    # -- lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the sessions, stop the nodes, close every transport (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for session in self._sessions:
            try:
                session.close()
            except Exception:  # teardown is best effort: one broken session must not leak the network
                log.exception("closing %r failed", session)
        self._sessions.clear()
        self.network.stop()
