"""Heartbeat bodies: v2 (compressed ``ENCODED_DATA``) and v1 (in clear).

A node builds a status dict (protocol.md section 3, node.md section 3) and
publishes it either in clear (``HEARTBEAT_VERSION: "v1"``) or, by default,
as ``ENCODED_DATA`` = base64(zlib level 9(``json.dumps(status)``)) with only
the counters ``NR_INFERENCES``, ``NR_PAYLOADS``, ``NR_STREAMS_DATA`` and
``HEARTBEAT_VERSION: "v2"`` left outside. The envelope (``EE_ID``,
``EE_EVENT_TYPE``...) and the signature are added afterwards by the sender.

Receivers see the merged view ``{**outer, **inner}`` (inner wins;
``ENCODED_DATA`` stays in the view), which is what the original SDKs hand to
heartbeat callbacks, except that the status never overrides the signed
envelope's fields (:data:`~pye2.domain.codecs.heartbeat_view.PROTECTED_FIELDS`:
``EE_SENDER``, ``EE_ID``, ``EE_SIGN``, ``EE_HASH``, ``EE_TIMESTAMP``...) nor
adds one the envelope lacks. Inflation is capped (DECISIONS 6; by default at
:data:`~pye2.domain.codecs.heartbeat_view.DEFAULT_MAX_STATUS_BYTES`, 4 MiB)
and every malformed input raises :class:`~pye2.errors.DecodeError`
(DECISIONS 8). A session asks for the view with ``lazy=True``: the status is
then decoded on the view's first read, which never raises (see
:mod:`pye2.domain.codecs.heartbeat_view`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pye2.domain.codecs.code import compress_text
from pye2.domain.codecs.heartbeat_view import (
    DEFAULT_MAX_STATUS_BYTES,
    HeartbeatView,
    check_max_inflated,
    decode_status,
    restore_envelope,
)
from pye2.errors import ConfigError, DecodeError

__all__ = [
    "CLEAR_COUNTERS",
    "DEFAULT_MAX",
    "HEARTBEAT_V1",
    "HEARTBEAT_V2",
    "HeartbeatSummary",
    "HeartbeatView",
    "decode_heartbeat",
    "encode_heartbeat",
    "summarize_heartbeat",
]

HEARTBEAT_V1 = "v1"
HEARTBEAT_V2 = "v2"

#: Default cap on the inflated size of ``ENCODED_DATA`` (bytes): the status cap a session uses.
DEFAULT_MAX = DEFAULT_MAX_STATUS_BYTES

#: Status fields a v2 node also keeps in clear, in the order nodes write them.
CLEAR_COUNTERS = ("NR_INFERENCES", "NR_PAYLOADS", "NR_STREAMS_DATA")

_VERSION = "HEARTBEAT_VERSION"
_ENCODED = "ENCODED_DATA"


def encode_heartbeat(status: Mapping[str, Any], *, version: str = HEARTBEAT_V2) -> dict[str, Any]:
    """Build the heartbeat body a node publishes (before envelope and signature).

    Args:
        status: the node status dict (``CONFIG_STREAMS``, ``ACTIVE_PLUGINS``...).
        version: ``"v2"`` (compressed, the node default) or ``"v1"`` (in clear).

    Returns:
        v2: ``{"ENCODED_DATA", <counters present in status>, "HEARTBEAT_VERSION": "v2"}``
        where ``ENCODED_DATA`` compresses Python's default ``json.dumps(status)``,
        byte-identical to a node; v1: the status plus ``"HEARTBEAT_VERSION": "v1"``.

    Raises:
        ConfigError: unknown version, or a status that is not a JSON-able mapping.
    """
    if not isinstance(status, Mapping):
        raise ConfigError(f"heartbeat status must be a mapping, not {type(status).__name__}")
    if version == HEARTBEAT_V1:
        return {**status, _VERSION: HEARTBEAT_V1}
    if version != HEARTBEAT_V2:
        raise ConfigError(f"unknown heartbeat version {version!r}; use 'v1' or 'v2'")
    try:
        # Default separators and ASCII escapes, as the node's json.dumps.
        text = json.dumps(dict(status))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"heartbeat status is not JSON-serialisable: {exc}") from exc
    body: dict[str, Any] = {_ENCODED: compress_text(text)}
    for key in CLEAR_COUNTERS:
        if key in status:
            body[key] = status[key]
    body[_VERSION] = HEARTBEAT_V2
    return body


def decode_heartbeat(
    message: Mapping[str, Any], *, max_inflated: int = DEFAULT_MAX, lazy: bool = False
) -> dict[str, Any]:
    """The merged view of a received heartbeat: ``{**outer, **inner}``.

    ``HEARTBEAT_VERSION`` ``"v2"`` inflates ``ENCODED_DATA`` (at most
    ``max_inflated`` bytes) and overlays the decoded status, except over the
    envelope's :data:`~pye2.domain.codecs.heartbeat_view.PROTECTED_FIELDS`
    (kept as received, or left absent); ``"v1"`` or no version returns a copy
    of the message as it is (all of it signed by the sender).

    ``lazy=True`` returns a v2 heartbeat as a
    :class:`~pye2.domain.codecs.heartbeat_view.HeartbeatView` instead: the
    same dict, but ``ENCODED_DATA`` is only decoded on its first read, which
    never raises: a status this function would refuse leaves the view the
    envelope alone (without ``ENCODED_DATA``) with the error in its ``error``
    (only the checks that need no decoding raise here).

    Raises:
        DecompressionBomb: ``ENCODED_DATA`` inflates beyond ``max_inflated``,
            or is longer than the compressed form of that many bytes can be.
        DecodeError: not a mapping, unknown version, ``ENCODED_DATA`` missing,
            not base64/zlib/UTF-8/JSON, or not a JSON object.
        ConfigError: ``max_inflated`` is not a positive int.
    """
    if not isinstance(message, Mapping):
        raise DecodeError(f"heartbeat must be a JSON object, not {type(message).__name__}")
    version = message.get(_VERSION)
    if version is None or version == HEARTBEAT_V1:
        return dict(message)
    if version != HEARTBEAT_V2:
        raise DecodeError(f"unsupported HEARTBEAT_VERSION {version!r}")
    encoded = message.get(_ENCODED)
    if not isinstance(encoded, str):
        raise DecodeError(f"v2 heartbeat needs ENCODED_DATA as a string, got {type(encoded).__name__}")
    if lazy:
        return HeartbeatView(message, encoded, check_max_inflated(max_inflated))
    merged = {**message, **decode_status(encoded, max_inflated=max_inflated)}
    restore_envelope(merged, message)  # the status never overrides who signed what
    return merged


@dataclass(frozen=True)
class HeartbeatSummary:
    """What a client tracks from one heartbeat.

    Attributes:
        node_address: ``EE_SENDER`` (the signing address), or None if unsigned.
        node_alias: ``EE_ID``, or None.
        pipelines: pipeline names, in report order, without duplicates.
        reports_pipelines: the heartbeat carried ``CONFIG_STREAMS`` (or its
            alias ``PIPELINES``); 42ee127 ignores heartbeats without it, later
            SDKs treat a missing list as empty.
        configs: the reported pipeline configs by name (last one wins).
    """

    node_address: str | None
    node_alias: str | None
    pipelines: tuple[str, ...] = ()
    reports_pipelines: bool = False
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The vectors' ``sdk_tracked`` shape: address, alias, pipeline names."""
        return {"node_address": self.node_address, "node_alias": self.node_alias, "pipelines": list(self.pipelines)}


