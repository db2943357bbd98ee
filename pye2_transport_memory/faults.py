"""FaultPlan: network faults as data, reproducible from a seed.

Features:

* message faults, by probability and/or targeted rules (MQTT topic pattern,
  sending node, a maximum count, an end time): ``drop``, ``duplicate``,
  ``reorder`` (the message is held back so later ones overtake it),
  ``delay``, ``corrupt`` (flip bytes) and ``forge`` (``alter`` a field after
  signing, ``resign`` with another key, or ``impersonate``: another key's
  signature under the original ``EE_SENDER``);
* node faults: ``crash`` (silence, no goodbye; optional restart),
  ``silence`` (the node keeps running but nothing it publishes leaves it),
  ``partition`` (groups of parties that cannot hear each other; a party is a
  node id or ``"client"``);
* ``counters``: what the plan did, by kind.

Message faults run as the in-memory Hub's interceptor
(``interceptor(topic, body) -> [(delay, topic, body), ...]``); on a real
broker the same function runs inside :meth:`FaultPlan.wrap` before publishing.
Receiver-side faults (partitions) need to know who receives, so they live in
the transport wrapper built by :meth:`FaultPlan.wrap`, which every transport
of a :class:`~pye2_transport_memory.network.SimulatedNetwork` goes through.

Every random decision comes from one ``random.Random(seed)``, consumed in
message order, so a simulated run with the same seed makes the same decisions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pye2.errors import ConfigError, Pye2Error
from pye2_transport_memory.hub import filter_matches

if TYPE_CHECKING:
    from pye2.domain.profiles import WireProfile
    from pye2.ports.clock import Clock
    from pye2.ports.transport import Transport
    from pye2_transport_memory._faulty import FaultyTransport

__all__ = ["CLIENT", "FORGE_MODES", "FaultPlan", "FaultRule", "topic_matches"]

log = logging.getLogger(__name__)

#: party name of every client-side transport (``SimulatedNetwork.transport()``)
CLIENT = "client"
FORGE_MODES = ("alter", "resign", "impersonate")
_KINDS = ("drop", "duplicate", "reorder", "delay", "corrupt", "forge")
_SIGNATURE_FIELDS = ("EE_SIGN", "EE_SENDER", "EE_HASH", "EE_ETH_SIGN", "EE_ETH_SENDER", "SIGN_CANON_V")
_ORIGIN_CAP = 8192

Intercepted = list[tuple[float, str, bytes]]


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT-style match: ``+`` is one level, a final ``#`` any number of levels (even none)."""
    return pattern == topic or filter_matches(pattern, topic)


@dataclass
class FaultRule:
    """One message fault.

    Attributes:
        kind: ``drop``, ``duplicate``, ``reorder``, ``delay``, ``corrupt`` or ``forge``.
        p: probability per matching message.
        topic: MQTT pattern the topic must match (None: any).
        node: the sending party (node id / alias / address, or ``"client"``) (None: any).
        count: apply at most this many times (None: unlimited).
        until: clock time after which the rule is inert (None: forever).
        params: kind-specific (``seconds``/``jitter`` for delay, ``hold`` for
            reorder, ``gap`` for duplicate, ``nbytes`` for corrupt, ``mode`` for forge).
        applied: how many times it fired.
    """

    kind: str
    p: float = 1.0
    topic: str | None = None
    node: str | None = None
    count: int | None = None
    until: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    applied: int = 0

    def exhausted(self, now: float | None) -> bool:
        """True once the rule can no longer fire."""
        if self.count is not None and self.applied >= self.count:
            return True
        return self.until is not None and now is not None and now >= self.until


