"""Payload fields a real node adds around a plugin's output (node.md section 6).

Pure functions: the runtime passes what it knows (pipeline config, instance
counters, the iteration's inputs, formatted times) and gets the body to
publish; the node then adds the envelope and signs.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_PLUGIN_VERSION", "compact_time_text", "decorate_payload", "status_payload", "time_text"]

DEFAULT_PLUGIN_VERSION = "1.0.0"
_UTC = _dt.timezone.utc
_ALERT_HELPER = "A=0, N=0, CT=NA, E=A[]=0.00 vs >=0.50 "
# Pipeline keys the node copies onto every payload of that pipeline.
_ORIGIN_KEYS = ("SESSION_ID", "INITIATOR_ID", "INITIATOR_ADDR", "MODIFIED_BY_ID", "MODIFIED_BY_ADDR")


# Cached: on a simulated network every node formats the same few instants (a heartbeat alone
# formats about ten), and strftime is the costly part.
@functools.lru_cache(maxsize=4096)
def time_text(t: float) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC (the node's ``EE_TIMESTAMP`` format)."""
    return _dt.datetime.fromtimestamp(t, _UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@functools.lru_cache(maxsize=1024)
def compact_time_text(t: float) -> str:
    """``YYYYMMDDhhmmssffffff`` (the heartbeat ``TIMESTAMP`` format)."""
    return _dt.datetime.fromtimestamp(t, _UTC).strftime("%Y%m%d%H%M%S%f")


def _base(
    *,
    pipeline: str,
    pipeline_config: Mapping[str, Any],
    signature: str,
    instance_id: str,
    iteration: int,
    now_text: str,
    alive_minutes: float,
    process_delay: float,
    loop_resolution: float,
    version: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {key: pipeline_config.get(key) for key in _ORIGIN_KEYS}
    body.update({
        "TAGS": "",
        "ID_TAGS": [],
        "ID": iteration,
        "TIMESTAMP_EXECUTION": now_text,
        "STATUS": "N/A",
        "PLUGIN_CATEGORY": "general",
        "COLLECTED": False,
        "IS_ALERT": False,
        "IS_NEW_RAISE": False,
        "IS_NEW_LOWER": False,
        "IS_ALERT_NEW_RAISE": False,
        "IS_ALERT_NEW_LOWER": False,
        "IS_ALERT_STATUS_CHANGED": False,
        "LAST_ALERT_DURATION": None,
        "USE_LOCAL_COMMS_ONLY": False,
        "IMG_IN_PAYLOAD": False,
        "_P_ALIVE_TIME_MINS": alive_minutes,
        "_P_PLUGIN_REAL_RESOLUTION": None,
        "_P_PLUGIN_LOOP_RESOLUTION": loop_resolution,
        "_P_ALERT_HELPER": _ALERT_HELPER,
        "_P_DEMO_MODE": False,
        "_P_PROCESS_DELAY": process_delay,
        "_P_GRAPH_TYPE": [],
        "_P_VERSION": version,
        "_P_DEBUG_SAVE_PAYLOAD": False,
        "_P_DATASET_BUILDER_USED": False,
        "debug_payload_saved": False,
    })
    return body


def _identify(body: dict[str, Any], pipeline: str, signature: str, instance_id: str) -> dict[str, Any]:
    body["STREAM_NAME"] = pipeline
    body["STREAM"] = pipeline
    body["PIPELINE"] = pipeline
    body["SIGNATURE"] = signature
    body["INSTANCE_ID"] = instance_id
    return body


def status_payload(**kw: Any) -> dict[str, Any]:
    """The first payload of a new instance: the working-hours status one (``ID`` 0).

    Takes the keyword arguments of :func:`decorate_payload` except ``output``
    and ``metadata``.
    """
    body = _base(**kw)
    body.update({
        "STATUS": "Working hours shift STARTED",
        "WORKING_HOURS": [],
        "WORKING_HOURS_TIMEZONE": "Etc/UTC",
        "IGNORE_WORKING_HOURS": False,
        "FORCED_PAUSE": False,
        "IMG": None,
    })
    return _identify(body, kw["pipeline"], kw["signature"], kw["instance_id"])


def decorate_payload(output: Mapping[str, Any], metadata: Iterable[Mapping[str, Any]] = (), **kw: Any) -> dict[str, Any]:
    """A plugin's output dict with the node's fields around it.

    Plugin keys are upper-cased and win over the node's defaults (``STATUS``...),
    except the identity fields (stream, signature, instance) which the node
    always sets. ``metadata``: the inputs' capture metadata, exposed as ``_C_<key>``.
    """
    body = _base(**kw)
    for meta in metadata:
        for key, value in meta.items():
            body[f"_C_{str(key).upper()}"] = value
    for key, value in output.items():
        body[str(key).upper()] = value
    return _identify(body, kw["pipeline"], kw["signature"], kw["instance_id"])
