"""Share groups: several sessions splitting one payload stream on the broker (pure).

A *share group* names the sessions that divide a channel's messages among
themselves: each message published on it reaches one member of the group
instead of every subscriber (MQTT 5 shared subscriptions ``$share/<group>/<topic>``,
AMQP competing consumers of one queue). The name becomes part of a topic filter
and of a queue name, so it is kept to what every broker accepts unchanged.
"""

from __future__ import annotations

import re

from pye2.domain.logtext import clip
from pye2.errors import ConfigError

__all__ = ["MAX_SHARE_GROUP", "validate_share_group"]

#: longest accepted group name (it ends up inside AMQP queue names, at most 255 bytes)
MAX_SHARE_GROUP = 64

_GROUP_RE = re.compile(r"[A-Za-z0-9_-]+")


def validate_share_group(group: object) -> str:
    """Return ``group`` if it is a usable share group name.

    Raises:
        ConfigError: not a str, empty, longer than 64 characters, or not made
            of letters, digits, ``-`` and ``_`` (``/``, ``+``, ``#`` and ``.``
            mean something to MQTT or AMQP).
    """
    if not isinstance(group, str):
        raise ConfigError(f"share_group must be a str, got {type(group).__name__}")
    if not group or len(group) > MAX_SHARE_GROUP or not _GROUP_RE.fullmatch(group):
        raise ConfigError(f"share_group '{clip(group, 80)}' must be 1-{MAX_SHARE_GROUP} letters, digits, '-' or '_'")
    return group