class FaultPlan:
    """Seeded faults for a simulated network (see the module docstring).

    Args:
        seed: seeds every random decision.
        profile: wire profile used to re-sign forged messages (set by the network).
    """

    def __init__(self, seed: int = 0, *, profile: WireProfile | None = None) -> None:
        self.seed = seed
        self.profile = profile
        self.counters: Counter[str] = Counter()
        self.rules: list[FaultRule] = []
        self._rng = random.Random(f"faultplan:{seed}")
        self._clock: Clock | None = None
        self._nodes: Mapping[str, Any] = {}
        self._aliases: dict[str, str] = {}
        self._origin: OrderedDict[bytes, str] = OrderedDict()
        self._silenced: set[str] = set()
        self._groups: list[frozenset[str]] | None = None
        self._forger: Any = None
        self._timers: list[Any] = []

    # -- wiring (done by SimulatedNetwork) ---------------------------------------
    def bind(self, *, clock: Clock, nodes: Mapping[str, Any], profile: WireProfile | None = None) -> None:
        """Attach the plan to a network: its clock and its nodes (id -> SimulatedNode)."""
        self._clock = clock
        self._nodes = nodes
        if profile is not None:
            self.profile = profile
        self.refresh_parties()

    def refresh_parties(self) -> None:
        """Re-learn node aliases/addresses (addresses may change on a new identity)."""
        aliases: dict[str, str] = {}
        for node_id, node in self._nodes.items():
            aliases[node_id] = node_id
            for name in (getattr(node, "alias", None), getattr(node, "address", None)):
                if name:
                    aliases[str(name)] = node_id
                    body = str(name).split("_", 1)[-1]
                    aliases[body] = node_id
        self._aliases = aliases

    def party_of(self, name: str | None) -> str | None:
        """Node id for an id, alias or (prefix-insensitive) address; ``"client"`` stays."""
        if name is None:
            return None
        if name == CLIENT:
            return CLIENT
        return self._aliases.get(name) or self._aliases.get(name.split("_", 1)[-1]) or name

    def _now(self) -> float | None:
        return self._clock.time() if self._clock is not None else None

    # -- message rules -----------------------------------------------------------
    def add(self, rule: FaultRule) -> FaultRule:
        """Add a rule (checked in insertion order; the first that fires wins)."""
        if rule.kind not in _KINDS:
            raise ConfigError(f"unknown fault kind {rule.kind!r}; known: {', '.join(_KINDS)}")
        if not 0.0 <= rule.p <= 1.0:
            raise ConfigError(f"fault probability must be within [0, 1], not {rule.p!r}")
        if rule.kind == "forge" and rule.params.get("mode", "alter") not in FORGE_MODES + ("any",):
            raise ConfigError(f"forge mode must be one of {FORGE_MODES + ('any',)}")
        self.rules.append(rule)
        return rule

    def _rule(self, kind: str, p: float, topic: str | None, node: str | None, count: int | None,
              duration: float | None, **params: Any) -> FaultRule:
        now = self._now()
        until = None if duration is None else (now or 0.0) + duration
        return self.add(FaultRule(kind, p, topic, node, count, until, params))

    def drop(self, p: float = 1.0, *, topic: str | None = None, node: str | None = None,
             count: int | None = None, duration: float | None = None) -> FaultRule:
        """Lose matching messages."""
        return self._rule("drop", p, topic, node, count, duration)

    def duplicate(self, p: float = 1.0, *, topic: str | None = None, node: str | None = None,
                  count: int | None = None, duration: float | None = None, gap: float = 0.0) -> FaultRule:
        """Deliver matching messages twice (the copy ``gap`` seconds later)."""
        return self._rule("duplicate", p, topic, node, count, duration, gap=gap)

    def reorder(self, p: float = 1.0, *, topic: str | None = None, node: str | None = None,
                count: int | None = None, duration: float | None = None, hold: float = 0.5) -> FaultRule:
        """Hold matching messages back up to ``hold`` seconds so later ones overtake them."""
        return self._rule("reorder", p, topic, node, count, duration, hold=hold)

    def delay(self, seconds: float, p: float = 1.0, *, jitter: float = 0.0, topic: str | None = None,
              node: str | None = None, count: int | None = None, duration: float | None = None) -> FaultRule:
        """Deliver matching messages ``seconds`` (+ uniform ``jitter``) late."""
        return self._rule("delay", p, topic, node, count, duration, seconds=seconds, jitter=jitter)

    def corrupt(self, p: float = 1.0, *, nbytes: int = 1, topic: str | None = None, node: str | None = None,
                count: int | None = None, duration: float | None = None) -> FaultRule:
        """Flip ``nbytes`` random bytes of matching messages."""
        return self._rule("corrupt", p, topic, node, count, duration, nbytes=nbytes)

    def forge(self, p: float = 1.0, *, mode: str = "alter", topic: str | None = None, node: str | None = None,
              count: int | None = None, duration: float | None = None) -> FaultRule:
        """Tamper with signed messages: ``alter``, ``resign``, ``impersonate`` or ``any`` (random)."""
        return self._rule("forge", p, topic, node, count, duration, mode=mode)

    def clear(self) -> None:
        """Remove every message rule, heal partitions, end silences (scheduled events stay)."""
        self.rules.clear()
        self._groups = None
        self._silenced.clear()

    # -- node faults -------------------------------------------------------------
    def _later(self, after: float, action: Callable[[], None]) -> None:
        if after <= 0:
            action()
            return
        if self._clock is None:
            raise ConfigError("timed faults need a clock: use the plan of a SimulatedNetwork")
        self._timers.append(self._clock.call_later(after, action))

    def _node(self, node_id: str) -> Any:
        party = self.party_of(node_id)
        if party is None or party not in self._nodes:
            raise ConfigError(f"unknown node {node_id!r}; known: {', '.join(self._nodes)}")
        return self._nodes[party]

    def crash(self, node_id: str, *, after: float = 0.0, restart_after: float | None = None) -> None:
        """Crash a node ``after`` seconds from now (no goodbye); restart it ``restart_after`` later."""
        node = self._node(node_id)

        def do_crash() -> None:
            node.crash()
            self.counters["crashed"] += 1
            if restart_after is not None:
                self._later(restart_after, do_restart)

        def do_restart() -> None:
            node.start()
            self.refresh_parties()
            self.counters["restarted"] += 1

        self._later(after, do_crash)

    def silence(self, node_id: str, *, after: float = 0.0, duration: float | None = None) -> None:
        """Let nothing a node publishes leave it (it keeps running and receiving)."""
        party = self.party_of(node_id) or node_id
        self._node(node_id)

        def start() -> None:
            self._silenced.add(party)
            if duration is not None:
                self._later(duration, lambda: self._silenced.discard(party))

        self._later(after, start)

    def unsilence(self, node_id: str) -> None:
        """End a node's silence now."""
        self._silenced.discard(self.party_of(node_id) or node_id)

    def is_silenced(self, party: str) -> bool:
        """True while ``party`` is silenced."""
        return party in self._silenced

    def partition(self, groups: Iterable[Iterable[str]], *, after: float = 0.0, duration: float | None = None) -> None:
        """Split the network: parties of different groups cannot hear each other.

        Parties not named in any group form one more group together. A party is
        a node id (alias or address also work) or ``"client"``.
        """
        frozen = [frozenset(self.party_of(p) or p for p in group) for group in groups]
        seen: set[str] = set()
        for group in frozen:
            if group & seen:
                raise ConfigError("a party appears in two partition groups")
            seen |= group

        def start() -> None:
            self._groups = frozen
            if duration is not None:
                self._later(duration, self.heal)

        self._later(after, start)

    def heal(self) -> None:
        """End the partition."""
        self._groups = None

    def _group_of(self, party: str) -> int:
        assert self._groups is not None
        for i, group in enumerate(self._groups):
            if party in group:
                return i
        return -1

    def can_hear(self, receiver: str, sender: str | None) -> bool:
        """False when a partition separates ``sender`` from ``receiver``."""
        if self._groups is None or sender is None or sender == receiver:
            return True
        return self._group_of(receiver) == self._group_of(sender)

    # -- origins -------------------------------------------------------------------
    def note_origin(self, body: bytes, party: str) -> None:
        """Remember who published ``body`` (bounded; used by node rules and partitions)."""
        origin = self._origin
        origin[body] = party
        if len(origin) > _ORIGIN_CAP:
            origin.popitem(last=False)

    def origin_of(self, body: bytes) -> str | None:
        """The party that published ``body``, if known (falls back to its ``EE_ID``/``EE_SENDER``)."""
        party = self._origin.get(body)
        if party is not None:
            return party
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(message, dict):
            return None
        for key in ("EE_SENDER", "EE_ID"):
            value = message.get(key)
            if isinstance(value, str) and self.party_of(value) in self._nodes:
                return self.party_of(value)
        return None

    # -- the interceptor -----------------------------------------------------------
    def intercept(self, topic: str, body: bytes) -> Intercepted:
        """Hub interceptor: what to deliver for one published message, and when."""
        if not self.rules:
            return [(0.0, topic, body)]
        now = self._now()
        sender: str | None = None
        sender_known = False
        for rule in self.rules:
            if rule.exhausted(now):
                continue
            if rule.topic is not None and not topic_matches(rule.topic, topic):
                continue
            if rule.node is not None:
                if not sender_known:
                    sender, sender_known = self.origin_of(body), True
                if sender != self.party_of(rule.node):
                    continue
            if rule.p < 1.0 and self._rng.random() >= rule.p:
                continue
            out = self._apply(rule, topic, body)
            if out is None:  # not applicable to this message (e.g. forging non-JSON)
                continue
            rule.applied += 1
            if not sender_known:
                sender, sender_known = self.origin_of(body), True
            if sender is not None:
                for _, _, new_body in out:
                    if new_body is not body:
                        self.note_origin(new_body, sender)
            return out
        return [(0.0, topic, body)]

    __call__ = intercept

    def _apply(self, rule: FaultRule, topic: str, body: bytes) -> Intercepted | None:
        kind, params = rule.kind, rule.params
        if kind == "drop":
            self.counters["dropped"] += 1
            return []
        if kind == "duplicate":
            self.counters["duplicated"] += 1
            return [(0.0, topic, body), (float(params.get("gap", 0.0)), topic, body)]
        if kind == "reorder":
            self.counters["reordered"] += 1
            hold = float(params.get("hold", 0.5))
            return [(hold * (0.5 + 0.5 * self._rng.random()), topic, body)]
        if kind == "delay":
            self.counters["delayed"] += 1
            jitter = float(params.get("jitter", 0.0))
            return [(float(params["seconds"]) + jitter * self._rng.random(), topic, body)]
        if kind == "corrupt":
            self.counters["corrupted"] += 1
            return [(0.0, topic, self._flip(body, int(params.get("nbytes", 1))))]
        forged = self._forge(body, str(params.get("mode", "alter")))
        if forged is None:
            return None
        self.counters["forged"] += 1
        return [(0.0, topic, forged)]

    def _flip(self, body: bytes, nbytes: int) -> bytes:
        if not body:
            return b"\xff"
        data = bytearray(body)
        for _ in range(max(1, nbytes)):
            i = self._rng.randrange(len(data))
            data[i] ^= self._rng.randrange(1, 256)
        return bytes(data)

    def _forge(self, body: bytes, mode: str) -> bytes | None:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(message, dict):
            return None
        if mode == "any":
            mode = FORGE_MODES[self._rng.randrange(len(FORGE_MODES))]
        if mode == "alter":
            keys = sorted(k for k in message if k not in _SIGNATURE_FIELDS)
            if not keys:
                return None
            key = keys[self._rng.randrange(len(keys))]
            message[key] = _altered(message[key])
        else:
            claimed = message.get("EE_SENDER")
            try:
                message = self._resign(message)
            except Pye2Error as exc:
                log.debug("forge: re-signing failed (%s); altering instead", exc)
                return self._forge(body, "alter")
            if mode == "impersonate" and isinstance(claimed, str):
                message["EE_SENDER"] = claimed
        return json.dumps(message, separators=(",", ":")).encode("utf-8")

    def _resign(self, message: dict[str, Any]) -> dict[str, Any]:
        from pye2 import wire
        from pye2.domain.profiles import AIXP

        if self._forger is None:
            secret = hashlib.sha256(f"pye2-sim-forger:{self.seed}".encode()).digest()
            self._forger = _identity_from_secret(secret)
        clean = {k: v for k, v in message.items() if k not in _SIGNATURE_FIELDS}
        return dict(wire.sign_message(clean, self._forger, profile=self.profile or AIXP))

    @property
    def forger_address(self) -> str | None:
        """Address of the key ``resign``/``impersonate`` forgeries are signed with (once used)."""
        if self._forger is None:
            return None
        from pye2.domain.profiles import AIXP

        return str(self._forger.address(self.profile or AIXP))

    # -- transport wrapper -----------------------------------------------------------
    def wrap(self, transport: Transport, party: str, *, apply_message_faults: bool = False) -> FaultyTransport:
        """Wrap a transport of ``party`` (node id or ``"client"``) with this plan.

        ``apply_message_faults``: run :meth:`intercept` before publishing (for
        real brokers, where no Hub interceptor exists).
        """
        from pye2_transport_memory._faulty import FaultyTransport

        return FaultyTransport(transport, self, party, apply_message_faults=apply_message_faults)

    @property
    def clock(self) -> Clock | None:
        """The bound network's clock (None until :meth:`bind`)."""
        return self._clock

    @property
    def partitioned(self) -> bool:
        """True while a partition is in force."""
        return self._groups is not None

    def cancel_timers(self) -> None:
        """Cancel scheduled crashes/restarts/partitions (network shutdown)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


def _altered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "#"
    if isinstance(value, list):
        return [*value, "#"]
    if isinstance(value, dict):
        return {**value, "FORGED": True}
    return "forged"


def _identity_from_secret(secret: bytes) -> Any:
    """A wire Identity from a 32-byte secret (deterministic keys for the simulator)."""
    from pye2.wire import Identity

    for name in ("from_private_bytes", "from_secret", "from_private_key_bytes"):
        factory = getattr(Identity, name, None)
        if factory is not None:
            return factory(secret)
    return Identity.generate()
