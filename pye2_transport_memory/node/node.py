"""SimulatedNode: an Execution Engine node that speaks the protocol over any Transport.

Features (node.md; the same node runs on the in-memory hub, Mosquitto or RabbitMQ):

* identity: a secp256k1 key (derived from ``seed`` and the node id unless
  given), alias = node id, address under the wire profile;
* commands on ``{root}/{alias}/config`` and ``{root}/{address}/config``:
  JSON decode (malformed: counted, logged), ``EE_ID`` target check,
  signature verification (v2 and legacy; on a secured node a bad or missing
  signature gives the -5000 notification and the command is dropped, on an
  unsecured one an ABNORMAL FUNCTIONING notification and it runs
  NON-VALIDATED), decryption of ``EE_IS_ENCRYPTED`` commands, allow-list
  (silent drop), then execution on the next main-loop tick
  (:mod:`~pye2_transport_memory.node._commands`);
* heartbeats every ``heartbeat_interval`` (v2 or v1) with the full status
  field set, immediate ones on heartbeat commands, STOP and RESTART;
* pipelines and plugins on clock timers (:mod:`~pye2_transport_memory.node._runtime`);
* every outbound message carries the node envelope of node.md section 2 and is
  signed under the node's profile; ``EE_MESSAGE_ID`` comes from the seeded
  generator, so runs are reproducible.

Threading: every entry point (transport delivery, clock timer) runs under
``lock`` (one re-entrant lock per network), so with a real clock and broker
threads the node's state is only touched by one thread at a time.
"""

from __future__ import annotations

import copy
import json
import logging
import marshal
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from pye2.domain.profiles import AIXP, WireProfile, get_profile
from pye2.errors import ConfigError, Pye2Error
from pye2.ports.clock import Clock, Timer
from pye2.ports.signer import Signer
from pye2.ports.transport import Delivery, Subscription, Transport
from pye2.wire import Identity, decrypt_command
from pye2_transport_memory.node._admin import ADMIN_PIPELINE, admin_pipeline_config
from pye2_transport_memory.node._allow import AllowList
from pye2_transport_memory.node._commands import Command, ConfigManager
from pye2_transport_memory.node._heartbeat import Machine, StatusBuilder, encode_status
from pye2_transport_memory.node._intake import accept_command, inject
from pye2_transport_memory.node._life import LifeGuards
from pye2_transport_memory.node._notify import NORMAL, Notice, notification_body
from pye2_transport_memory.node._outbound import Publisher
from pye2_transport_memory.node._payload import time_text
from pye2_transport_memory.node._runtime import Runtime
from pye2_transport_memory.node._sharedmon import SharedMonitor
from pye2_transport_memory.node._signing import derive_secret, identity_from_secret, make_signer
from pye2_transport_memory.node.netmon import OPEN_TAG, NetMon01, NetworkMonitor, ReceiveCache, body_of
from pye2_transport_memory.node.plugin_base import DataSourceRegistry, PluginRegistry, SimDataSource, SimPlugin

__all__ = ["SimulatedNode"]

log = logging.getLogger(__name__)

_COMMUNICATORS = ("DEFAULT", "COMMANDCONTROL", "HEARTBEATS", "NOTIFICATIONS")


class _Sources:
    """The node's data sources: the given registry first, then the built-in ones."""

    def __init__(self, first: DataSourceRegistry | None) -> None:
        from pye2_transport_memory.node.sources import IotQueueListener, NetworkListener, Void

        self._first = first
        self._builtin = DataSourceRegistry([Void, IotQueueListener, NetworkListener])

    def get(self, type_name: str) -> type[SimDataSource] | None:
        found = self._first.get(type_name) if self._first is not None else None
        return found if found is not None else self._builtin.get(type_name)


def _default_plugins() -> PluginRegistry:
    try:
        from pye2_transport_memory.node.plugins.catalog import default_plugins
    except ImportError as exc:  # the catalog is optional for a bare node
        log.warning("simulated node: plugin catalog unavailable (%s)", exc)
        return PluginRegistry()
    return PluginRegistry(default_plugins())


