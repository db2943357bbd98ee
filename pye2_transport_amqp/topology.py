"""Pure AMQP topology: where a pye2 address lives on a RabbitMQ broker.

pye2 addresses are MQTT-style topics (``lummetry/ctrl``, ``lummetry/<node>/config``;
filters may use ``+`` and a trailing ``#``). DECISIONS item 7 maps them onto AMQP:

* **exchange** = the first level (the *root*, e.g. ``lummetry``), type ``topic``;
* **routing key** = the whole topic with ``/`` replaced by ``.``
  (``lummetry/ctrl`` -> exchange ``lummetry``, key ``lummetry.ctrl``);
* filter wildcards: MQTT ``+`` -> AMQP ``*``, MQTT ``#`` -> AMQP ``#``. Both ``#`` match
  zero levels (``a/#`` matches ``a``; ``a.#`` matches ``a``) and ``+``/``*`` match one
  level, also an empty one.

Edge cases, decided here and pinned by ``tests/unit/test_amqp_topology.py``:

* **Characters AMQP treats specially are escaped, per level**: ``%`` -> ``%25``,
  ``.`` -> ``%2E``, ``*`` -> ``%2A``, ``#`` -> ``%23``. A level ``node.v1`` would otherwise
  become two AMQP words and stop matching ``+``; a literal level ``*`` would become a
  wildcard. Addresses without these characters (every address pye2 builds) map exactly
  as DECISIONS item 7 says, so other AMQP clients following that rule interoperate.
  Decoding only undoes those four escapes; any other ``%xx`` is kept as is, so a key
  from a foreign publisher always decodes.
* **A filter whose first level is a wildcard is refused** (:class:`ConfigError`): the
  exchange is the root, and ``+/ctrl`` or ``#`` would have to be bound to every exchange
  on the broker, which AMQP cannot enumerate. Subscribe once per root instead.
* The root must be a valid AMQP exchange name (letters, digits, ``-_.:``, at most 255
  bytes) that does not start with the reserved ``amq.``; routing keys are at most 255
  UTF-8 bytes. Empty levels after the root are allowed (MQTT allows them and RabbitMQ
  matches empty words); an empty root, a NUL character, a wildcard in a publish address
  and a misplaced wildcard in a filter are refused.
* Queues are session-owned: exclusive (only this connection may use them), auto-delete,
  not durable, named ``<prefix>.<token>.<generation>.<subscription id>``. The
  generation changes on every (re)connect, so a new connection never collides with the
  exclusive queue of a dead one the broker has not noticed yet.
* A *shared* subscription (a share group, competing consumers) uses one queue per group
  and filter, the same for every client: ``<prefix>.share.<group>.<binding key>``, not
  exclusive, auto-delete (gone with its last consumer), not durable. Every member
  consumes from it, so the broker hands each message to one of them (round robin).

Declaring the same exchange, queue or binding twice with the same arguments is harmless
in AMQP; the descriptions below always use the same arguments for the same name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pye2.errors import ConfigError

__all__ = [
    "EXCHANGE_TYPE",
    "MAX_NAME_BYTES",
    "BindingDeclaration",
    "ExchangeDeclaration",
    "QueueDeclaration",
    "Route",
    "SubscriptionPlan",
    "address_from",
    "binding_for",
    "escape_level",
    "plan_subscription",
    "queue_name",
    "route_for",
    "shared_queue_name",
    "topic_matches",
    "unescape_word",
    "validate_filter",
]

EXCHANGE_TYPE = "topic"
MAX_NAME_BYTES = 255  # AMQP short string: exchange names, queue names, routing keys

_ESCAPES = {"%": "%25", ".": "%2E", "*": "%2A", "#": "%23"}
_ESCAPE_RE = re.compile(r"[%.*#]")
_UNESCAPES = {"25": "%", "2E": ".", "2A": "*", "23": "#"}
_UNESCAPE_RE = re.compile(r"%(25|2[EeAa3])")
_EXCHANGE_RE = re.compile(r"[A-Za-z0-9_.:\-]+")
_PREFIX_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a publish goes: an exchange and a routing key."""

    exchange: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class ExchangeDeclaration:
    """A topic exchange (one per root). ``durable`` must match how the network declared it."""

    name: str
    durable: bool = True
    type: str = EXCHANGE_TYPE
    auto_delete: bool = False


@dataclass(frozen=True, slots=True)
class QueueDeclaration:
    """A subscription's queue: auto-delete, not durable; exclusive unless a share group's."""

    name: str
    exclusive: bool = True
    auto_delete: bool = True
    durable: bool = False


@dataclass(frozen=True, slots=True)
class BindingDeclaration:
    """Binds ``queue`` to ``exchange`` with an AMQP binding key."""

    queue: str
    exchange: str
    binding_key: str


@dataclass(frozen=True, slots=True)
class SubscriptionPlan:
    """Everything one subscription declares, in order: exchange, queue, binding."""

    exchange: ExchangeDeclaration
    queue: QueueDeclaration
    binding: BindingDeclaration


