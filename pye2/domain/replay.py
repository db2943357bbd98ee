"""Replay memory: a message accepted once is not accepted again.

Every signed message has a digest unique to its content (``EE_HASH``, or
its signature where a sender leaves the hash out). :class:`ReplayGuard`
remembers the digests of the messages accepted recently; the same digest
again is a replay (or a duplicate delivery by the broker) and is refused.
The digest alone is the key, not the sender: ``EE_HASH`` covers everything
but the signature fields, so a copy whose ``EE_SENDER`` was rewritten (the
same key under the other address prefix, or a re-signed copy) is the same
message. "Recently" is bounded both ways: at most ``max_entries`` pairs and
none older than ``max_age`` seconds, whichever bound is reached first — so a
copy of a message can be accepted again once it has left the memory (see the
security model in the docs for the window that remains).

Memory: a digest is kept as one 64-bit keyed hash (``hash()`` of the
digest, salted per process) with its time, about 100 bytes an entry. Two
different messages sharing that hash (odds about ``n / 2**64``) would make the second a
false replay. Pure: the caller passes ``now``.
"""

from __future__ import annotations

from collections import OrderedDict

from pye2.errors import ConfigError

__all__ = ["DEFAULT_REPLAY_AGE", "DEFAULT_REPLAY_ENTRIES", "ReplayGuard"]

#: digests remembered at most
DEFAULT_REPLAY_ENTRIES = 200_000
#: seconds a digest is remembered at most
DEFAULT_REPLAY_AGE = 600.0


class ReplayGuard:
    """The digests accepted in the last ``max_age`` seconds, at most ``max_entries``."""

    __slots__ = ("_next_sweep", "_seen", "max_age", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_REPLAY_ENTRIES, max_age: float = DEFAULT_REPLAY_AGE) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 0:
            raise ConfigError(f"replay memory size must be a non-negative int, not {max_entries!r}")
        if not max_age >= 0:
            raise ConfigError(f"replay memory age must be >= 0 seconds, not {max_age!r}")
        self.max_entries = max_entries
        self.max_age = float(max_age)
        self._seen: OrderedDict[int, float] = OrderedDict()
        self._next_sweep = float("-inf")

    def check(self, digest: str | None, now: float) -> bool:
        """Remember the digest and return True if it is new; False if it was accepted recently (a replay).

        A message without a digest cannot be told apart from its copies: it is
        let through (True) and not remembered.
        """
        if not digest or self.max_entries == 0:
            return True
        seen = self._seen
        key = hash(digest)
        if key in seen:
            if now - seen[key] <= self.max_age:
                return False
            del seen[key]
        seen[key] = now
        if len(seen) > self.max_entries:
            seen.popitem(last=False)
        if now >= self._next_sweep:  # by age: at most once a second (a digest may outstay its age by that much)
            self._next_sweep = now + 1.0
            limit = now - self.max_age
            while seen and next(iter(seen.values())) < limit:
                seen.popitem(last=False)
        return True

    def seen(self, digest: str | None, now: float) -> bool:
        """Whether ``digest`` was accepted in the last ``max_age`` seconds, remembering nothing.

        A cheap look before a message's signature is checked: a digest accepted
        recently is a replay whatever the signature says. Safe to call from another
        thread than the one that :meth:`check` s (single dict reads).
        """
        if not digest:
            return False
        at = self._seen.get(hash(digest))
        return at is not None and now - at <= self.max_age

    def __len__(self) -> int:
        return len(self._seen)