def _optional_str(view: Mapping[str, Any], key: str) -> str | None:
    value = view.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DecodeError(f"heartbeat {key} must be a string, got {type(value).__name__}")


def summarize_heartbeat(view: Mapping[str, Any]) -> HeartbeatSummary:
    """Extract address, alias and pipelines from a decoded heartbeat view.

    Args:
        view: the merged view from :func:`decode_heartbeat` (a v1 message works
            as is; a v2 message must be decoded first to see its pipelines).

    Raises:
        DecodeError: no ``EE_SENDER`` and no ``EE_ID``, fields of the wrong
            type, or a pipeline list that is not a list of configs with a
            string ``NAME``.
    """
    if not isinstance(view, Mapping):
        raise DecodeError(f"heartbeat must be a JSON object, not {type(view).__name__}")
    address = _optional_str(view, "EE_SENDER")
    alias = _optional_str(view, "EE_ID")
    if address is None and alias is None:
        raise DecodeError("heartbeat carries neither EE_SENDER nor EE_ID")
    key = "CONFIG_STREAMS" if view.get("CONFIG_STREAMS") is not None else "PIPELINES"
    streams = view.get(key)
    if streams is None:
        return HeartbeatSummary(address, alias)
    if not isinstance(streams, list):
        raise DecodeError(f"heartbeat {key} must be a list, got {type(streams).__name__}")
    configs: dict[str, Mapping[str, Any]] = {}
    for config in streams:
        name = config.get("NAME") if isinstance(config, Mapping) else None
        if not isinstance(name, str):
            raise DecodeError(f"heartbeat {key} holds an entry without a string NAME")
        configs[name] = config
    return HeartbeatSummary(address, alias, tuple(configs), True, configs)
