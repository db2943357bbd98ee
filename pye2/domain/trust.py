"""Who a node is: its address. Its name is a label bound to one address.

A node is the address that signs its messages (the verified ``EE_SENDER``);
its name (``EE_ID``) is a label anyone can write. :class:`NodeBindings` binds
each name to one address:

* **pinned** by the user in advance (``trusted_nodes={name: address}``), or
  implied by a trusted address (``trusted_nodes=[address, ...]``): the first
  message from that address binds the names it claims, even over an earlier
  first-use binding;
* otherwise by **first use**: the first verified message that carries the name
  binds it (a heartbeat, normally; see :meth:`NodeBindings.observe`).

A message from another address that claims a bound name is an *impostor*: it
is not from that node. The binding does not move; :meth:`NodeBindings.forget`
(or a pin) is how a user accepts a node that really changed its key. Every
address that claimed a name is remembered (a few per name), so a name that
several addresses claimed and that nobody pinned is *ambiguous*: looking it up
raises :class:`~pye2.errors.AmbiguousNode` instead of picking one.

Bounded: at most ``max_names`` first-use bindings (the least recently seen go
first); pinned names and names :meth:`held <NodeBindings.hold>` by the
application (a pipeline lives there, a command went there) are never evicted.
Pure: no clock, no I/O, no logging.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from pye2.errors import AmbiguousNode, ConfigError

__all__ = ["DEFAULT_MAX_NAMES", "MAX_CLAIMANTS", "Binding", "NodeBindings", "Observation", "Verdict"]

#: equality of two addresses (the same key under two prefixes is one node)
SameAddress = Callable[[str, str], bool]

#: first-use bindings kept at most (pinned and held ones do not count)
DEFAULT_MAX_NAMES = 100_000
#: other addresses remembered per name (to list them in AmbiguousNode and report each once)
MAX_CLAIMANTS = 8


class Verdict(Enum):
    """What a message's (name, address) pair means."""

    #: the name is bound to this address (or was just bound to it)
    OWNER = "owner"
    #: the name is bound to another address: not from that node
    IMPOSTOR = "impostor"
    #: no binding was made or checked (no address to bind: an unsigned message)
    UNBOUND = "unbound"


class Observation(NamedTuple):
    """The verdict on one message's (name, address), the name's binding, and whether the claimant is new."""

    verdict: Verdict
    binding: Binding | None
    new_claimant: bool = False


@dataclass(slots=True)
class Binding:
    """One name's binding, and the other addresses that claimed it."""

    address: str
    pinned: bool = False
    held: bool = False
    others: list[str] = field(default_factory=list)

    def claimants(self) -> list[str]:
        """The bound address first, then the others."""
        return [self.address, *self.others]


