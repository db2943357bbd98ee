"""In-process broker with MQTT topic semantics; the simulator's network.

Features:

* Filters: ``+`` matches one level, a trailing ``#`` any number of levels
  including none (``a/#`` matches ``a``), ``#`` alone matches everything; as in
  MQTT, wildcards in the first level do not match addresses starting with ``$``.
  Malformed filters and addresses raise :class:`~pye2.errors.ConfigError`.
* Fanout: every matching subscription gets each message once, in the order the
  subscriptions were made. Matching happens at publish time, like a broker
  routing on arrival; exact filters are a dict lookup, wildcard filters a trie,
  and the result is kept per address until the subscriptions change.
* Deterministic delivery: ``publish`` appends to the hub's FIFO; if no drain
  is running, the publishing thread drains it. A publish made from inside a
  handler is queued and delivered by the outer drain (breadth-first, a handler
  never recurses). One thread drains at a time; others only enqueue.
* A handler exception is logged with its traceback and counted; delivery goes on.
* Share groups: subscriptions made with ``group=`` on the same filter and group
  take turns (round robin, in subscription order): each message goes to one
  of them, as an MQTT 5 shared subscription would.
* Fault injection: an optional ``interceptor(address, body)`` returns a list of
  ``(delay_seconds, address, body)``: ``[]`` drops, two entries duplicate, a
  changed body corrupts, ``delay > 0`` re-injects later through the hub's
  clock ``call_later`` (re-injected messages are not intercepted again).
* No class-level or module state: two hubs in one process are fully isolated.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pye2.errors import ConfigError
from pye2.ports.clock import Clock
from pye2.ports.transport import Delivery, Handler

__all__ = [
    "Hub",
    "HubCounters",
    "HubSubscription",
    "Interceptor",
    "filter_matches",
    "validate_address",
    "validate_filter",
]

log = logging.getLogger(__name__)

Interceptor = Callable[[str, bytes], Sequence[tuple[float, str, bytes]]]

_MATCH_CACHE = 4096


def validate_address(address: object) -> str:
    """Return ``address`` if it can be published to, else raise ``ConfigError``."""
    if not isinstance(address, str) or not address:
        raise ConfigError(f"address must be a non-empty string, got {address!r}")
    if "+" in address or "#" in address or "\x00" in address:
        raise ConfigError(f"cannot publish to {address!r}: wildcards and NUL are only valid in filters")
    return address


def validate_filter(filter_: object) -> str:
    """Return ``filter_`` if it is a well-formed subscription filter, else raise ``ConfigError``."""
    if not isinstance(filter_, str) or not filter_ or "\x00" in filter_:
        raise ConfigError(f"filter must be a non-empty string without NUL, got {filter_!r}")
    levels = filter_.split("/")
    for i, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and i != len(levels) - 1:
                raise ConfigError(f"filter {filter_!r}: '#' must be the last level")
        elif "+" in level or "#" in level:
            raise ConfigError(f"filter {filter_!r}: a wildcard must fill a whole level")
    return filter_


def filter_matches(filter_: str, address: str) -> bool:
    """Whether the (valid) ``filter_`` matches the (valid) ``address``."""
    want, have = filter_.split("/"), address.split("/")
    if have[0].startswith("$") and want[0] in ("+", "#"):
        return False
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


def _as_bytes(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise ConfigError(f"message body must be bytes, got {type(body).__name__}")


@dataclass(frozen=True, slots=True)
class HubCounters:
    """Snapshot of a hub's counters."""

    published: int = 0
    delivered: int = 0
    handler_errors: int = 0
    dropped: int = 0
    delayed: int = 0
    interceptor_errors: int = 0


class HubSubscription:
    """A hub-level subscription; ``cancel()`` is idempotent and immediate."""

    __slots__ = ("_hub", "active", "filter", "group", "handler", "seq")

    def __init__(self, hub: Hub, filter_: str, handler: Handler, seq: int, group: str | None = None) -> None:
        self._hub = hub
        self.filter = filter_
        self.handler = handler
        self.seq = seq
        #: the share group this subscription takes turns in, or None (it gets every message)
        self.group = group
        self.active = True

    @property
    def address(self) -> str:
        """The subscribed filter (port ``Subscription`` naming)."""
        return self.filter

    def cancel(self) -> None:
        """Stop deliveries to this handler, including ones already queued."""
        self._hub._remove(self)

    def __repr__(self) -> str:
        return f"<HubSubscription {self.filter!r}{'' if self.active else ' cancelled'}>"


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    ending: list[HubSubscription] = field(default_factory=list)  # filters ending here
    hash: list[HubSubscription] = field(default_factory=list)  # filters "<path>/#"

    def empty(self) -> bool:
        return not (self.children or self.ending or self.hash)