class SimulatedNode(LifeGuards):
    """A simulated Execution Engine node (see the module docstring).

    Args:
        node_id: the alias (``EE_ID``).
        transport: any Transport (connected by :meth:`start` if needed).
        clock: the Clock port (virtual or system).
        profile: wire profile (``AIXP`` or ``RATIO1``).
        identity: the node key; default derived from ``seed`` and ``node_id``.
        seed: seeds the key, the machine figures and every random choice.
        heartbeat_interval: seconds between heartbeats (``EE_HB_TIME``).
        heartbeat_version: ``"v2"`` (compressed) or ``"v1"``.
        secured: ``SECURED``: drop commands whose signature does not verify.
        allow_list: who may command the node besides itself: an
            :class:`~pye2_transport_memory.node._allow.AllowList`, or a list of
            addresses (prefix-insensitive); None: nobody else (pass
            ``AllowList(allow_any=True)`` to open the node to every signed sender).
        eth_enabled: the node's signing mode (a real node's ``EE_ETH_ENABLED``):
            on, it signs with ``EE_ETH_SENDER``/``EE_ETH_SIGN`` and accepts commands
            signed with or without them; off, it signs without them and hashes them
            as data when verifying, so a command that left them out of its hash
            fails ("Corrupted digest!", then ``-5000`` on a secured node).
            Default: the profile's (on under RATIO1, off under AIXP).
        plugins / sources: registries (default: the simulator's catalog).
        supervisor: run ``NET_MON_01`` and publish the network status.
        gpu: report a GPU (None: only under the RATIO1 profile, DECISIONS 4).
        lock: the network's re-entrant lock (default: the node's own).
        receive_cache: a :class:`ReceiveCache` shared by the network's nodes.
        restart_delay: seconds a RESTART command keeps the node down.
        main_loop_delay: seconds from receiving a command to executing it.
        on_activity: called after every delivery or timer the node handled
            (the network wakes ``run_until`` waiters on the wall clock with it).
        shared_monitor: the network's
            :class:`~pye2_transport_memory.node._sharedmon.SharedMonitor`; the node
            joins it instead of subscribing to ``{root}/ctrl`` itself (same hub
            and virtual clock only).
        deliver_on_clock: hand each delivery to the clock (``call_later(0)``)
            instead of handling it on the transport's thread. Default: on a
            wall clock (a clock without ``advance``), so a broker's network
            thread never waits for the node lock (it may be needed to
            complete a subscribe the lock holder is waiting for).
    """

    def __init__(
        self,
        node_id: str,
        *,
        transport: Transport,
        clock: Clock,
        profile: WireProfile | str = AIXP,
        identity: Identity | None = None,
        seed: int | str = 0,
        heartbeat_interval: float = 10.0,
        heartbeat_version: str = "v2",
        secured: bool = True,
        allow_list: AllowList | list[str] | tuple[str, ...] | None = None,
        eth_enabled: bool | None = None,
        plugins: PluginRegistry | None = None,
        sources: DataSourceRegistry | None = None,
        supervisor: bool = False,
        gpu: bool | None = None,
        lock: threading.RLock | None = None,
        receive_cache: ReceiveCache | None = None,
        restart_delay: float = 5.0,
        main_loop_delay: float = 0.1,
        on_activity: Callable[[], None] | None = None,
        deliver_on_clock: bool | None = None,
        shared_monitor: SharedMonitor | None = None,
    ) -> None:
        if not isinstance(node_id, str) or not node_id or any(c in node_id for c in "/+#"):
            raise ConfigError(f"node_id must be a non-empty string usable in a topic, not {node_id!r}")
        if heartbeat_version not in ("v1", "v2"):
            raise ConfigError(f"heartbeat_version must be 'v1' or 'v2', not {heartbeat_version!r}")
        if not heartbeat_interval > 0:
            raise ConfigError(f"heartbeat_interval must be positive, not {heartbeat_interval!r}")
        self.node_id = node_id
        self.transport = transport
        self.clock = clock
        self.profile = get_profile(profile)
        if identity is None:
            secret = derive_secret(seed, node_id)
            self.identity = identity_from_secret(secret)
            signer: Signer = make_signer(secret, self.identity)
        else:
            self.identity = identity
            signer = identity
        self._address = self.identity.address(self.profile)
        self.seed = seed
        self.heartbeat_interval = float(heartbeat_interval)
        self.heartbeat_version = heartbeat_version
        self.secured = bool(secured)
        self.allow = allow_list if isinstance(allow_list, AllowList) else AllowList(
            [str(a) for a in allow_list or ()])
        self.eth_enabled = self.profile.eth_fields if eth_enabled is None else bool(eth_enabled)
        self.refused_senders: set[str | None] = set()
        #: the profile the node signs with and checks commands against (its signing mode)
        self.sign_profile = self.profile.with_eth(self.eth_enabled)
        self.plugins = plugins if plugins is not None else _default_plugins()
        self.sources = _Sources(sources)
        self.supervisor = bool(supervisor)
        self.admin_plugins: dict[str, type[SimPlugin]] = {"NET_MON_01": NetMon01} if supervisor else {}
        self.lock = lock if lock is not None else threading.RLock()
        self.receive_cache = receive_cache if receive_cache is not None else ReceiveCache(self.profile)
        # Receivers sharing the cache need not redo the curve maths on this node's signatures.
        self.signer: Signer = self.receive_cache.witness(signer)
        self.restart_delay = float(restart_delay)
        self.main_loop_delay = float(main_loop_delay)
        self._on_activity = on_activity
        self._defer = (not hasattr(clock, "advance")) if deliver_on_clock is None else bool(deliver_on_clock)
        self._rng = random.Random(f"pye2-sim-node:{seed}:{node_id}:plugins")
        self._ids = random.Random(f"pye2-sim-node:{seed}:{node_id}:ids")
        gpu = self.profile.name == "RATIO1" if gpu is None else gpu
        self.machine = Machine.from_rng(random.Random(f"pye2-sim-node:{seed}:{node_id}:machine"), gpu=bool(gpu))
        self._status_rng = random.Random(f"pye2-sim-node:{seed}:{node_id}:status")
        self.session_id = f"{node_id}-session"
        # state that survives restarts ("disk") and inspection aids
        self.disk: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self._counters: Counter[str] = Counter()
        self.notifications_sent: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.log_lines: deque[str] = deque(maxlen=200)
        self.is_running = False
        self.device_status = "STOPPED"
        self.runtime = Runtime(self)
        self.config_manager = ConfigManager(self)
        self.netmon = NetworkMonitor(self.address, self.receive_cache, self.time)
        self._shared_monitor = shared_monitor
        self._life = 0
        self._subs: list[Subscription] = []
        self._commands: deque[Command] = deque()
        self._tick_pending = False
        self._outbox: list[tuple[str, str, Any]] = []
        self.publisher = Publisher(self)
        self._status: StatusBuilder | None = None
        self.last_heartbeat: dict[str, Any] | None = None
        self._streams_written: tuple[bytes, str] | None = None  # CONFIG_STREAMS: (marshal image, JSON)

    def __repr__(self) -> str:
        return f"<SimulatedNode {self.node_id} {self.address} {'running' if self.is_running else 'stopped'}>"

    # -- NodeApi -------------------------------------------------------------------------
    @property
    def counters(self) -> Counter[str]:
        """What the node did, by kind (``heartbeats``, ``in_bytes``, ``commands_executed``...)."""
        feed = self.netmon.feed
        if feed is not None:  # heartbeats heard through the shared monitor count in in_bytes
            feed.catch_up(records=False)
        return self._counters

    @property
    def alias(self) -> str:
        """The node's ``EE_ID``."""
        return self.node_id

    @property
    def address(self) -> str:
        """The node's address under its profile."""
        return self._address

    @property
    def rng(self) -> random.Random:
        """Seeded generator for plugins."""
        return self._rng

    @property
    def id_rng(self) -> random.Random:
        """Seeded generator of message ids."""
        return self._ids

    @property
    def instances(self) -> dict[tuple[str, str, str], Any]:
        """Running instances: ``(pipeline, SIGNATURE, instance id) -> plugin object`` (None: reported only)."""
        return {(p, sig, iid): inst.plugin for p, pipe in self.runtime.pipelines.items()
                for (sig, iid), inst in pipe.instances.items()}

    def time(self) -> float:
        """The clock's wall time."""
        return self.clock.time()

    def log(self, message: str) -> None:
        """A node log line (kept for FULL heartbeats); nothing is published."""
        self.log_lines.append(f"[{time_text(self.time())}] {message}")
        log.debug("node %s: %s", self.node_id, message)

    def peers(self) -> list[Mapping[str, Any]]:
        """What the network monitor knows (itself included); see :class:`NetworkMonitor`."""
        return list(self.netmon.peers())

    def send_command(self, target: str, action: str, payload: Any) -> None:
        """Queue a command; sent after the current ``process`` (or on the next timer)."""
        if not self._outbox:
            self.call_later(0.0, self.flush_outbox)
        self._outbox.append((target, action, copy.deepcopy(payload)))

    def subscribe(self, address: str, handler: Callable[[str, bytes], None]) -> Callable[[], None]:
        """Subscribe on the node's transport (handler runs under the node lock)."""
        sub = self.transport.subscribe(address, self._guarded_fields(handler))
        self._subs.append(sub)

        def cancel() -> None:
            sub.cancel()
            if sub in self._subs:
                self._subs.remove(sub)

        return cancel

    def publish_payload(self, body: Mapping[str, Any], *, pipeline: str, signature: str, instance_id: str) -> None:
        """An extra payload of an instance (decorated like ``process`` output)."""
        self.runtime.extra_payload(dict(body), pipeline, signature, instance_id)

    # -- timers ---------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """A clock timer that runs under the lock and only in the node's current life."""
        # Timers of an earlier life are not tracked: they check the life and do nothing.
        return self.clock.call_later(delay, self._in_life(callback))

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Connect, subscribe, recreate the admin pipeline and stored pipelines, first heartbeat."""
        with self.lock:
            if self.is_running:
                return
            self.transport.connect()
            self._life += 1
            self.is_running = True
            self.device_status = "ONLINE"
            now = self.time()
            self._status = StatusBuilder(self.machine, self._status_rng, interval=self.heartbeat_interval,
                                         started=now)
            self.publisher.reset()
            self.netmon.forget()
            for topic in dict.fromkeys((self.profile.config(self.alias), self.profile.config(self.address))):
                self._subs.append(self.transport.subscribe(topic, self._guarded(self._on_command)))
            if self._shared_monitor is not None:
                self._subs.append(self._shared_monitor.join(self.node_id, self.netmon, self._counters,
                                                            self.transport))
            else:
                self._subs.append(self.transport.subscribe(self.profile.ctrl, self._guarded(self._on_ctrl)))
            for comm in _COMMUNICATORS:
                self.notify(Notice("CommunicationManager", NORMAL, f"Comm {comm} connected and subscribed", 1000,
                                   displayed=False))
            self.pipelines = {ADMIN_PIPELINE: admin_pipeline_config(time_text(now))}
            self.pipelines.update((k, copy.deepcopy(v)) for k, v in self.disk.items() if k != ADMIN_PIPELINE)
            for name, config in self.pipelines.items():
                self.runtime.start_pipeline(name, config)
            self.send_heartbeat("FULL")
            self._schedule_heartbeat()
            log.info("node %s (%s) started", self.alias, self.address)

    def stop(self) -> None:
        """Graceful stop: a last heartbeat (``DEVICE_STATUS`` SHUTDOWN), then silence."""
        with self.lock:
            if not self.is_running:
                return
            self.device_status = "SHUTDOWN"
            self.send_heartbeat("SIMPLE")
            self._halt()

    def crash(self) -> None:
        """Stop at once, publishing nothing (state on "disk" survives)."""
        with self.lock:
            if self.is_running:
                self._halt()
                log.info("node %s crashed", self.alias)

    def restart(self, delay: float = 0.0) -> None:
        """Graceful stop, then start again ``delay`` seconds later."""
        with self.lock:
            self.stop()
            if delay <= 0:
                self.start()
            else:
                self.clock.call_later(delay, self.start)

    def shutdown(self, action: str, *, initiator_id: str | None) -> None:
        """STOP / RESTART commands: final heartbeat, stop; RESTART comes back after ``restart_delay``."""
        self.device_status = action
        self.send_heartbeat("SIMPLE", initiator_id=initiator_id)
        self._halt()
        if action == "RESTART":
            life = self._life

            def come_back() -> None:
                with self.lock:
                    if self._life == life and not self.is_running:
                        self.start()

            self.clock.call_later(self.restart_delay, come_back)

    def _halt(self) -> None:
        self.is_running = False
        self.device_status = "STOPPED"
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()
        self.runtime.stop_all()
        self._commands.clear()
        self._outbox.clear()
        self._tick_pending = False
        self._life += 1

    # -- stored configs ------------------------------------------------------------------------
    def store_pipeline(self, name: str, config: dict[str, Any] | None) -> None:
        """Set (None: delete) a stored pipeline config and persist it to the node's "disk"."""
        if config is None:
            self.pipelines.pop(name, None)
            self.disk.pop(name, None)
        else:
            self.pipelines[name] = config
            if name != ADMIN_PIPELINE:
                self.disk[name] = copy.deepcopy(config)

    def reload_from_disk(self) -> int:
        """RELOAD_CONFIG_FROM_DISK: restart every pipeline from the persisted configs."""
        self.runtime.stop_all()
        admin = self.pipelines.get(ADMIN_PIPELINE) or admin_pipeline_config(time_text(self.time()))
        self.pipelines = {ADMIN_PIPELINE: admin}
        self.pipelines.update((k, copy.deepcopy(v)) for k, v in self.disk.items())
        for name, config in self.pipelines.items():
            self.runtime.start_pipeline(name, config)
        return len(self.pipelines) - 1

    # -- receiving -------------------------------------------------------------------------------
    def _on_ctrl(self, delivery: Delivery) -> None:
        self.counters["in_bytes"] += len(delivery.body)
        self.netmon.on_heartbeat(delivery.body)

    def is_me(self, target: Any) -> bool:
        """True when ``target`` is this node's alias, address (any prefix) or Ethereum address."""
        if not isinstance(target, str):
            return False
        if target == self.alias or (body_of(target) is not None and body_of(target) == body_of(self.address)):
            return True
        if target.startswith("0x") and not target.startswith("0xai_"):
            eth = getattr(self.identity, "eth_address", None)
            return isinstance(eth, str) and eth.lower() == target.lower()
        return False

    @property
    def whitelist(self) -> list[str]:
        """``EE_WHITELIST``: the allowed addresses with this profile's prefix (empty when open)."""
        return self.allow.entries(self.profile.address_prefix)

    @property
    def reported_secured(self) -> bool:
        """``SECURED`` as the heartbeat says it: signatures enforced and an allow-list (not open to anyone)."""
        return self.secured and not self.allow.allow_any

    def is_allowed(self, sender: str | None) -> bool:
        """The allow-list rule: listed addresses, the network's sessions and the node itself (or anyone if open)."""
        return self.allow.allows(body_of(sender), body_of(self.address))

    def _on_command(self, delivery: Delivery) -> None:
        cmd = accept_command(self, delivery)
        if cmd is not None:
            self._enqueue(cmd)

    def decrypt_message(self, message: Mapping[str, Any], sender: str | None) -> dict[str, Any]:
        """The clear view of an encrypted message sent to this node (raises ``CryptoError``)."""
        return decrypt_command(message, receiver=self.identity, sender_address=sender)

    def _enqueue(self, cmd: Command) -> None:
        self._commands.append(cmd)
        if not self._tick_pending:
            self._tick_pending = True
            self.call_later(self.main_loop_delay, self._main_tick)

    def _main_tick(self) -> None:
        self._tick_pending = False
        while self._commands and self.is_running:
            cmd = self._commands.popleft()
            self.counters["commands_executed"] += 1
            try:
                if not self.config_manager.execute(cmd):
                    self.counters["unknown_action"] += 1
            except Exception:  # a bug must not kill the node's main loop; it is logged loudly
                self.counters["command_errors"] += 1
                log.exception("node %s: command %s failed", self.alias, cmd.action)
        if self.is_running:
            self.flush_outbox()

    # -- heartbeats ----------------------------------------------------------------------------------
    def _schedule_heartbeat(self) -> None:
        def beat() -> None:
            self.send_heartbeat("SIMPLE")
            self._schedule_heartbeat()

        self.call_later(self.heartbeat_interval, beat)

    def send_heartbeat(self, kind: str = "SIMPLE", *, initiator_id: str | None = None) -> dict[str, Any]:
        """Publish a heartbeat now (``kind``: SIMPLE, FULL or TIMERS); returns the signed message."""
        assert self._status is not None, "start() the node first"
        tags = {OPEN_TAG: True} if self.allow.allow_any else None
        active = self.runtime.active_plugins_json()
        entries, entries_text = self.allow.entries_json(self.profile.address_prefix)
        whitelist = list(entries)
        config_streams: list[Mapping[str, Any]] = list(self.pipelines.values())
        status = self._status.status(
            self.time(), address=self.address,
            whitelist=whitelist,
            secured=self.reported_secured, supervisor=self.supervisor, device_status=self.device_status,
            config_streams=config_streams, active_plugins=active[0],
            counters=self.counters, dct_stats=self.runtime.dct_stats(), kind=kind, initiator_id=initiator_id,
            log_lines=list(self.log_lines) if kind == "FULL" else None, tags=tags)
        # The allow-list's JSON is written once while it stays the same (strings only: equal lists
        # are written alike); a tag that replaced the list would be encoded as usual.
        listed = status.get("EE_WHITELIST")
        fragments = dict(self._status.fragments)
        if type(listed) is list and listed == whitelist:
            fragments["EE_WHITELIST"] = (listed, entries_text)
        streams_text = self._config_streams_json(config_streams)
        if streams_text is not None:
            fragments["CONFIG_STREAMS"] = (config_streams, streams_text)
        body, text = encode_status(status, self.heartbeat_version, active_plugins=active, fragments=fragments)
        signed = self.publish_event(self.profile.ctrl, "HEARTBEAT", body, path=(None, None, None),
                                    heartbeat=None if text is None else (text, status))
        self.counters["heartbeats"] += 1
        self.netmon.observe(self.address, {**signed, **status})
        self.last_heartbeat = signed
        return signed

    def _config_streams_json(self, streams: list[Mapping[str, Any]]) -> str | None:
        """``json.dumps(streams)``, written again only when their contents changed (None: not writable).

        The pipelines change seldom but may be changed in place, so the text is
        remembered with a ``marshal`` image of the list: equal images are equal
        structures of the same exact types (1, 1.0 and True differ, NaN is not
        None), hence the same JSON. What marshal refuses is written every time.
        """
        try:
            image = marshal.dumps(streams, 2)
        except (ValueError, TypeError):
            image = None
        known = self._streams_written
        if image is not None and known is not None and known[0] == image:
            return known[1]
        try:
            text = json.dumps(streams)
        except (TypeError, ValueError, RecursionError):
            return None  # encode_status reports it
        self._streams_written = None if image is None else (image, text)
        return text

    # -- publishing -------------------------------------------------------------------------------------
    def publish_event(self, topic: str, event_type: str, body: dict[str, Any], *,
                      path: tuple[str | None, str | None, str | None],
                      heartbeat: tuple[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Envelope, sign and publish an event body (modified in place); returns the signed dict.

        ``heartbeat``: for a v2 heartbeat, ``(text, status)``: the JSON
        compressed into ``ENCODED_DATA`` and the status it encodes.
        """
        return self.publisher.event(topic, event_type, body, path=path, heartbeat=heartbeat)

    def emit_payload(self, body: dict[str, Any], *, pipeline: str, signature: str, instance_id: str,
                     encrypt: bool, pipeline_config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Publish a decorated payload (images encoded; encrypted for the initiator when asked)."""
        return self.publisher.payload(body, pipeline=pipeline, signature=signature, instance_id=instance_id,
                                      encrypt=encrypt, pipeline_config=pipeline_config)

    def send_remote_command(self, target: str, action: str, payload: Any) -> dict[str, Any]:
        """Sign and publish a command to a peer node; returns the signed dict."""
        return self.publisher.command(target, action, payload)

    # -- notifications --------------------------------------------------------------------------------
    def notify(self, notice: Notice) -> dict[str, Any]:
        """Publish a notification; returns the signed message (also kept in ``notifications_sent``)."""
        body = notification_body(notice, time_text(self.time()))
        signed = self.publish_event(self.profile.notif, "NOTIFICATION", body, path=notice.path)
        self.counters["notifications"] += 1
        self.notifications_sent.append(signed)
        return signed

    # -- commands this node sends ---------------------------------------------------------------------
    def flush_outbox(self) -> None:
        """Send queued plugin commands (to itself they bypass the broker)."""
        outbox, self._outbox = self._outbox, []
        for target, action, payload in outbox:
            if self.is_me(target):  # LOCAL_COMMAND_BYPASS: no broker, trusted as validated
                inject(payload, sender=self.address, initiator=self.alias, session=self.session_id, validated=True)
                self._enqueue(Command(action, payload, self.address, self.alias, self.session_id, True))
                continue
            try:
                self.send_remote_command(target, action, payload)
            except Pye2Error as exc:
                log.warning("node %s: command %s to %s not sent: %s", self.alias, action, target, exc)