class NodeBindings:
    """Name -> address bindings for one session.

    Args:
        pins: names pinned to addresses (``{name: address}``), or trusted
            addresses (a list) whose names bind to them on first contact.
        max_names: bound on the first-use bindings kept.
        same_address: equality of addresses (``aixp_``/``0xai_`` prefixes of one
            key are the same node); default plain equality.
    """

    def __init__(self, pins: Mapping[str, str] | Iterable[str] | None = None, *,
                 max_names: int = DEFAULT_MAX_NAMES, same_address: SameAddress | None = None) -> None:
        if max_names <= 0:
            raise ConfigError("max_names must be positive")
        self.max_names = max_names
        self._same: SameAddress = same_address or _equal
        self._bound: OrderedDict[str, Binding] = OrderedDict()
        self._trusted: set[str] = set()
        self._first_use = 0
        if isinstance(pins, Mapping):
            for name, address in pins.items():
                self.pin(str(name), str(address))
        elif pins is not None:
            for address in pins:
                self.trust(str(address))

    # -- user decisions ----------------------------------------------------------------
    def pin(self, name: str, address: str) -> None:
        """Bind ``name`` to ``address`` for good (replaces any binding; the old address becomes a claimant)."""
        old = self._bound.get(name)
        if old is not None and not old.pinned and not old.held:
            self._first_use -= 1
        binding = Binding(address, pinned=True)
        if old is not None:
            binding.others = [a for a in old.claimants() if not self._same(a, address)][:MAX_CLAIMANTS]
        self._bound[name] = binding

    def trust(self, address: str) -> None:
        """Trust ``address``: the names it claims bind to it, over first-use bindings."""
        self._trusted.add(address)

    def is_trusted(self, address: str) -> bool:
        return address in self._trusted or any(self._same(address, t) for t in self._trusted)

    def hold(self, name: str) -> None:
        """Keep ``name``'s binding however many others arrive (the application uses it)."""
        binding = self._bound.get(name)
        if binding is not None and not binding.held and not binding.pinned:
            binding.held = True
            self._first_use -= 1

    def forget(self, name_or_address: str) -> list[str]:
        """Drop the bindings of a name, or every name bound to an address; returns the names dropped.

        The next message that claims a dropped name binds it again (first use),
        unless a pin says otherwise.
        """
        names = [n for n, b in self._bound.items()
                 if n == name_or_address or self._same(b.address, name_or_address)]
        for name in names:
            binding = self._bound.pop(name)
            if not binding.pinned and not binding.held:
                self._first_use -= 1
        return names

    # -- messages -------------------------------------------------------------------------
    def observe(self, name: str, address: str | None, *, bind: bool = True) -> Observation:
        """Check (and, on first use, make) the binding of ``name`` for a verified message from ``address``.

        ``bind=False`` checks without binding an unbound name (its verdict is
        then ``UNBOUND``). On ``IMPOSTOR`` the claimant is remembered (up to
        :data:`MAX_CLAIMANTS` per name) and ``new_claimant`` says whether this
        is the first time it was seen: what to report once.
        """
        binding = self._bound.get(name)
        if address is None:
            return Observation(Verdict.UNBOUND if binding is None else Verdict.IMPOSTOR, binding)
        if binding is not None:
            if binding.address == address or self._same(binding.address, address):
                self._bound.move_to_end(name)
                return Observation(Verdict.OWNER, binding)
            if not binding.pinned and self.is_trusted(address) and not self.is_trusted(binding.address):
                self.pin(name, address)  # a trusted address takes its name back from a first-use binding
                return Observation(Verdict.OWNER, self._bound[name])
            new = address not in binding.others and len(binding.others) < MAX_CLAIMANTS
            if new:
                binding.others.append(address)
            return Observation(Verdict.IMPOSTOR, binding, new)
        if not bind:
            return Observation(Verdict.UNBOUND, None)
        if self.is_trusted(address):
            self.pin(name, address)
            return Observation(Verdict.OWNER, self._bound[name])
        binding = Binding(address)
        self._bound[name] = binding
        self._first_use += 1
        if self._first_use > self.max_names:
            self._evict()
        return Observation(Verdict.OWNER, binding)

    def _evict(self) -> None:
        for name, binding in self._bound.items():  # least recently seen first
            if not binding.pinned and not binding.held:
                del self._bound[name]
                self._first_use -= 1
                return

    # -- queries ----------------------------------------------------------------------
    def get(self, name: str) -> Binding | None:
        return self._bound.get(name)

    def address_of(self, name: str) -> str | None:
        """The address ``name`` is bound to; raises AmbiguousNode if others claimed it and it is not pinned."""
        binding = self._bound.get(name)
        if binding is None:
            return None
        if binding.others and not binding.pinned:
            raise AmbiguousNode(name, binding.claimants())
        return binding.address

    def known_claimant(self, name: str, address: str) -> bool:
        """Whether ``address`` already claimed ``name``, bound to another address, and was refused.

        Such a claimant is refused again without more ado (see
        :meth:`~pye2.service.directory.NodeDirectory.prescreen`); a trusted
        address never is (it may take its name back).
        """
        binding = self._bound.get(name)
        return (binding is not None and bool(binding.others) and address in binding.others
                and address != binding.address and not self.is_trusted(address))

    def names_of(self, address: str) -> list[str]:
        """Every name bound to ``address``."""
        return [n for n, b in self._bound.items() if self._same(b.address, address)]

    def pinned(self) -> dict[str, str]:
        return {n: b.address for n, b in self._bound.items() if b.pinned}

    def __len__(self) -> int:
        return len(self._bound)

    def __contains__(self, name: object) -> bool:
        return name in self._bound


def _equal(a: str, b: str) -> bool:
    return a == b