class _WildcardIndex:
    """Trie over filter levels; ``+`` is a child key (it can never be a literal level)."""

    def __init__(self) -> None:
        self._root = _Node()

    def add(self, sub: HubSubscription) -> None:
        node = self._root
        levels = sub.filter.split("/")
        for level in levels[:-1]:
            node = node.children.setdefault(level, _Node())
        last = levels[-1]
        if last == "#":
            node.hash.append(sub)
        else:
            node.children.setdefault(last, _Node()).ending.append(sub)

    def remove(self, sub: HubSubscription) -> None:
        levels = sub.filter.split("/")
        path = [self._root]
        for level in levels[:-1] if levels[-1] == "#" else levels:
            child = path[-1].children.get(level)
            if child is None:
                return
            path.append(child)
        bucket = path[-1].hash if levels[-1] == "#" else path[-1].ending
        if sub in bucket:
            bucket.remove(sub)
        # Prune emptied nodes so churn of short-lived filters does not grow the trie.
        keys = levels[:-1] if levels[-1] == "#" else levels
        for depth in range(len(path) - 1, 0, -1):
            if not path[depth].empty():
                break
            del path[depth - 1].children[keys[depth - 1]]

    def match(self, levels: list[str], out: list[HubSubscription]) -> None:
        dollar = levels[0].startswith("$")
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            wild_ok = not (dollar and i == 0)
            if wild_ok:
                out.extend(node.hash)
            if i == len(levels):
                out.extend(node.ending)
                continue
            child = node.children.get(levels[i])
            if child is not None:
                stack.append((child, i + 1))
            plus = node.children.get("+")
            if plus is not None and wild_ok:
                stack.append((plus, i + 1))


