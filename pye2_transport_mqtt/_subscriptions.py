"""Which handlers listen on which topic filter: the transport's subscription table.

One broker subscription per distinct filter, however many handlers share it.
Each filter gets a fresh MQTT 5 *subscription identifier* when it is first
subscribed; the broker stamps every delivery with the identifier(s) of the
subscription(s) it is made for, so a delivery is routed to exactly those
filters (see :meth:`SubscriptionTable.route`).

A handle made while connected starts *inactive* and is activated when the
broker acknowledges the SUBSCRIBE (or, for a filter already subscribed, a
barrier round trip): the broker sends everything it routed earlier before that
acknowledgement, on the same connection, so a new handle never receives a
message routed before it existed. The table is not thread-safe: the transport
guards it with its own lock. The one exception is the read side of routing,
:meth:`SubscriptionTable.candidates`, which the network thread calls for every
message without that lock: it reads immutable snapshots that every change
replaces whole (filters first, then the per-topic cache), so a reader sees the
table before or after a change, never half of one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pye2.domain.logtext import clip
from pye2.ports.transport import Delivery, Handler

from ._topics import local_filter, matches, shared_filter

__all__ = ["FilterEntry", "MqttSubscription", "SubscriptionTable"]

log = logging.getLogger(__name__)

_MAX_SUBSCRIPTION_ID = 268_435_455  # MQTT 5 variable byte integer limit
_TOPIC_CACHE_MAX = 4096  # topics whose matching handles are remembered (routing without ids)


class MqttSubscription:
    """Handle returned by ``MqttTransport.subscribe``; ``cancel()`` is idempotent."""

    __slots__ = ("_active", "_address", "_cancelled", "_canceller", "_errors", "_handler", "_lock", "broker_filter",
                 "share_group")

    def __init__(self, address: str, handler: Handler, canceller: Callable[[MqttSubscription], None],
                 share_group: str | None = None) -> None:
        self._address = address
        self.share_group = share_group
        #: what the broker is asked for: the address, or ``$share/<group>/<address>`` for a shared one
        self.broker_filter = shared_filter(share_group, address) if share_group else address
        self._handler = handler
        self._canceller = canceller
        self._cancelled = False
        self._active = False
        self._errors = 0
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """The subscribed topic filter (may contain ``+``/``#``)."""
        return self._address

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called (or the transport closed)."""
        return self._cancelled

    @property
    def active(self) -> bool:
        """True once the broker routes to this handle (see the module docstring)."""
        return self._active

    def activate(self) -> None:
        """Start delivering (called by the transport on the network thread, or before connecting)."""
        self._active = True

    @property
    def handler_errors(self) -> int:
        """How many times this subscription's handler raised."""
        return self._errors

    def cancel(self) -> None:
        """Stop deliveries to this handler; unsubscribes at the broker when it was the last one.

        A delivery already being dispatched on the network thread may still complete.
        """
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
        self._canceller(self)

    def mark_cancelled(self) -> None:
        """Used by the transport at ``close()``: no broker round trip."""
        self._cancelled = True

    def deliver(self, delivery: Delivery) -> bool:
        """Call the handler; log (with traceback) and count an exception. False if it raised."""
        if self._cancelled:
            return True
        try:
            self._handler(delivery)
        except Exception:
            self._errors += 1
            log.exception("handler %s for MQTT filter %s raised on topic %s", clip(self._handler), clip(self._address),
                          clip(delivery.address))
            return False
        return True

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "active"
        return f"<MqttSubscription {self.broker_filter!r} {state}>"


@dataclass
class FilterEntry:
    """One distinct broker filter (``$share/<group>/...`` for a shared one): its subscription id, QoS, handlers."""

    topic_filter: str
    sub_id: int
    qos: int
    subs: list[MqttSubscription] = field(default_factory=list)


class SubscriptionTable:
    """Filters -> handlers, plus the id -> filter map used to route deliveries."""

    def __init__(self) -> None:
        self._by_filter: dict[str, FilterEntry] = {}
        self._by_id: dict[int, FilterEntry] = {}
        self._last_id = 0
        # Snapshots for lock-free routing (replaced whole on every change, see the module doc).
        self._subs_by_id: dict[int, tuple[MqttSubscription, ...]] = {}
        self._filters: tuple[tuple[str, tuple[MqttSubscription, ...]], ...] = ()
        self._by_topic: dict[str, tuple[MqttSubscription, ...]] = {}

    def add(self, sub: MqttSubscription, qos: int) -> tuple[FilterEntry, bool]:
        """Register ``sub``; return its filter entry and whether the filter is new."""
        entry = self._by_filter.get(sub.broker_filter)
        is_new = entry is None
        if entry is None:
            entry = FilterEntry(sub.broker_filter, self._next_id(), qos)
            self._by_filter[sub.broker_filter] = entry
            self._by_id[entry.sub_id] = entry
        entry.subs.append(sub)
        self._changed()
        return entry, is_new

    def remove(self, sub: MqttSubscription) -> FilterEntry | None:
        """Unregister ``sub``; return its entry if that was the filter's last handler."""
        entry = self._by_filter.get(sub.broker_filter)
        if entry is None or sub not in entry.subs:
            return None
        entry.subs.remove(sub)
        if not entry.subs:
            del self._by_filter[entry.topic_filter]
            del self._by_id[entry.sub_id]
        self._changed()
        return None if entry.subs else entry

    def entries(self) -> list[FilterEntry]:
        """Every filter with at least one handler, in subscription order."""
        return list(self._by_filter.values())

    def all_subscriptions(self) -> list[MqttSubscription]:
        """Every live handle."""
        return [s for e in self._by_filter.values() for s in e.subs]

    def clear(self) -> None:
        """Forget everything (the transport is closing)."""
        self._by_filter.clear()
        self._by_id.clear()
        self._changed()

    def route(self, topic: str, sub_ids: Sequence[int] | None) -> list[MqttSubscription]:
        """The active handles one broker delivery goes to, each at most once (see :meth:`candidates`)."""
        return [s for s in self.candidates(topic, sub_ids) if s.active]

    def candidates(self, topic: str, sub_ids: Sequence[int] | None) -> tuple[MqttSubscription, ...]:
        """The handles, active or not, of the filters one broker delivery is for (no lock needed).

        With subscription identifiers (MQTT 5) the delivery goes to the filters
        whose ids it carries: a broker that sends one copy per overlapping
        subscription (Mosquitto does) stamps each copy with one id, so every
        subscription sees the message once. An id whose filter was cancelled
        in the meantime routes nowhere. Without ids (MQTT 3.1.1, or a broker
        that does not assign them) the topic is matched against every filter
        (remembered per topic until the table changes). The caller skips the
        handles that are not active yet.
        """
        if sub_ids:
            by_id = self._subs_by_id
            if len(sub_ids) == 1:
                return by_id.get(sub_ids[0], ())
            return tuple(s for i in dict.fromkeys(sub_ids) for s in by_id.get(i, ()))
        cache = self._by_topic  # read before the filters: a change replaces them in the other order
        found = cache.get(topic)
        if found is None:
            found = tuple(s for topic_filter, subs in self._filters if matches(topic_filter, topic) for s in subs)
            if len(cache) >= _TOPIC_CACHE_MAX:
                cache.clear()
            cache[topic] = found
        return found

    def _changed(self) -> None:
        """Publish new routing snapshots (the owner's lock is held; see the module doc)."""
        self._subs_by_id = {i: tuple(e.subs) for i, e in self._by_id.items()}
        self._filters = tuple((local_filter(e.topic_filter), tuple(e.subs)) for e in self._by_filter.values())
        self._by_topic = {}

    def _next_id(self) -> int:
        # Fresh ids (not reused while the table lives) keep late deliveries for a
        # cancelled filter from reaching a new subscription that took its id.
        self._last_id = self._last_id % _MAX_SUBSCRIPTION_ID + 1
        while self._last_id in self._by_id:
            self._last_id = self._last_id % _MAX_SUBSCRIPTION_ID + 1
        return self._last_id