def escape_level(level: str) -> str:
    """One topic level as one AMQP word: ``%``, ``.``, ``*`` and ``#`` percent-escaped."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], level)


def unescape_word(word: str) -> str:
    """Undo :func:`escape_level`; other ``%xx`` sequences are kept literally."""
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m.group(1).upper()], word)


def _levels(topic: object, what: str) -> list[str]:
    if not isinstance(topic, str):
        raise ConfigError(f"{what} must be a str, got {type(topic).__name__}")
    if not topic:
        raise ConfigError(f"{what} must not be empty")
    if "\x00" in topic:
        raise ConfigError(f"{what} {topic!r} contains a NUL character")
    return topic.split("/")


def _check_root(root: str, topic: str, what: str) -> None:
    if not root:
        raise ConfigError(f"{what} {topic!r} has an empty first level; the root names the AMQP exchange")
    if not _EXCHANGE_RE.fullmatch(root) or len(root) > MAX_NAME_BYTES:
        raise ConfigError(
            f"{what} {topic!r}: root {root!r} is not a valid AMQP exchange name "
            "(letters, digits, '-', '_', '.', ':'; at most 255 characters)"
        )
    if root.lower().startswith("amq."):
        raise ConfigError(f"{what} {topic!r}: root {root!r} starts with the reserved 'amq.' prefix")


def _check_key(key: str, topic: str, what: str) -> str:
    size = len(key.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ConfigError(f"{what} {topic!r} maps to a {size}-byte AMQP key; the maximum is {MAX_NAME_BYTES}")
    return key


def route_for(address: str) -> Route:
    """Map a publish address to ``Route(exchange=root, routing_key=...)``.

    Raises:
        ConfigError: not a str, empty, wildcard inside, bad root, key too long.
    """
    levels = _levels(address, "address")
    for level in levels:
        if "+" in level or "#" in level:
            raise ConfigError(f"address {address!r} contains a wildcard; publish to a concrete topic")
    _check_root(levels[0], address, "address")
    key = ".".join(escape_level(level) for level in levels)
    return Route(levels[0], _check_key(key, address, "address"))


def validate_filter(topic_filter: str) -> list[str]:
    """Check MQTT filter syntax (``+`` a whole level, ``#`` only as the whole last level).

    Returns its levels. A wildcard first level is valid MQTT (it is refused only where a
    filter becomes an AMQP binding, in :func:`binding_for`). Raises ConfigError.
    """
    levels = _levels(topic_filter, "filter")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            raise ConfigError(f"filter {topic_filter!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ConfigError(f"filter {topic_filter!r}: '+' must be a whole level")
    return levels


def binding_for(topic_filter: str) -> BindingDeclaration:
    """Map a subscription filter to its exchange and binding key (``queue`` left empty).

    Raises:
        ConfigError: malformed filter, first level a wildcard, bad root, key too long.
    """
    levels = validate_filter(topic_filter)
    if levels[0] in ("+", "#"):
        raise ConfigError(
            f"filter {topic_filter!r} starts with a wildcard; the AMQP transport binds to one "
            "exchange per root, so the first level must be a concrete root (subscribe once per root)"
        )
    _check_root(levels[0], topic_filter, "filter")
    words = ["*" if lv == "+" else "#" if lv == "#" else escape_level(lv) for lv in levels]
    key = _check_key(".".join(words), topic_filter, "filter")
    return BindingDeclaration(queue="", exchange=levels[0], binding_key=key)


def address_from(routing_key: str) -> str:
    """Rebuild the pye2 address from a routing key (it already starts with the root)."""
    return "/".join(unescape_word(word) for word in routing_key.split("."))


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: does ``topic`` match ``topic_filter`` (``+`` one level, ``#`` the rest)?"""
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def queue_name(prefix: str, token: str, generation: int, sub_id: int) -> str:
    """Name of one subscription's queue on one connection generation.

    Raises:
        ConfigError: prefix or token not made of letters, digits, ``-`` and ``_``.
    """
    for label, value in (("queue prefix", prefix), ("token", token)):
        if not _PREFIX_RE.fullmatch(value):
            raise ConfigError(f"{label} {value!r} must be 1-64 letters, digits, '-' or '_'")
    return f"{prefix}.{token}.{generation}.{sub_id}"


def shared_queue_name(prefix: str, group: str, topic_filter: str) -> str:
    """Name of the queue the members of share group ``group`` consume ``topic_filter`` from.

    Raises:
        ConfigError: bad prefix, group or filter, or a name longer than 255 bytes.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(f"queue prefix {prefix!r} must be 1-64 letters, digits, '-' or '_'")
    if not _PREFIX_RE.fullmatch(group):
        raise ConfigError(f"share group {group!r} must be 1-64 letters, digits, '-' or '_'")
    name = f"{prefix}.share.{group}.{binding_for(topic_filter).binding_key}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ConfigError(f"the shared queue of filter {topic_filter!r} would be named with more than "
                          f"{MAX_NAME_BYTES} bytes; use a shorter root or group")
    return name


def plan_subscription(topic_filter: str, queue: str, *, durable_exchange: bool = True,
                      shared: bool = False) -> SubscriptionPlan:
    """The declarations one subscription needs: its root's exchange, its queue, the binding.

    ``shared``: the queue is a share group's (see :func:`shared_queue_name`): not exclusive.
    """
    binding = binding_for(topic_filter)
    return SubscriptionPlan(
        exchange=ExchangeDeclaration(binding.exchange, durable=durable_exchange),
        queue=QueueDeclaration(queue, exclusive=not shared),
        binding=BindingDeclaration(queue=queue, exchange=binding.exchange, binding_key=binding.binding_key),
    )