class Hub:
    """An in-process broker. Build one per simulated network: ``Hub(clock=None)``.

    ``clock`` is only needed when an interceptor delays messages.
    """

    def __init__(self, clock: Clock | None = None, *, name: str = "hub") -> None:
        self.name = name
        self.clock = clock
        self._lock = threading.Lock()
        self._exact: dict[str, list[HubSubscription]] = {}
        self._wild = _WildcardIndex()
        # address -> its subscriptions in order, dropped on any (un)subscribe; never changed once built
        self._matches: dict[str, list[HubSubscription]] = {}
        self._seq = 0
        self._count = 0
        self._shared = 0  # subscriptions in a share group (none: routing skips the turn-taking)
        self._turns: dict[tuple[str, str], int] = {}  # (group, filter) -> messages it has had
        self._queue: deque[tuple[str, bytes, list[HubSubscription]]] = deque()
        self._draining = False
        self._interceptor: Interceptor | None = None
        self._accepting = True
        self._published = self._delivered = self._handler_errors = 0
        self._dropped = self._delayed = self._interceptor_errors = 0

    def __repr__(self) -> str:
        return f"<Hub {self.name!r} subscriptions={self._count}>"

    # -- configuration ---------------------------------------------------------

    @property
    def interceptor(self) -> Interceptor | None:
        """The fault-injection hook, or None (messages pass unchanged)."""
        return self._interceptor

    @interceptor.setter
    def interceptor(self, value: Interceptor | None) -> None:
        with self._lock:
            self._interceptor = value

    @property
    def accepting_connections(self) -> bool:
        """False while the hub plays an unreachable broker (transports fail to connect)."""
        return self._accepting

    def refuse_connections(self, refuse: bool = True) -> None:
        """Make new ``MemoryTransport.connect()`` calls fail (or succeed again)."""
        self._accepting = not refuse

    # -- introspection -----------------------------------------------------------

    @property
    def counters(self) -> HubCounters:
        """A snapshot of the message counters."""
        with self._lock:
            return HubCounters(self._published, self._delivered, self._handler_errors,
                               self._dropped, self._delayed, self._interceptor_errors)

    @property
    def subscription_count(self) -> int:
        """Number of active subscriptions."""
        return self._count

    @property
    def idle(self) -> bool:
        """True when nothing is queued and no drain is running."""
        with self._lock:
            return not self._queue and not self._draining

    # -- subscriptions -------------------------------------------------------------

    def subscribe(self, filter_: str, handler: Handler, *, group: str | None = None) -> HubSubscription:
        """Deliver every later message whose address matches ``filter_`` to ``handler``.

        With ``group``, the subscriptions of that group on the same filter share
        the messages: each goes to one of them, in turn.
        """
        validate_filter(filter_)
        with self._lock:
            self._seq += 1
            sub = HubSubscription(self, filter_, handler, self._seq, group)
            self._shared += group is not None
            if "+" in filter_ or "#" in filter_:
                self._wild.add(sub)
            else:
                self._exact.setdefault(filter_, []).append(sub)
            self._count += 1
            self._matches.clear()
        return sub

    def _remove(self, sub: HubSubscription) -> None:
        with self._lock:
            if not sub.active:
                return
            sub.active = False
            self._count -= 1
            self._shared -= sub.group is not None
            self._matches.clear()
            if "+" in sub.filter or "#" in sub.filter:
                self._wild.remove(sub)
                return
            bucket = self._exact.get(sub.filter, [])
            if sub in bucket:
                bucket.remove(sub)
            if not bucket:
                self._exact.pop(sub.filter, None)

    def _match(self, address: str) -> list[HubSubscription]:
        # Caller holds the lock.
        found = self._matches.get(address)
        if found is None:
            found = list(self._exact.get(address, ()))
            self._wild.match(address.split("/"), found)
            if len(found) > 1:
                found.sort(key=lambda s: s.seq)
            if len(self._matches) >= _MATCH_CACHE:
                self._matches.clear()
            self._matches[address] = found
        return found

    # -- publishing ------------------------------------------------------------------

    def publish(self, address: str, body: bytes) -> None:
        """Route ``body`` to every subscription matching ``address``.

        Delivers before returning unless a drain is already running (then the
        running drain delivers it). Raises ``ConfigError`` for a bad address or
        body, or when the interceptor delays a message and the hub has no clock.
        """
        validate_address(address)
        body = _as_bytes(body)
        with self._lock:
            self._published += 1
            interceptor = self._interceptor
        routed = [(0.0, address, body)] if interceptor is None else self._intercept(interceptor, address, body)
        for delay, to, data in routed:
            if delay > 0:
                self._schedule(delay, to, data)
            else:
                self._enqueue(to, data)
        self._drain()

    def _intercept(self, interceptor: Interceptor, address: str, body: bytes) -> list[tuple[float, str, bytes]]:
        try:
            out = interceptor(address, body)
            if type(out) is list and len(out) == 1:  # the usual verdict: deliver now, unchanged
                delay, to, data = out[0]
                if to is address and data is body and type(delay) is float and delay == 0.0:
                    return [(0.0, address, body)]
            routed = [(float(d), validate_address(a), _as_bytes(b)) for d, a, b in out]
            if any(not math.isfinite(d) for d, _, _ in routed):
                raise ConfigError("interceptor returned a non-finite delay")
        except Exception:
            log.exception("hub %s: interceptor failed on %r; delivering the message unchanged", self.name, address)
            with self._lock:
                self._interceptor_errors += 1
            return [(0.0, address, body)]
        if any(d > 0 for d, _, _ in routed) and self.clock is None:
            raise ConfigError(f"hub {self.name!r} has no clock to delay messages: build Hub(clock=...)")
        with self._lock:
            if not routed:
                self._dropped += 1
            self._delayed += sum(1 for d, _, _ in routed if d > 0)
        return routed

    def _schedule(self, delay: float, address: str, body: bytes) -> None:
        assert self.clock is not None  # checked in _intercept

        def inject() -> None:
            self._enqueue(address, body)
            self._drain()

        self.clock.call_later(delay, inject)

    def _enqueue(self, address: str, body: bytes) -> None:
        with self._lock:
            targets = self._match(address)
            self._queue.append((address, body, self._take_turns(targets) if self._shared else targets))

    def _take_turns(self, found: list[HubSubscription]) -> list[HubSubscription]:
        """``found`` with each share group reduced to the member whose turn it is (caller holds the lock)."""
        groups: dict[tuple[str, str], list[HubSubscription]] = {}
        out = []
        for sub in found:
            if sub.group is None:
                out.append(sub)
            else:
                groups.setdefault((sub.group, sub.filter), []).append(sub)
        for key, members in groups.items():
            turn = self._turns.get(key, 0)
            self._turns[key] = turn + 1
            out.append(members[turn % len(members)])
        if groups and len(out) > 1:
            out.sort(key=lambda s: s.seq)
        return out

    def _drain(self) -> None:
        with self._lock:
            if self._draining:
                return
            self._draining = True
        done = False
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._draining = False
                        done = True
                        return
                    address, body, targets = self._queue.popleft()
                self._deliver(address, body, targets)
        finally:
            if not done:  # a BaseException escaped a handler; let the next publish drain
                with self._lock:
                    self._draining = False

    def _deliver(self, address: str, body: bytes, targets: list[HubSubscription]) -> None:
        delivery = Delivery(address, body)
        for sub in targets:
            if not sub.active:
                continue
            # Only the single draining thread writes these two counters, so no lock.
            try:
                sub.handler(delivery)
            except Exception:
                log.exception("hub %s: handler of %r failed on %r", self.name, sub.filter, address)
                self._handler_errors += 1
            else:
                self._delivered += 1
