"""Heartbeat views built only when read: :class:`PendingView`.

A node's heartbeat is heard by every node, but the full view (the inflated
status, ~45 containers) is read by few: ``peers()`` callers. What the network
monitor and ``NET_MON_01`` read (alias, status, allow-list, resources...) is
in :data:`SUMMARY_KEYS`. For a v2 heartbeat the simulator itself just
encoded, the sender knows the JSON text and the status it came from, so the
receive cache keeps a :class:`PendingView`: the summary, taken from the
status exactly as parsing the JSON would return it, and the message, whose
view is built on first use (inflated and parsed as on arrival). A pending
view is only made when that cannot fail: the text it inflates to is checked
when the view is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pye2.domain.codecs.heartbeat_view import DEFAULT_MAX_STATUS_BYTES, PROTECTED_FIELDS
from pye2_transport_memory.node._fastview import MAX_CONTAINERS, heartbeat_view

__all__ = ["SUMMARY_KEYS", "PendingView", "pending_view", "summary_of"]

#: heartbeat fields a peer summary holds (those ``NetworkMonitor.peers`` and ``NET_MON_01`` read)
SUMMARY_KEYS = ("EE_ID", "DEVICE_STATUS", "EE_NT_ALLOW_ANY", "SECURED", "EE_WHITELIST", "EE_IS_SUPER",
                "CPU_USED", "AVAILABLE_MEMORY", "AVAILABLE_DISK", "MACHINE_MEMORY", "TOTAL_DISK", "GPUS",
                "DEFAULT_CUDA", "CURRENT_TIME", "UPTIME", "VERSION")


#: exact types :func:`_as_parsed` returns as they are
_SCALARS = frozenset((str, int, float, bool, type(None)))


class _Unsure(Exception):
    """A value whose JSON round trip is not worked out here."""


def _as_parsed(value: Any) -> Any:
    """What ``json.loads(json.dumps(value))`` returns, for plain values (a copy of containers)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value  # NaN and infinities too: written NaN/Infinity, read back as such
    if kind is list:
        if set(map(type, value)) <= _SCALARS:  # e.g. an allow-list: one C-level pass, one copy
            return value.copy()
        return [_as_parsed(item) for item in value]
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unsure
            out[key] = _as_parsed(item)
        return out
    raise _Unsure


def summary_of(message: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :data:`SUMMARY_KEYS` fields of the view ``{**message, **json.loads(json.dumps(status))}``.

    None when a value's round trip is not certain here (the full view is then needed).
    """
    summary: dict[str, Any] = {}
    try:
        for key in SUMMARY_KEYS:
            if key in PROTECTED_FIELDS:  # the status never overrides these (nor adds them)
                if key in message:
                    summary[key] = message[key]
            elif key in status:
                summary[key] = _as_parsed(status[key])
            elif key in message:
                summary[key] = message[key]
    except (_Unsure, RecursionError):
        return None
    return summary


class PendingView:
    """The view of a vouched v2 heartbeat: its summary now, the full view when first asked for."""

    __slots__ = ("_message", "_view", "summary")

    def __init__(self, message: dict[str, Any], summary: dict[str, Any]) -> None:
        self._message: dict[str, Any] | None = message
        self._view: dict[str, Any] | None = None
        #: the :data:`SUMMARY_KEYS` fields of the view (read-only)
        self.summary = summary

    def view(self) -> dict[str, Any]:
        """The full merged view, as ``decode_heartbeat`` of the message gives it (built once)."""
        view = self._view
        if view is None:
            assert self._message is not None
            view = self._view = heartbeat_view(self._message)
            self._message = None
        return view

    def __repr__(self) -> str:
        return f"<PendingView {'built' if self._view is not None else 'pending'} {self.summary.get('EE_ID')!r}>"


def pending_view(message: dict[str, Any], text: str, status: Mapping[str, Any]) -> PendingView | None:
    """A :class:`PendingView` of the v2 heartbeat ``message`` whose status JSON is ``text``.

    None when the view should be built now: parsing might fail (text beyond
    the inflation cap, nesting the stdlib parser might refuse) or the summary
    is not certain.
    """
    if len(text) > DEFAULT_MAX_STATUS_BYTES or not text.isascii() \
            or text.count("{") + text.count("[") >= MAX_CONTAINERS:
        return None
    summary = summary_of(message, status)
    return None if summary is None else PendingView(message, summary)
