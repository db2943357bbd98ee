"""NodeBindings and ReplayGuard: the pure parts of the trust model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.domain.keys import same_address
from pye2.domain.profiles import AIXP, RATIO1
from pye2.domain.replay import ReplayGuard
from pye2.domain.trust import MAX_CLAIMANTS, NodeBindings, Verdict
from pye2.errors import AmbiguousNode, ConfigError
from pye2.wire import Identity

A, B, C = "0xai_A", "0xai_B", "0xai_C"


def test_first_use_binds_and_another_address_is_an_impostor() -> None:
    b = NodeBindings()
    assert b.observe("n1", A)[0] is Verdict.OWNER
    assert b.observe("n1", A)[0] is Verdict.OWNER
    verdict, binding, new = b.observe("n1", B)
    assert verdict is Verdict.IMPOSTOR and binding is not None and binding.address == A and new
    assert b.get("n1").address == A  # type: ignore[union-attr]  # the binding does not move


def test_a_name_claimed_by_two_addresses_is_ambiguous_until_pinned() -> None:
    b = NodeBindings()
    b.observe("n1", A)
    assert b.address_of("n1") == A
    b.observe("n1", B)
    with pytest.raises(AmbiguousNode) as err:
        b.address_of("n1")
    assert err.value.addresses == [A, B] and A in str(err.value) and B in str(err.value)
    b.pin("n1", B)
    assert b.address_of("n1") == B
    assert b.observe("n1", A)[0] is Verdict.IMPOSTOR
    assert b.observe("n1", B)[0] is Verdict.OWNER


def test_pins_win_over_first_use_and_trusted_addresses_take_their_names() -> None:
    pinned = NodeBindings({"n1": B})
    assert pinned.observe("n1", A)[0] is Verdict.IMPOSTOR
    assert pinned.observe("n1", B)[0] is Verdict.OWNER
    trusted = NodeBindings([B])
    assert trusted.observe("n1", A)[0] is Verdict.OWNER  # first use by an untrusted address
    assert trusted.observe("n1", B)[0] is Verdict.OWNER  # the trusted address takes its name back
    assert trusted.address_of("n1") == B
    assert trusted.observe("n1", A)[0] is Verdict.IMPOSTOR


def test_unverified_messages_never_bind_but_are_refused_on_bound_names() -> None:
    b = NodeBindings()
    assert b.observe("n1", A, bind=False)[0] is Verdict.UNBOUND
    assert "n1" not in b
    assert b.observe("n1", None)[0] is Verdict.UNBOUND
    b.observe("n1", A)
    assert b.observe("n1", B, bind=False)[0] is Verdict.IMPOSTOR
    assert b.observe("n1", None)[0] is Verdict.IMPOSTOR


def test_forget_lets_a_new_key_bind_the_name() -> None:
    b = NodeBindings()
    b.observe("n1", A)
    b.observe("n2", A)
    assert sorted(b.forget(A)) == ["n1", "n2"]
    assert b.observe("n1", B)[0] is Verdict.OWNER


def test_first_use_bindings_are_bounded_but_held_and_pinned_ones_stay() -> None:
    b = NodeBindings({"pinned": C}, max_names=10)
    b.observe("mine", A)
    b.hold("mine")
    for i in range(1000):
        b.observe(f"flood-{i}", f"0xai_{i}")
    assert len(b) == 12  # 10 first-use + held + pinned
    assert b.address_of("mine") == A and b.address_of("pinned") == C
    assert b.observe("mine", B)[0] is Verdict.IMPOSTOR


def test_claimants_per_name_are_bounded_and_reported_once() -> None:
    b = NodeBindings()
    b.observe("n1", A)
    new = 0
    for i in range(100):
        for _ in range(3):
            seen = b.observe("n1", f"0xai_x{i}")
            assert seen.verdict is Verdict.IMPOSTOR and seen.binding is not None
            new += seen.new_claimant
    assert new == MAX_CLAIMANTS
    assert len(b.get("n1").others) == MAX_CLAIMANTS  # type: ignore[union-attr]


def test_the_same_key_under_either_prefix_is_one_node() -> None:
    ident = Identity.generate()
    b = NodeBindings(same_address=same_address)
    b.observe("n1", ident.address(AIXP))
    assert b.observe("n1", ident.address(RATIO1))[0] is Verdict.OWNER


def test_bad_bounds_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        NodeBindings(max_names=0)
    with pytest.raises(ConfigError):
        ReplayGuard(-1)
    with pytest.raises(ConfigError):
        ReplayGuard(10, -1.0)


def test_replays_are_refused_within_the_window_and_accepted_after_it() -> None:
    g = ReplayGuard(max_entries=100, max_age=60)
    assert g.check("h1", 0.0)
    assert not g.check("h1", 30.0)
    assert g.check("h2", 30.0)
    assert g.check("h1", 61.0)  # left the memory by age
    assert g.check(None, 0.0) and g.check(None, 0.0)  # no digest: cannot tell copies apart


def test_replay_memory_is_bounded_by_count() -> None:
    g = ReplayGuard(max_entries=1000, max_age=1e9)
    for i in range(50_000):
        g.check(f"h{i}", float(i))
    assert len(g) == 1000
    assert not g.check("h49999", 50_000.0)
    assert g.check("h0", 50_001.0)  # forgotten: the documented window


@given(st.lists(st.text(min_size=1, max_size=4), max_size=60))
def test_a_digest_is_accepted_at_most_once_while_remembered(digests: list[str]) -> None:
    g = ReplayGuard(max_entries=10_000, max_age=1e9)
    accepted = [d for d in digests if g.check(d, 0.0)]
    assert len(accepted) == len(set(digests))


def test_known_claimant_is_only_a_refused_address_of_a_bound_name() -> None:
    b = NodeBindings()
    assert b.observe("n", "A").verdict is Verdict.OWNER
    assert not b.known_claimant("n", "B")  # never seen: check it in full
    assert b.observe("n", "B").verdict is Verdict.IMPOSTOR
    assert b.known_claimant("n", "B")
    assert not b.known_claimant("n", "A") and not b.known_claimant("other", "B")
    b.forget("n")
    assert not b.known_claimant("n", "B")


def test_a_trusted_address_is_never_a_known_claimant() -> None:
    b = NodeBindings(["T"])
    b.observe("n", "A")
    b.pin("n", "A")
    b.observe("n", "T")
    assert not b.known_claimant("n", "T")


def test_replay_seen_looks_without_remembering() -> None:
    guard = ReplayGuard(max_entries=10, max_age=60)
    assert not guard.seen("h1", 0.0)
    assert len(guard) == 0  # looking remembers nothing
    assert guard.check("h1", 0.0)
    assert guard.seen("h1", 59.0)
    assert not guard.seen("h1", 61.0)  # older than max_age: not a replay any more
    assert not guard.seen(None, 0.0) and not guard.seen("", 0.0)
