"""Hypothesis strategies for transport-level tests: addresses, filters, bodies, bad input.

Address levels use ``[a-z0-9_]`` only, so every address maps cleanly onto any
broker (MQTT topics, AMQP routing keys). Strategies for protocol messages
(commands, heartbeats, malformed envelopes) belong with the domain codecs.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

__all__ = [
    "LEVEL_ALPHABET",
    "address_levels",
    "addresses",
    "bodies",
    "invalid_addresses",
    "invalid_filters",
    "topic_filters",
]

LEVEL_ALPHABET = string.ascii_lowercase + string.digits + "_"

NOTABLE_BODIES = (b"", b"\x00", b"\xff\xfe\xfd", bytes(range(256)), "\u00e9\u2713".encode())


def address_levels(max_size: int = 8) -> st.SearchStrategy[str]:
    """One address level: 1..``max_size`` characters of :data:`LEVEL_ALPHABET`."""
    return st.text(LEVEL_ALPHABET, min_size=1, max_size=max_size)


def addresses(prefix: str | None = None, *, max_levels: int = 4) -> st.SearchStrategy[str]:
    """Concrete addresses (no wildcards), optionally under ``prefix``."""
    levels = st.lists(address_levels(), min_size=1, max_size=max_levels).map("/".join)
    return levels if prefix is None else levels.map(lambda rest: f"{prefix}/{rest}")


def topic_filters(prefix: str | None = None, *, max_levels: int = 4, wildcards: bool = True) -> st.SearchStrategy[str]:
    """Valid subscription filters: levels or ``+``, optionally ending in ``#``."""
    level = st.one_of(address_levels(), st.just("+")) if wildcards else address_levels()
    head = st.lists(level, min_size=1, max_size=max_levels)
    tail = st.sampled_from(["", "/#"]) if wildcards else st.just("")
    built = st.builds(lambda levels, end: "/".join(levels) + end, head, tail)
    return built if prefix is None else built.map(lambda rest: f"{prefix}/{rest}")


def bodies(max_size: int = 1024) -> st.SearchStrategy[bytes]:
    """Message bodies: notable edge cases (empty, NUL, non-UTF-8) and random bytes."""
    notable = [b for b in NOTABLE_BODIES if len(b) <= max_size]
    return st.one_of(st.sampled_from(notable), st.binary(max_size=max_size))


def invalid_addresses() -> st.SearchStrategy[str]:
    """Addresses no transport may publish to: empty, or holding a wildcard character."""
    with_wildcard = st.builds(
        lambda a, w, b: f"{a}{w}{b}", st.text(LEVEL_ALPHABET + "/", max_size=6), st.sampled_from("+#"),
        st.text(LEVEL_ALPHABET + "/", max_size=6),
    )
    return st.one_of(st.just(""), with_wildcard)


def invalid_filters() -> st.SearchStrategy[str]:
    """Malformed filters: empty, ``#`` not last, wildcards sharing a level with text."""
    level = address_levels(4)
    hash_not_last = st.builds(lambda a, b: f"{a}/#/{b}", level, level)
    glued = st.builds(lambda a, w, b: f"{a}{w}{b}", level, st.sampled_from("+#"), st.one_of(st.just(""), level))
    glued_front = st.builds(lambda w, b: f"{w}{b}", st.sampled_from("+#"), level)
    return st.one_of(st.just(""), hash_not_last, glued, glued_front)
