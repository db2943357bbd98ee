"""NodeDirectory: the one place that knows who a node is.

It owns the session's name bindings (:class:`~pye2.domain.trust.NodeBindings`),
its replay memory (:class:`~pye2.domain.replay.ReplayGuard`) and its
:class:`~pye2.domain.network.NetworkView` (records keyed by address). The
router asks it to :meth:`admit` every decoded message before anything else
happens; commands, pipelines and confirmations ask it to :meth:`resolve` a
node (a name or an address) into the address they talk to.

Admission, in order:

0. **prescreen** (:meth:`prescreen`, before the signature is checked): a
   digest accepted recently, or an address already refused for a bound
   name, is refused at once, for the same reason as below;
1. **replay**: an ``EE_HASH`` (or signature) accepted recently is refused
   (``rejected["replay"]``), whatever its kind;
2. **binding**: a message whose name is bound to another address is an
   impostor (``rejected["impostor"]``); the first verified message that
   carries an unbound name binds it (first use), or the user pinned it.
   Each new (name, address) conflict is reported once: logged with both
   addresses, and handed to ``on_node_conflict``.

Unverified messages (``verify="off"``, or a failed signature under
``"warn"``) never bind a name: their sender is only what they claim. They are
still refused when they claim a bound name from another address.

Written by the session's dispatcher only (one thread); queries from other
threads read dicts without locks, which is safe for single reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pye2.domain.codecs.heartbeat_view import HeartbeatView
from pye2.domain.keys import same_address
from pye2.domain.logtext import clip
from pye2.domain.messages import Event, HeartbeatEvent
from pye2.domain.network import NetworkView, NodeRecord
from pye2.domain.profiles import WireProfile
from pye2.domain.replay import ReplayGuard
from pye2.domain.trust import NodeBindings, Verdict

__all__ = ["ConflictListener", "NodeDirectory"]

log = logging.getLogger("pye2.trust")

#: ``listener(name, known_address, other_address)``: a new address claimed a bound name
ConflictListener = Callable[[str, str, str], None]


class NodeDirectory:
    """Bindings, replay memory and node records of one session.

    Args:
        profile: the wire profile (which strings are addresses).
        network: the session's node records.
        pins: ``trusted_nodes``: ``{name: address}`` pins, or trusted addresses.
        replay: the replay memory (``None``: a default one).
        on_conflict: called for each new (name, other address) conflict.
        max_names: bound on first-use bindings.
    """

    def __init__(self, profile: WireProfile, network: NetworkView, *,
                 pins: Mapping[str, str] | Iterable[str] | None = None, replay: ReplayGuard | None = None,
                 on_conflict: ConflictListener | None = None, max_names: int | None = None) -> None:
        self.profile = profile
        self.network = network
        self.bindings = NodeBindings(pins, same_address=same_address,
                                     **({"max_names": max_names} if max_names else {}))
        self.replay = replay if replay is not None else ReplayGuard()
        self.on_conflict = on_conflict

    # -- admission ---------------------------------------------------------------------
    def admit(self, event: Event, now: float, *, verified: bool = True) -> str | None:
        """The reason to refuse ``event`` (``"replay"``, ``"impostor"``), or None to accept it.

        ``verified``: its sender was checked (then it may bind its name).
        """
        address = event.address
        if not self.replay.check(event.digest, now):
            return "replay"
        seen = self.bindings.observe(event.alias, address, bind=verified and address is not None)
        if seen.verdict is Verdict.IMPOSTOR:
            if seen.new_claimant and seen.binding is not None and address is not None:
                self._report(event.alias, seen.binding.address, address)
            return "impostor"
        return None

    def prescreen(self, message: Mapping[str, Any], now: float) -> str | None:
        """A cheap verdict on a parsed message before its signature is checked.

        ``"replay"`` for a digest (``EE_HASH``, else ``EE_SIGN``) accepted
        recently, ``"impostor"`` for an address that already claimed a bound
        name and was refused; None: check it in full. Under a flood of copies
        and impostors, most hostile messages stop here without the cost of a
        signature check (whatever their signature, they would be refused for
        the same reason). Read-only, so a decode thread may call it.
        """
        get = message.get
        digest = get("EE_HASH") or get("EE_SIGN")
        if digest.__class__ is str and self.replay.seen(digest, now):
            return "replay"
        name, sender = get("EE_ID"), get("EE_SENDER")
        if name.__class__ is str and sender.__class__ is str and self.bindings.known_claimant(name, sender):
            return "impostor"
        return None

    def _report(self, name: str, known: str, other: str) -> None:
        log.warning("node name %s is bound to %s; a message from %s claimed it and was refused "
                    "(session.pin_node / forget_node to change the binding)", clip(name), known, clip(other))
        if self.on_conflict is not None:
            self.on_conflict(name, known, other)

    # -- records ---------------------------------------------------------------------
    def record(self, event: Event, now: float) -> NodeRecord:
        """Note an admitted message in its node's record (see :class:`NetworkView`), and the node's signing mode."""
        if isinstance(event, HeartbeatEvent):
            rec = self.network.heartbeat(event.alias, event.address, now, event.data, size=event.size)
            data = event.data.envelope if isinstance(event.data, HeartbeatView) else event.data
        else:
            rec = self.network.seen(event.alias, event.address, now)
            data = event.data
        if event.verified and event.address is not None:
            rec.eth = "EE_ETH_SENDER" in data  # how the node signs is how it verifies (node.md section 5)
        return rec

    # -- lookups -------------------------------------------------------------------------
    def is_address(self, node: str) -> bool:
        return self.profile.strip_prefix(node) is not None

    def resolve(self, node: str) -> tuple[str, str | None]:
        """``(name, address)`` of a node given by name or address.

        A name resolves through its binding (raising
        :class:`~pye2.errors.AmbiguousNode` if other addresses claimed it and
        it is not pinned), else through the node's record (unverified
        sessions); an address resolves to itself and the name it last used.
        """
        if self.is_address(node):
            rec = self.network.find_address(node)
            if rec is not None:
                return rec.alias, rec.address
            names = self.bindings.names_of(node)
            return (names[-1] if names else node), node
        address = self.bindings.address_of(node)
        if address is not None:
            return node, address
        rec = self.network.find(node)
        return node, (rec.address if rec is not None else None)

    def find(self, node: str) -> NodeRecord | None:
        """The record of a node given by name or address (names resolve through their binding)."""
        name, address = self.resolve(node)
        if address is not None:
            rec = self.network.find_address(address)
            if rec is not None:
                return rec
            return None
        return self.network.find(name)

    def hold(self, node: str) -> None:
        """The application relies on this node's binding: never evict it."""
        name, _ = self.resolve(node)
        self.bindings.hold(name)

    def pin(self, name: str, address: str) -> None:
        self.bindings.pin(name, address)

    def forget(self, node: str) -> list[str]:
        """Forget a node's bindings and record (by name or address); returns the names unbound."""
        names = self.bindings.forget(node)
        self.network.forget(node)
        return names
