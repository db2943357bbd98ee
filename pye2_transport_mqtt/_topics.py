"""MQTT topic names and topic filters: validation and matching (pure).

Rules (MQTT 3.1.1 section 4.7, same in MQTT 5): levels are separated by ``/``;
in a filter ``+`` matches exactly one level and ``#`` (only as the whole last
level) matches any number of levels including none (``a/#`` matches ``a``);
a filter that starts with a wildcard does not match topics starting with
``$`` (broker-internal topics such as ``$SYS/...``). Names and filters are
1..65535 UTF-8 bytes and contain no NUL.
"""

from __future__ import annotations

from pye2.errors import ConfigError

__all__ = ["SHARE_PREFIX", "local_filter", "matches", "shared_filter", "validate_filter", "validate_topic"]

_MAX_BYTES = 65535
#: first level of an MQTT 5 shared subscription: ``$share/<group>/<filter>``
SHARE_PREFIX = "$share"


def _check_text(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"MQTT {kind} must be a str, got {type(value).__name__}")
    if not value:
        raise ConfigError(f"MQTT {kind} must not be empty")
    if "\x00" in value:
        raise ConfigError(f"MQTT {kind} must not contain NUL: {value!r}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigError(f"MQTT {kind} is not valid UTF-8 text: {value!r}") from None
    if size > _MAX_BYTES:
        raise ConfigError(f"MQTT {kind} is {size} bytes; the limit is {_MAX_BYTES}")
    return value


def validate_topic(topic: object) -> str:
    """Return ``topic`` if it is a valid topic name to publish on (no wildcards).

    Raises:
        ConfigError: not a str, empty, too long, NUL, or contains ``+``/``#``.
    """
    name = _check_text("topic", topic)
    if "+" in name or "#" in name:
        raise ConfigError(f"cannot publish on {name!r}: '+' and '#' are only allowed in subscriptions")
    return name


def validate_filter(topic_filter: object) -> str:
    """Return ``topic_filter`` if it is a valid subscription filter.

    Raises:
        ConfigError: not a str, empty, too long, NUL, or a misplaced wildcard.
    """
    text = _check_text("topic filter", topic_filter)
    levels = text.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ConfigError(f"invalid topic filter {text!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ConfigError(f"invalid topic filter {text!r}: '+' must be a whole level")
    return text


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` is matched by the (valid) ``topic_filter``."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    want = topic_filter.split("/")
    have = topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


def shared_filter(group: str, topic_filter: str) -> str:
    """The shared-subscription filter of ``group`` on ``topic_filter`` (both already valid)."""
    return f"{SHARE_PREFIX}/{group}/{topic_filter}"


def local_filter(topic_filter: str) -> str:
    """The filter messages are matched against: a shared one without its ``$share/<group>/``.

    The broker delivers a shared subscription's messages under their own topics,
    so matching them locally (MQTT 3.1.1, no subscription identifiers) uses the
    filter inside.
    """
    if topic_filter.startswith(SHARE_PREFIX + "/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3:
            return parts[2]
    return topic_filter
