"""Session: the client's connection to the network.

A thin shell over the parts that do the work: the transport (a port), the
:class:`~pye2.service.engine.ProtocolEngine` (bytes <-> events), the
:class:`~pye2.domain.network.NetworkView` (who is online), the
:class:`~pye2.service.dispatch.Dispatcher` (user callbacks) and the
:class:`~pye2.service.confirmations.ConfirmationTracker` (command outcomes).

Threads: transport threads only put ``(kind, bytes)`` into a bounded inbox;
one dispatcher thread decodes, verifies and runs user callbacks, so user code
never runs on a network thread (with ``verify_workers``, worker processes check
the signatures of large batches for it). On a virtual clock (the simulated network)
there are no threads at all: messages are processed as the clock advances,
deterministically.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, cast

from pye2.domain.keys import same_address
from pye2.domain.logtext import clip
from pye2.domain.messages import KIND_HEARTBEAT, KIND_NOTIFICATION, KIND_PAYLOAD, Event, Rejected, node_time
from pye2.domain.network import DEFAULT_ONLINE_TIMEOUT, NetworkView, NodeRecord
from pye2.domain.notifications import ExpectedResponse
from pye2.domain.profiles import AIXP, WireProfile, get_profile
from pye2.domain.replay import DEFAULT_REPLAY_AGE, DEFAULT_REPLAY_ENTRIES, ReplayGuard
from pye2.domain.sharing import validate_share_group
from pye2.errors import ConfigError, NodeOffline, NotAllowed, PipelineNotFound, Pye2Error, TransportError
from pye2.ports.clock import Clock
from pye2.ports.transport import ConnectionEvent, Delivery, Subscription, SupportsSharedSubscriptions, Transport
from pye2.service.confirmations import Confirmation, ConfirmationTracker, Expectation
from pye2.service.decode_pool import default_decode_threads
from pye2.service.directory import NodeDirectory
from pye2.service.dispatch import Dispatcher
from pye2.service.engine import ProtocolEngine
from pye2.service.inbox import DEFAULT_MAX_BYTES as DEFAULT_INBOX_BYTES
from pye2.service.inbox import Inbox
from pye2.service.options import SessionOptions, unknown_option_error
from pye2.service.router import Router
from pye2.service.sequencer import CommandSequencer
from pye2.service.settings import eth_setting, resolve_settings, trusted_nodes_from_env
from pye2.service.stats import SessionStats
from pye2.service.worker import DispatchWorker

if TYPE_CHECKING:
    from pye2.plugins.host import PluginHost
    from pye2.service.handles import Pipeline
    from pye2.service.verify_workers import VerifyPool

__all__ = ["Session"]

log = logging.getLogger("pye2.session")

#: inbox items of this kind carry a ConnectionEvent for ``on_connection``
KIND_CONNECTION = "connection"

#: default key file, as the original SDK's ``_pk_sdk.pem`` (inside PYE2_HOME, default ~/.pye2)
DEFAULT_KEY_FILE = "_pk_sdk.pem"
#: virtual seconds ``run(wait=True)`` may cover on a simulated network before giving up
VIRTUAL_RUN_LIMIT = 24 * 3600.0

#: what is left of the trust model when signatures are not enforced (logged once at connect)
UNVERIFIED_WARNING = {
    "warn": "a message whose signature fails is delivered anyway, as if from the address it claims; "
            "a forger who writes a node's address into EE_SENDER is taken for that node",
    "off": "no signature is checked: any sender can claim to be any node; only replays of identical "
           "messages and claims of a name pinned or bound to another address are refused",
}


def _given(options: SessionOptions, *names: str, rename: str | None = None) -> dict[str, Any]:
    """The options among ``names`` that were given (not None), as keyword arguments (one of them renamed)."""
    return {(rename or name): getattr(options, name) for name in names if getattr(options, name) is not None}


#: Session's parameters that are not SessionOptions (for the suggestions of an unknown option)
_CONNECTION_PARAMETERS = ("host", "port", "user", "pwd", "name", "transport", "profile", "config", "filter_workers",
                          "on_heartbeat", "on_notification", "on_payload", "silent", "identity", "verify", "clock")


class Session:
    """A connection to the network: watch nodes, deploy pipelines, receive results.

    Args:
        host, port, user, pwd: broker settings (``host`` alone means MQTT, as in
            the original SDK); each falls back to ``PYE2_HOST`` ... then ``.env``.
        name: this client's id on the network (``INITIATOR_ID`` of its commands).
        transport: a registered name (``"mqtt"``, ``"amqp"``, ``"memory"``, ``"sim"``),
            a URL (``"mqtt://user:pwd@host:1883"``) or a Transport object.
        profile: wire profile (``AIXP`` default, ``RATIO1``), or its name.
        config: original-SDK channel overrides, e.g. ``{"CTRL_CHANNEL": {"TOPIC": "x/ctrl"}}``.
        filter_workers: only call back for these nodes (ids or addresses).
        on_heartbeat: ``f(session, e2id, data: dict)``.
        on_notification: ``f(session, e2id, data: Payload)``.
        on_payload: ``f(session, e2id, pipeline, signature, instance, data: Payload)``.
        silent: quieter logging (the ``pye2`` logger at WARNING instead of INFO).
        identity: our key (``pye2.wire.Identity``); default: the key file in
            ``PYE2_HOME`` (``~/.pye2``), created on first connect.
        verify: ``"strict"`` (drop and count messages whose signature fails),
            ``"warn"`` (log and deliver) or ``"off"``.
        clock: time source; default the transport's (simulated network) or the system clock.

    Every option below is a typed keyword parameter, gathered into
    :class:`~pye2.service.options.SessionOptions` (``session.options``) and
    checked at construction; an unknown one is a ``ConfigError`` that names the
    closest valid option, and a type checker refuses it too.

    Keyword options: ``online_timeout`` (60 s), ``command_timeout`` (30 s),
    ``inbox_size`` (100000), ``inbox_policy`` (``"drop_oldest"``),
    ``slow_callback_threshold`` (1 s), ``blocked_callback_timeout`` (10 s),
    ``decode_threads`` (threads that parse and verify received messages on
    wall-clock sessions, the dispatcher's included: ``$PYE2_DECODE_THREADS``, else 1),
    ``verify_workers`` (processes that check signatures on wall-clock sessions,
    so verified ingest uses more than one core: ``$PYE2_VERIFY_WORKERS``, else one
    per usable core beyond the first, at most 3 (0 = in the dispatcher thread); started
    with the first large batch, stopped by
    ``close``; ignored with ``verify="off"``; see :mod:`pye2.service.verify_workers`),
    ``encrypt_comms`` (RATIO1 only), ``root_topic``, ``serializer`` (``"json"``),
    ``plugin_host``, ``env_file`` (``".env"``), ``key_path``,
    ``on_connection`` (``f(session, event)``), ``connect_timeout``.

    ``share_group`` (``$PYE2_SHARE_GROUP``; letters, digits, ``-``, ``_``): scale
    out on the broker. Sessions (processes or machines) with the same group on the
    same broker and root split the payload stream: each payload reaches one of
    them (MQTT 5 shared subscription ``$share/<group>/...``, AMQP competing
    consumers of one queue), which verifies it and runs the callbacks. Heartbeats
    and notifications still reach every member, so each one knows the nodes and
    can send commands and get their confirmations. Payload numbering gaps are
    not counted as ``missed_payloads`` (the other members got them). Needs a transport
    with shared subscriptions (MQTT, AMQP, the simulated network; else
    ``ConfigError`` at connect). See ``docs/scale-out.md``.

    ``eth``: how commands are signed: ``"auto"`` (default; ``$PYE2_ETH``): the
    way each node signs its own messages (ETH mode: with ``EE_ETH_*`` fields left
    out of the hash; a real node's default: without), the profile's way until the
    node is heard; ``True`` / ``False`` for every node.

    Trust options (see the docs' security model): ``trusted_nodes`` (a mapping
    name -> address that pins names, or a list of trusted addresses; default
    ``$PYE2_TRUSTED_NODES``), ``on_node_conflict``
    (``f(session, name, known_address, other_address)``, once per new claimant
    of a bound name), ``max_clock_skew`` (120 s: how much older than a command a
    notification's signed node time may be and still confirm it),
    ``replay_memory`` (200000 messages) and ``replay_max_age`` (600 s),
    ``max_nodes`` (20000 records) and ``max_status_bytes`` (64 MB of retained
    heartbeats), ``max_seq_gap`` (1000000), ``inbox_bytes`` (32 MB).
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        pwd: str | None = None,
        name: str = "pySDK",
        transport: str | Transport | None = None,
        profile: str | WireProfile | None = None,
        config: dict[str, Any] | None = None,
        filter_workers: Iterable[str] | None = None,
        on_heartbeat: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        on_payload: Callable[..., Any] | None = None,
        silent: bool = True,
        identity: Any = None,
        verify: str = "strict",
        clock: Clock | None = None,
        online_timeout: float = DEFAULT_ONLINE_TIMEOUT,
        command_timeout: float = 30.0,
        inbox_size: int = 100_000,
        inbox_policy: str = "drop_oldest",
        inbox_bytes: int = DEFAULT_INBOX_BYTES,
        slow_callback_threshold: float = 1.0,
        blocked_callback_timeout: float = 10.0,
        decode_threads: int | None = None,
        verify_workers: int | None = None,
        encrypt_comms: bool | None = None,
        root_topic: str | None = None,
        serializer: str = "json",
        plugin_host: PluginHost | None = None,
        env_file: str | os.PathLike[str] | None = ".env",
        key_path: str | os.PathLike[str] | None = None,
        on_connection: Callable[[Session, ConnectionEvent], Any] | None = None,
        connect_timeout: float | None = None,
        eth: bool | str | None = None,
        trusted_nodes: Mapping[str, str] | Iterable[str] | None = None,
        on_node_conflict: Callable[[Session, str, str, str], Any] | None = None,
        max_clock_skew: float | None = None,
        replay_memory: int = DEFAULT_REPLAY_ENTRIES,
        replay_max_age: float = DEFAULT_REPLAY_AGE,
        max_nodes: int | None = None,
        max_status_bytes: int | None = None,
        max_seq_gap: int | None = None,
        log: Any = None,
        blockchain_config: Any = None,
        secured: Any = None,
        share_group: str | None = None,
        **unknown: NoReturn,
    ) -> None:
        given = locals()  # (the options above, gathered by name into SessionOptions; a test keeps both in step)
        if unknown:
            raise unknown_option_error(unknown, [*SessionOptions.names(), *_CONNECTION_PARAMETERS])
        self.options = SessionOptions(**{name: given[name] for name in SessionOptions.names()})
        opts = self.options
        self.name = name
        self._transport_arg = transport if not isinstance(transport, str) else None
        self._settings = resolve_settings(
            host=host, port=port, user=user, pwd=pwd,
            transport=transport if isinstance(transport, str) else None,
            profile=profile.name if isinstance(profile, WireProfile) else profile,
            env_file=opts.env_file,
        )
        base = profile if isinstance(profile, WireProfile) else get_profile(self._settings.profile or AIXP)
        root = opts.root_topic
        self.profile: WireProfile = base.with_root(root) if root else base
        self._channel_config = dict(config or {})
        self.filter_workers = set(filter_workers) if filter_workers else None
        self.silent = silent
        logging.getLogger("pye2").setLevel(logging.WARNING if silent else logging.INFO)
        self.identity = identity
        self.verify = verify
        self.clock: Clock | None = clock
        self.online_timeout = float(opts.online_timeout)
        self.command_timeout = float(opts.command_timeout)
        self.eth: bool | None = eth_setting(opts.eth)
        group = opts.share_group
        if group is None:
            group = os.environ.get("PYE2_SHARE_GROUP") or None
        #: the share group this session's payload subscriptions join (None: it receives every payload)
        self.share_group: str | None = validate_share_group(group) if group is not None else None
        self.stats = SessionStats()
        self.network = NetworkView(self.online_timeout, **_given(opts, "max_nodes", "max_status_bytes"))
        pins = opts.trusted_nodes
        self.directory = NodeDirectory(
            self.profile, self.network,
            pins=pins if pins is not None else trusted_nodes_from_env(),
            replay=ReplayGuard(opts.replay_memory, float(opts.replay_max_age)),
            on_conflict=self._node_conflict)
        self.dispatcher = Dispatcher(self.stats, float(opts.slow_callback_threshold))
        self.inbox: Inbox[tuple[str, Any]] = Inbox(
            opts.inbox_size, opts.inbox_policy, max_bytes=opts.inbox_bytes, on_overflow=self._count_drop,
        )
        self._cond = threading.Condition()
        self.transport: Transport | None = None
        self.engine: ProtocolEngine | None = None
        self.confirmations: ConfirmationTracker | None = None
        self._subscriptions: list[Subscription] = []
        self.router = Router(self, directory=self.directory, dispatcher=self.dispatcher, stats=self.stats,
                             node_key=self.node_key, filter_workers=self.filter_workers,
                             count_gaps=self.share_group is None, **_given(opts, "max_seq_gap"))
        self._threaded = False
        self._worker: DispatchWorker | None = None
        self._connected = False
        self._closed = False
        self._close_requested = False
        self._lock = threading.RLock()
        for cb, table in ((on_heartbeat, "heartbeat"), (on_notification, "notification"), (on_payload, "payload")):
            if cb is not None:
                self.dispatcher.add(table, ("*",), cb)

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> Session:
        """Build the transport, load the key, subscribe, connect. Idempotent."""
        with self._lock:
            if self._connected:
                return self
            if self._closed:
                raise TransportError("session is closed")
            host = self._plugin_host()
            transport = self._transport_arg or self._make_transport(host)
            if self.share_group is not None and not isinstance(transport, SupportsSharedSubscriptions):
                raise ConfigError(f"share_group={self.share_group!r} needs a transport with shared subscriptions "
                                  f"(mqtt, amqp, memory); {getattr(transport, 'name', type(transport).__name__)!r} has none")
            self.transport = transport
            if self.clock is None:
                self.clock = getattr(transport, "clock", None) or self._system_clock()
            from pye2.adapters.system_clock import SystemClock

            self._threaded = isinstance(self.clock, SystemClock)
            if self.identity is None:
                self.identity = self._load_identity()
            encrypt = self.options.encrypt_comms
            serializer = host.serializer(self.options.serializer)
            from pye2.adapters.select import best_parser, best_sorted_text

            self.engine = ProtocolEngine(
                profile=self.profile,
                identity=self.identity,
                serializer=serializer,
                parse=best_parser(serializer),
                sorted_text=best_sorted_text(),
                formatter_lookup=host.formatter,
                verify=self.verify,
                encrypt=bool(self.profile.encrypt_commands if encrypt is None else encrypt)
                and self.profile.commands_by_address,
                prescreen=self.directory.prescreen,
            )
            self.confirmations = ConfirmationTracker(
                self.clock, self._cond, stats=self.stats, own=(self.engine.address, self.name),
                explain=self._explain_silence, **_given(self.options, "max_clock_skew", rename="max_skew"))
            self.router.on_heartbeat_of = self._check_allowed
            self.router.confirmations = self.confirmations
            self._sequencer = CommandSequencer(self.confirmations, transport.publish, self.stats)
            listener = self.options.on_connection
            if listener is not None and hasattr(transport, "add_connection_listener"):
                transport.add_connection_listener(lambda ev: self._deliver_connection_event(listener, ev))
            if self._threaded:
                self._worker = DispatchWorker(self.inbox, self._decode, self._apply, self.dispatcher, self.stats,
                                              name=self.name, decode_threads=int(self.options.decode_threads
                                                                 or default_decode_threads()),
                                              blocked_timeout=float(self.options.blocked_callback_timeout),
                                              verifier=self._verify_pool(serializer))
                self._worker.start()
            try:
                transport.connect()
                for kind, address in self._channels():
                    self._subscriptions.append(self._subscribe(transport, kind, address))
            except Pye2Error:
                self._stop_worker()
                raise
            self._connected = True
            log.info("session %r connected as %s (%s profile, verify=%s)", self.name,
                     self.engine.address, self.profile.name, self.verify)
            if self.verify != "strict":
                log.warning("session %r: verify=%r: %s", self.name, self.verify, UNVERIFIED_WARNING[self.verify])
            return self

    def _verify_pool(self, serializer: Any) -> VerifyPool | None:
        """The worker processes that check signatures (``verify_workers``), or None to check them inline."""
        from pye2.service.verify_workers import VerifyPool, VerifySpec, default_verify_workers

        raw = self.options.verify_workers
        workers = default_verify_workers() if raw is None else raw
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ConfigError(f"verify_workers must be a non-negative integer, not {workers!r}")
        if workers == 0 or self.verify == "off":
            return None
        assert self.engine is not None
        spec = VerifySpec.from_environment(self.profile, serializer,
                                           max_message_bytes=self.engine.max_message_bytes)
        return VerifyPool(spec, workers, name=self.name)

    def _plugin_host(self) -> PluginHost:
        host: PluginHost | None = self.options.plugin_host
        if host is None:
            from pye2.plugins.host import default_host

            host = default_host()
        return host.load()

    def _make_transport(self, host: PluginHost) -> Transport:
        url = self._settings.transport_url()
        if url is None:
            raise ConfigError(
                "no broker configured: pass host=... (MQTT) or transport='mqtt://host:1883', "
                "set PYE2_HOST / PYE2_TRANSPORT, or use transport='sim://' for a simulated network"
            )
        options = _given(self.options, "connect_timeout")
        return host.make_transport(url, **options)  # type: ignore[no-any-return]

    @staticmethod
    def _system_clock() -> Clock:
        from pye2.adapters.system_clock import SystemClock

        return SystemClock()

    def _load_identity(self) -> Any:
        from pye2.wire import Identity

        path = self.options.key_path
        if path is None:
            home = Path(os.environ.get("PYE2_HOME", Path.home() / ".pye2"))
            path = home / DEFAULT_KEY_FILE
        path = Path(path)
        if path.exists():
            return Identity.load(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity = Identity.generate()
        identity.save(path)
        log.info("created a new key at %s (address %s)", path, identity.address(self.profile))
        return identity

    def _channels(self) -> list[tuple[str, str]]:
        def topic(channel: str, default: str) -> str:
            value = self._channel_config.get(channel)
            if isinstance(value, dict) and isinstance(value.get("TOPIC"), str):
                return str(value["TOPIC"]).replace("{}", self.name)
            return default

        assert self.engine is not None
        return [
            (KIND_HEARTBEAT, topic("CTRL_CHANNEL", self.profile.ctrl)),
            (KIND_NOTIFICATION, topic("NOTIF_CHANNEL", self.profile.notif)),
            (KIND_PAYLOAD, topic("PAYLOADS_CHANNEL", self.profile.payloads)),
        ] + ([(KIND_PAYLOAD, self.profile.addressed_payloads(self.engine.address))]
             if self.profile.commands_by_address else [])

    def _subscribe(self, transport: Transport, kind: str, address: str) -> Subscription:
        """Subscribe to one channel: payloads in the share group if there is one, the rest in full.

        Heartbeats and notifications are never shared: every member needs every
        heartbeat to know the nodes, and the notifications that confirm a command
        must reach the member that sent it.
        """
        if kind == KIND_PAYLOAD and self.share_group is not None:
            assert isinstance(transport, SupportsSharedSubscriptions)
            return transport.subscribe_shared(address, self.share_group, self._handler(kind))
        return transport.subscribe(address, self._handler(kind))

    def _handler(self, kind: str) -> Callable[[Delivery], None]:
        if self._threaded:
            put = self.inbox.put
            count = self.stats.count_received

            def enqueue(delivery: Delivery) -> None:
                count()
                put((kind, delivery.body))

            return enqueue

        def inline(delivery: Delivery) -> None:
            self.stats.count_received()
            self._process(kind, delivery.body)

        return inline

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        else:
            self.inbox.close()
        self.inbox.discard()  # what was still queued is dropped, and counted

    def _count_drop(self, item: tuple[str, Any]) -> None:
        """A message the inbox dropped (full, oversized or closed); connection events were never received."""
        if item[0] != KIND_CONNECTION:
            self.stats.bump("dropped")

    def _deliver_connection_event(self, listener: Callable[..., Any], event: ConnectionEvent) -> None:
        """Connection changes reach ``on_connection`` like messages: off the network thread, in order."""
        if self._threaded:
            self.inbox.put((KIND_CONNECTION, event))
        else:
            self.dispatcher.call(listener, self, event)

    @property
    def is_connected(self) -> bool:
        """True while connected and the transport reports a live connection."""
        return self._connected and self.transport is not None and self.transport.is_connected

    def close(self, close_pipelines: bool = False, *, wait: bool | float = False) -> None:
        """Close the session (and, if asked, archive the pipelines it created). Idempotent."""
        with self._lock:
            if self._closed:
                return
            if close_pipelines and self._connected:
                confs = self.close_own_pipelines()
                if wait:
                    timeout = self.command_timeout if wait is True else float(wait)
                    for conf in confs:
                        conf.wait(timeout)
            self._closed = True
            self._close_requested = True
            for sub in self._subscriptions:
                try:
                    sub.cancel()
                except Pye2Error:
                    log.debug("cancel failed during close", exc_info=True)
            self._subscriptions.clear()
            if self.confirmations is not None:
                self.confirmations.fail_all("session closed")
            if self.transport is not None:
                try:
                    self.transport.close()
                except Pye2Error:
                    log.warning("transport close failed", exc_info=True)
            self._stop_worker()
            self._connected = False
            with self._cond:
                self._cond.notify_all()
            log.info("session %r closed", self.name)

    def __enter__(self) -> Session:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._connected else "new")
        return f"<Session {self.name!r} {self.profile.name} {state}>"

    # ------------------------------------------------------------------ inbound
    def _process(self, kind: str, body: Any) -> None:
        self._apply(kind, body, self._decode((kind, body)))

    def _decode(self, item: tuple[Any, ...]) -> Event | Rejected | None:
        """Parse, verify and decode one received message (thread-safe; None for connection events).

        ``item`` is ``(kind, body)``, or ``(kind, body, verdict)`` when its signature
        was checked in a verify worker process.
        """
        kind, body = item[0], item[1]
        if kind == KIND_CONNECTION:
            return None
        assert self.engine is not None and self.clock is not None
        return self.engine.receive(kind, body, self.clock.time(), item[2] if len(item) > 2 else None)

    def _apply(self, kind: str, body: Any, decoded: Event | Rejected | BaseException | None) -> None:
        """Route one decoded message and run its callbacks (the dispatcher thread only, in order)."""
        if kind == KIND_CONNECTION:
            listener = self.options.on_connection
            if listener is not None:
                self.dispatcher.call(listener, self, body)
        elif isinstance(decoded, Rejected):
            self.stats.count_rejected(decoded.reason, decoded)
            return
        elif isinstance(decoded, BaseException) or decoded is None:
            self.stats.count_rejected("internal")  # the decoder raised (logged where it happened)
            return
        else:
            assert self.clock is not None
            self.router.route(kind, decoded, self.clock.time())
        with self._cond:
            self._cond.notify_all()

    def _node_conflict(self, name: str, known: str, other: str) -> None:
        listener = self.options.on_node_conflict
        if listener is not None:
            self.dispatcher.call(listener, self, name, known, other)

    def node_key(self, alias: str, address: str | None) -> str:
        """What callbacks receive as ``e2id``: the alias (AIXP) or the address (RATIO1)."""
        return address if (self.profile.commands_by_address and address) else alias

    # ------------------------------------------------------------------ queries
    def _now(self) -> float:
        if self.clock is None:
            raise TransportError("session is not connected: call connect() first")
        return self.clock.time()

    def get_active_nodes(self) -> list[str]:
        """Nodes that sent anything in the last ``online_timeout`` seconds (ids, or addresses under RATIO1)."""
        return [self.node_key(rec.alias, rec.address) for rec in self.network.online_records(self._now())]

    def get_active_pipelines(self, e2id: str) -> dict[str, dict[str, Any]] | None:
        """The node's pipelines from its last heartbeat; None if offline or unknown.

        Like every call that takes a node: a name or an address; a name that
        several addresses claimed (none pinned) raises :class:`~pye2.errors.AmbiguousNode`.
        """
        rec = self.directory.find(e2id)
        if rec is None or self._now() - rec.last_seen >= self.online_timeout:
            return None
        return rec.pipelines

    def get_node_address(self, e2id: str) -> str | None:
        """The address a node name is bound to (an address gives itself); None if unknown."""
        return self.directory.resolve(e2id)[1]

    def get_node_alias(self, node: str) -> str | None:
        """The name (``EE_ID``) a node known by address (or name) last used; None if unknown."""
        rec = self.directory.find(node)
        return rec.alias if rec else None

    def check_node_online(self, e2id: str) -> bool:
        rec = self.directory.find(e2id)
        return rec is not None and self._now() - rec.last_seen < self.online_timeout

    def wait_for_node(self, e2id: str, timeout: float | None = 30.0) -> bool:
        """Wait (on the session's clock) until the node is online; True if it is."""
        self.connect()
        return self.wait(lambda: self.check_node_online(e2id), timeout)

    # ------------------------------------------------------------------ trust
    @property
    def address(self) -> str:
        """This session's own address (what nodes allow-list), in the profile's prefix."""
        if self.engine is not None:
            return self.engine.address
        if self.identity is None:
            self.identity = self._load_identity()
        return str(self.identity.address(self.profile))

    def get_client_address(self) -> str:
        """This session's own address (the later SDKs' name for :attr:`address`)."""
        return self.address

    def signing_mode(self, node: str) -> bool | None:
        """Whether commands to ``node`` are signed for a node in ETH mode (True), without it (False),
        or the profile's way (None): the ``eth`` option if set, else what the node's own messages show.
        """
        if self.eth is not None:
            return self.eth
        rec = self.directory.find(node)
        return None if rec is None else rec.eth

    def _check_allowed(self, record: NodeRecord, envelope: Mapping[str, Any]) -> None:
        """A node heartbeated: fail the commands pending on it if it says it will not take ours (``NotAllowed``).

        Only the commands sent before the heartbeat was signed (its ``EE_TIMESTAMP``,
        when it has one): a heartbeat that was on its way when the node's operator
        allow-listed the session, and arrives after a command, says nothing about that
        command. (A node whose clock is behind ours by more than a heartbeat period
        then fails it at a later heartbeat, or the command times out saying why.)
        """
        assert self.confirmations is not None and self.engine is not None
        address = record.address
        if address is None or not self.confirmations.pending_for(address):
            return
        if record.secured is not True or self._listed(record.whitelist):
            return
        me = self.engine.address
        signed_at = node_time(envelope.get("EE_TIMESTAMP"), envelope.get("EE_TIMEZONE"))
        self.confirmations.fail_node(address, lambda conf: NotAllowed(
            f"{conf.description}: node {record.alias} ({address}) is SECURED and its allow-list does not list "
            f"this session's address {me}; the node ignores its commands. Its operator adds the address to the "
            f"node's authorized_addrs file (pye2 sim: --allow {me})", node=address, address=me), signed_at)

    def _listed(self, whitelist: Iterable[str]) -> bool:
        """Whether a node's ``EE_WHITELIST`` lists this session (a real node writes the entries without a prefix)."""
        assert self.engine is not None
        mine = self.engine.address
        body = self.profile.strip_prefix(mine) or mine
        return any(entry == body or same_address(entry, mine) for entry in whitelist)

    def _explain_silence(self, conf: Confirmation) -> str:
        """What the session can see of the node a command timed out on."""
        exp = conf.expectations[0] if conf.expectations else None
        if exp is None:
            return ""
        rec = self.network.find_address(exp.address) if exp.address else self.network.find(exp.node)
        if rec is None:
            return f"node {exp.node} has never been heard from"
        now = self._now()
        parts = [f"node {rec.alias} ({rec.address}) last heard {now - rec.last_seen:.1f} s ago"
                 + (" (offline)" if now - rec.last_seen >= self.online_timeout else "")]
        if rec.secured is True and self.engine is not None:
            allowed = self._listed(rec.whitelist)
            parts.append("its allow-list lists this session" if allowed else
                         f"its allow-list does not list this session ({self.engine.address})")
        mode = {True: "ETH mode", False: "without ETH", None: "unknown"}[rec.eth]
        sent = self.eth if self.eth is not None else rec.eth
        parts.append(f"its signing mode: {mode}; sent signed "
                     + ({True: "for ETH mode", False: "without ETH fields"}.get(sent, "the profile's way")
                        if sent is not None else f"the profile's way ({'ETH' if self.profile.eth_fields else 'plain'})"))
        return "; ".join(parts)

    def pin_node(self, name: str, address: str) -> None:
        """Bind ``name`` to ``address`` for good: messages from any other address that claim it are refused.

        Also how to accept a node that really changed its key.
        """
        if self.profile.strip_prefix(address) is None:
            raise ConfigError(f"{address!r} is not a node address")
        self.directory.pin(name, address)

    def forget_node(self, node: str) -> None:
        """Forget a node (by name or address): its record and its names' bindings.

        The next verified message that carries one of those names binds it again
        (first use), so a node that really changed its key is accepted; pinning
        its new address (:meth:`pin_node`) does that without the window.
        """
        names = self.directory.forget(node)
        log.info("forgot node %s (names unbound: %s)", clip(node), clip(", ".join(names)) or "none")

    def wait_for_any_node(self, timeout: float | None = 30.0) -> bool:
        self.connect()
        return self.wait(lambda: bool(self.network.online(self._now())), timeout)

    def wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait on the session clock until ``predicate()`` or ``timeout``; no polling."""
        assert self.clock is not None
        return self.clock.wait_until(predicate, timeout, self._cond)

    # ------------------------------------------------------------------ run
    def run(self, wait: bool | float = True, close_session: bool = True, close_pipelines: bool = False) -> None:
        """Process messages: ``wait=True`` until closed (Ctrl-C ends it), a number for that many seconds.

        On a simulated network's virtual clock ``wait=True`` returns once every pipeline
        this session created is gone (or after a simulated day), so scripts finish.
        """
        self.connect()
        assert self.clock is not None
        try:
            if wait is True:
                if self._threaded:
                    self.wait(lambda: self._close_requested, None)
                else:
                    self.wait(lambda: self._close_requested or (self._ever_created and not self.router.pipelines),
                              VIRTUAL_RUN_LIMIT)
            elif wait is not False and wait is not None:
                self.wait(lambda: self._close_requested, float(wait))
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            if close_session:
                self.close(close_pipelines=close_pipelines, wait=close_pipelines)

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass on the session clock while processing messages."""
        self.run(wait=seconds, close_session=False)

    # ------------------------------------------------------------------ commands
    def send_command(
        self,
        node: str,
        action: str,
        payload: Any,
        *,
        expect: list[Expectation] | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Confirmation:
        """Sign and send one command; the returned handle resolves from the node's notifications.

        A command that expects a confirmation is sent once the previous one for
        the same pipeline on the same node has settled (see
        :mod:`pye2.service.sequencer`); a failure to send it now raises.
        """
        if not self._connected:  # connect() takes the session lock: not on every command
            self.connect()
        assert self.engine is not None and self.transport is not None and self.confirmations is not None
        alias, address = self.directory.resolve(node)
        if self.profile.commands_by_address and address is None:
            raise NodeOffline(f"node {node!r} is unknown: wait for its heartbeat (wait_for_node) first")
        now = self._now()
        topic, body = self.engine.prepare(action, payload, node_alias=alias, node_address=address,
                                          initiator_id=self.name, session_id=self.name, now=now,
                                          eth=self.signing_mode(node))
        self.directory.hold(node)
        expectations = []
        for exp in expect or []:
            exp.node, exp.address, exp.sent_at = alias, address, now
            expectations.append(exp)
        conf = self.confirmations.register(description or f"{action} to {node}", expectations)
        lane = (alias, expectations[0].pipeline) if expectations else None
        self._sequencer.submit(lane, topic, body, conf, self.command_timeout if timeout is None else timeout)
        return conf

    def send_command_update_pipeline(self, worker: str, stream_config: dict[str, Any]) -> Confirmation:
        """Send ``UPDATE_CONFIG`` with a whole pipeline config (original SDK name)."""
        name = str(stream_config.get("NAME", ""))
        return self.send_command(worker, "UPDATE_CONFIG", stream_config,
                                 expect=[Expectation(worker, ExpectedResponse.pipeline_ok(name))],
                                 description=f"update pipeline {name!r} on {worker}")

    def send_command_delete_pipeline(self, worker: str, stream_name: str) -> Confirmation:
        """Archive a pipeline (``ARCHIVE_CONFIG``, as the original SDK did)."""
        return self.send_command(worker, "ARCHIVE_CONFIG", stream_name,
                                 expect=[Expectation(worker, ExpectedResponse.pipeline_archived(stream_name))],
                                 description=f"archive pipeline {stream_name!r} on {worker}")

    # ------------------------------------------------------------------ pipelines
    _ever_created = False

    def create_pipeline(
        self,
        *,
        e2id: str | None = None,
        name: str,
        data_source: str = "Void",
        config: dict[str, Any] | None = None,
        plugins: list[dict[str, Any]] | None = None,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        max_wait_time: float = 0,
        wait: bool | float = False,
        node: str | None = None,
        **kwargs: Any,
    ) -> Pipeline:
        """Create (or replace) a pipeline on a node and return its handle.

        ``wait=True`` (or seconds) blocks until the node confirms; a refusal raises
        :class:`~pye2.errors.CommandFailed`, silence :class:`~pye2.errors.CommandTimeout`.
        ``max_wait_time`` first waits that long for the node to come online.
        """
        from pye2.service.handles import Pipeline

        target = e2id or node
        if not target:
            raise ConfigError("create_pipeline needs e2id= (the node)")
        self.connect()
        if max_wait_time and not self.wait_for_node(target, max_wait_time):
            log.warning("node %s is not online after %.1f s; sending anyway", target, max_wait_time)
        pipe = Pipeline._create(self, target, name, data_source, config or {}, plugins or [], on_data,
                                on_notification, kwargs)
        self._ever_created = True
        if wait:
            pipe.confirmation.result(self.command_timeout if wait is True else float(wait))
        return pipe

    def attach_to_pipeline(
        self,
        e2id: str,
        pipeline_name: str,
        on_data: Callable[..., Any] | None = None,
        on_notification: Callable[..., Any] | None = None,
        max_wait_time: float = 0,
        **kwargs: Any,
    ) -> Pipeline:
        """Attach to a pipeline the node already runs (from its heartbeat's pipeline list)."""
        from pye2.service.handles import Pipeline

        self.connect()
        if max_wait_time:
            self.wait(lambda: self.get_active_pipelines(e2id) is not None
                      and pipeline_name in (self.get_active_pipelines(e2id) or {}), max_wait_time)
        pipelines = self.get_active_pipelines(e2id)
        if pipelines is None:
            raise NodeOffline(f"node {e2id!r} is not online")
        if pipeline_name not in pipelines:
            raise PipelineNotFound(f"node {e2id!r} has no pipeline {pipeline_name!r} "
                                   f"(it has: {', '.join(sorted(pipelines)) or 'none'})")
        return Pipeline._attach(self, e2id, pipelines[pipeline_name], on_data, on_notification)

    def get_pipeline(self, e2id: str, name: str) -> Pipeline | None:
        """The handle of a pipeline this session created or attached to (node by name or address)."""
        pipe = self.router.pipelines.get((e2id, name))
        if pipe is None:
            alias, address = self.directory.resolve(e2id)
            pipe = self.router.pipelines.get((address or alias, name))
        return cast("Pipeline | None", pipe)

    @property
    def pipelines(self) -> list[Pipeline]:
        """Handles of the pipelines this session holds (each once)."""
        return cast("list[Pipeline]", self.router.handles())

    def close_own_pipelines(self) -> list[Confirmation]:
        """Archive every pipeline this session created; returns the confirmations."""
        return [p.close() for p in self.pipelines if p.owned]

    # original SDK logging helpers
    def P(self, *args: Any, **kwargs: Any) -> None:
        """Print a line to stdout, as the original SDK's ``P`` did."""
        print(*args, flush=True)

    def D(self, *args: Any, **kwargs: Any) -> None:
        log.debug(" ".join(str(a) for a in args))
