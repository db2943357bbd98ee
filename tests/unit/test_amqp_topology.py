"""Pure tests of the AMQP topology: address <-> (exchange, routing key), filters, queues.

The mapping must keep MQTT semantics on an AMQP topic exchange. Besides the table of
decided edge cases, a property compares, for random filters and topics with awkward
characters, MQTT matching (the conformance kit's own reference matcher) with AMQP
topic matching (a small reference matcher written here from the AMQP rules; the
broker tests in tests/transports/test_amqp.py check the same against RabbitMQ).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.errors import ConfigError
from pye2.testing.collect import address_matches
from pye2_transport_amqp.topology import (
    MAX_NAME_BYTES,
    BindingDeclaration,
    ExchangeDeclaration,
    QueueDeclaration,
    Route,
    address_from,
    binding_for,
    escape_level,
    plan_subscription,
    queue_name,
    route_for,
    topic_matches,
    unescape_word,
    validate_filter,
)


def amqp_topic_match(binding_key: str, routing_key: str) -> bool:
    """AMQP 0-9-1 topic matching: '*' is exactly one word, '#' zero or more words."""
    pattern, words = binding_key.split("."), routing_key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(words)
        if pattern[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(words) + 1))
        if j == len(words):
            return False
        return (pattern[i] == "*" or pattern[i] == words[j]) and match(i + 1, j + 1)

    return match(0, 0)


# -- the decided mapping ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("address", "exchange", "key"),
    [
        ("lummetry/ctrl", "lummetry", "lummetry.ctrl"),
        ("lummetry/notif", "lummetry", "lummetry.notif"),
        ("lummetry/gts-test/config", "lummetry", "lummetry.gts-test.config"),
        ("naeural/0xai_AbC123/config", "naeural", "naeural.0xai_AbC123.config"),
        ("naeural/ctrl/0xai_AbC123", "naeural", "naeural.ctrl.0xai_AbC123"),
        ("lummetry", "lummetry", "lummetry"),
    ],
)
def test_protocol_addresses_map_as_decisions_item_7(address: str, exchange: str, key: str) -> None:
    assert route_for(address) == Route(exchange, key)
    assert address_from(key) == address


@pytest.mark.parametrize(
    ("topic_filter", "exchange", "key"),
    [
        ("lummetry/+/config", "lummetry", "lummetry.*.config"),
        ("lummetry/#", "lummetry", "lummetry.#"),
        ("lummetry/ctrl", "lummetry", "lummetry.ctrl"),
        ("naeural/+/payloads/#", "naeural", "naeural.*.payloads.#"),
    ],
)
def test_filters_map_plus_to_star_and_hash_to_hash(topic_filter: str, exchange: str, key: str) -> None:
    assert binding_for(topic_filter) == BindingDeclaration(queue="", exchange=exchange, binding_key=key)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("lummetry/node.v1/config", "lummetry.node%2Ev1.config"),  # a dot would split the level
        ("lummetry/*/x", "lummetry.%2A.x"),  # a literal '*' level must not become a wildcard
        ("lummetry/50%/x", "lummetry.50%25.x"),  # the escape character escapes itself
        ("lummetry/%2E/x", "lummetry.%252E.x"),  # ... so text that looks escaped survives
        ("lummetry//x", "lummetry..x"),  # empty levels are words too
        ("lummetry/x/", "lummetry.x."),
        ("lummetry/h\u00e9/\u4e16", "lummetry.h\u00e9.\u4e16"),
    ],
)
def test_special_characters_are_escaped_per_level(address: str, key: str) -> None:
    route = route_for(address)
    assert route.routing_key == key
    assert address_from(route.routing_key) == address


def test_literal_star_in_a_filter_is_escaped_not_a_wildcard() -> None:
    assert binding_for("lummetry/*").binding_key == "lummetry.%2A"
    assert not amqp_topic_match(binding_for("lummetry/*").binding_key, route_for("lummetry/x").routing_key)
    assert amqp_topic_match(binding_for("lummetry/*").binding_key, route_for("lummetry/*").routing_key)


def test_dotted_level_still_matches_a_single_level_wildcard() -> None:
    binding = binding_for("lummetry/+/config").binding_key
    assert amqp_topic_match(binding, route_for("lummetry/node.v1/config").routing_key)


def test_hash_matches_zero_levels_on_both_sides() -> None:
    assert topic_matches("lummetry/#", "lummetry")
    assert amqp_topic_match(binding_for("lummetry/#").binding_key, route_for("lummetry").routing_key)
    assert amqp_topic_match(binding_for("lummetry/a/#").binding_key, route_for("lummetry/a").routing_key)


def test_decoding_is_lenient_with_foreign_keys() -> None:
    assert address_from("lummetry.%zz.x") == "lummetry/%zz/x"
    assert address_from("lummetry.%2e.x") == "lummetry/./x"  # lower-case hex accepted
    assert unescape_word("%") == "%"
    assert unescape_word(escape_level("%%2E.")) == "%%2E."


# -- refused input ------------------------------------------------------------------------

@pytest.mark.parametrize("topic_filter", ["+/ctrl", "#", "+", "+/+/config"])
def test_filter_starting_with_a_wildcard_is_refused(topic_filter: str) -> None:
    with pytest.raises(ConfigError, match="starts with a wildcard"):
        binding_for(topic_filter)


def test_wildcard_root_is_valid_mqtt_syntax_for_local_matching() -> None:
    assert validate_filter("+/+/config") == ["+", "+", "config"]
    assert topic_matches("+/+/config", "lummetry/n1/config")


@pytest.mark.parametrize("topic_filter", ["a/#/b", "a+", "a/+b", "a/b#", "#/a", "", "a/\x00"])
def test_malformed_filters_are_refused(topic_filter: str) -> None:
    with pytest.raises(ConfigError):
        binding_for(topic_filter)


@pytest.mark.parametrize(
    "address",
    ["", "a/+", "a/#", "+", "a/b+", "a/#/b", "/a", "amq.topic/x", "AMQ.x/y", "my root/x", "r\u00e9/x",
     "x" * 256 + "/y", "a/" + "x" * MAX_NAME_BYTES, "a/\x00"],
)
def test_bad_publish_addresses_are_refused(address: str) -> None:
    with pytest.raises(ConfigError):
        route_for(address)


@pytest.mark.parametrize("value", [None, 3, b"lummetry/ctrl"])
def test_non_string_addresses_are_config_errors(value: object) -> None:
    with pytest.raises(ConfigError):
        route_for(value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        binding_for(value)  # type: ignore[arg-type]


def test_routing_key_limit_counts_utf8_bytes() -> None:
    fits = "a/" + "\u00e9" * ((MAX_NAME_BYTES - 2) // 2)
    assert len(route_for(fits).routing_key.encode()) <= MAX_NAME_BYTES
    with pytest.raises(ConfigError, match="255"):
        route_for(fits + "\u00e9")


# -- queues and declarations --------------------------------------------------------------

def test_queue_names_are_unique_per_generation_and_subscription() -> None:
    names = {queue_name("pye2", "ab12", gen, sub) for gen in range(3) for sub in range(3)}
    assert len(names) == 9
    assert queue_name("pye2", "ab12", 2, 7) == "pye2.ab12.2.7"


@pytest.mark.parametrize(("prefix", "token"), [("", "t"), ("bad prefix", "t"), ("p", "a.b"), ("p" * 65, "t")])
def test_bad_queue_name_parts_are_refused(prefix: str, token: str) -> None:
    with pytest.raises(ConfigError):
        queue_name(prefix, token, 0, 0)


def test_subscription_plan_is_session_owned_and_deterministic() -> None:
    plan = plan_subscription("lummetry/+/config", "pye2.t.1.1", durable_exchange=False)
    assert plan.exchange == ExchangeDeclaration("lummetry", durable=False, type="topic", auto_delete=False)
    assert plan.queue == QueueDeclaration("pye2.t.1.1", exclusive=True, auto_delete=True, durable=False)
    assert plan.binding == BindingDeclaration("pye2.t.1.1", "lummetry", "lummetry.*.config")
    # Same inputs, same declarations: what makes re-declaring on every reconnect harmless.
    assert plan_subscription("lummetry/+/config", "pye2.t.1.1", durable_exchange=False) == plan


# -- properties ---------------------------------------------------------------------------

_level = st.text(alphabet=st.sampled_from(list("ab.*%2E\u00e9 ")), max_size=5)
_roots = st.sampled_from(["lummetry", "naeural", "r.x", "r-1:z"])


@st.composite
def _topics(draw: st.DrawFn) -> str:
    return "/".join([draw(_roots)] + draw(st.lists(_level, max_size=4)))


@st.composite
def _filters(draw: st.DrawFn) -> str:
    rest = draw(st.lists(st.one_of(_level, st.just("+")), max_size=4))
    tail = draw(st.sampled_from([[], ["#"]]))
    return "/".join([draw(_roots)] + rest + tail)


@given(_topics())
def test_every_level_is_one_word_and_the_address_round_trips(topic: str) -> None:
    route = route_for(topic)
    assert route.exchange == topic.split("/")[0]
    assert len(route.routing_key.split(".")) == len(topic.split("/"))
    assert address_from(route.routing_key) == topic


@given(_filters(), _topics())
def test_amqp_matching_of_mapped_keys_equals_mqtt_matching(topic_filter: str, topic: str) -> None:
    binding, route = binding_for(topic_filter), route_for(topic)
    mqtt = address_matches(topic_filter, topic)
    assert topic_matches(topic_filter, topic) == mqtt
    same_exchange = binding.exchange == route.exchange
    assert (same_exchange and amqp_topic_match(binding.binding_key, route.routing_key)) == mqtt
