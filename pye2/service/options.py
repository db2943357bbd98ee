"""SessionOptions: the session's tuning options, typed, with their defaults, checked once.

``Session(...)`` takes each of these as a keyword parameter (so IDEs and type
checkers see them); it gathers them here. An unknown option is a
:class:`~pye2.errors.ConfigError` that suggests the closest valid name, and a
value of the wrong type is refused by name, before anything connects.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pye2.domain.network import DEFAULT_ONLINE_TIMEOUT
from pye2.domain.replay import DEFAULT_REPLAY_AGE, DEFAULT_REPLAY_ENTRIES
from pye2.errors import ConfigError
from pye2.service.inbox import DEFAULT_MAX_BYTES, POLICIES

__all__ = ["SessionOptions", "unknown_option_error"]

#: options of the original SDK that pye2 accepts and ignores (existing code keeps working)
COMPAT_IGNORED = ("log", "blockchain_config", "secured")


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """The options of a :class:`~pye2.Session` beyond its connection and callbacks.

    Attributes:
        online_timeout: seconds without a heartbeat before a node counts as offline.
        command_timeout: seconds a command waits for its confirmation by default.
        inbox_size: messages queued between the network and the dispatcher, at most.
        inbox_policy: ``"drop_oldest"`` or ``"drop_newest"`` when the inbox is full.
        inbox_bytes: bytes queued in the inbox, at most.
        slow_callback_threshold: a callback slower than this (s) is logged.
        blocked_callback_timeout: a callback running longer than this (s) is reported as blocked.
        decode_threads: threads that parse and verify received messages (wall clock only;
            ``$PYE2_DECODE_THREADS``, else 1).
        verify_workers: processes that check signatures (wall clock only;
            ``$PYE2_VERIFY_WORKERS``, else one per usable core beyond the first,
            at most 3; 0: in the dispatcher thread).
        encrypt_comms: encrypt commands (RATIO1 only; default: the profile's choice).
        root_topic: the topic root (default: the profile's).
        serializer: a registered serializer name (``"json"``).
        plugin_host: the plugin host that finds transports, serializers and formatters.
        env_file: the ``.env`` file read for settings (None: none).
        key_path: the session's key file (default ``$PYE2_HOME/_pk_sdk.pem``).
        on_connection: ``f(session, event)`` for connection events.
        connect_timeout: seconds the transport waits to connect.
        eth: how commands are signed: ``"auto"`` (per node), True or False (``$PYE2_ETH``).
        trusted_nodes: ``{name: address}`` pins, or trusted addresses (``$PYE2_TRUSTED_NODES``).
        on_node_conflict: ``f(session, name, known_address, other_address)``.
        max_clock_skew: how much older than a command (s) a notification's signed time may be (120).
        replay_memory: digests remembered against replays.
        replay_max_age: seconds a digest is remembered.
        max_nodes: node records kept at most (20000).
        max_status_bytes: bytes of retained heartbeats at most (64 MB).
        max_seq_gap: the largest ``EE_MESSAGE_SEQ`` jump counted as missed payloads (1000000).
        log, blockchain_config, secured: the original SDK's; accepted and ignored.
        share_group: split the payload stream with the other sessions of this group on the
            broker (``$PYE2_SHARE_GROUP``; see ``docs/scale-out.md``).
    """

    online_timeout: float = DEFAULT_ONLINE_TIMEOUT
    command_timeout: float = 30.0
    inbox_size: int = 100_000
    inbox_policy: str = "drop_oldest"
    inbox_bytes: int = DEFAULT_MAX_BYTES
    slow_callback_threshold: float = 1.0
    blocked_callback_timeout: float = 10.0
    decode_threads: int | None = None
    verify_workers: int | None = None
    encrypt_comms: bool | None = None
    root_topic: str | None = None
    serializer: str = "json"
    plugin_host: Any = None
    env_file: str | os.PathLike[str] | None = ".env"
    key_path: str | os.PathLike[str] | None = None
    on_connection: Callable[..., Any] | None = None
    connect_timeout: float | None = None
    eth: bool | str | None = None
    trusted_nodes: Mapping[str, str] | Iterable[str] | None = None
    on_node_conflict: Callable[..., Any] | None = None
    max_clock_skew: float | None = None
    replay_memory: int = DEFAULT_REPLAY_ENTRIES
    replay_max_age: float = DEFAULT_REPLAY_AGE
    max_nodes: int | None = None
    max_status_bytes: int | None = None
    max_seq_gap: int | None = None
    log: Any = None
    blockchain_config: Any = None
    secured: Any = None
    share_group: str | None = None

    def __post_init__(self) -> None:
        for name in ("online_timeout", "command_timeout", "slow_callback_threshold", "blocked_callback_timeout",
                     "replay_max_age"):
            _number(name, getattr(self, name), minimum=0.0)
        for name in ("connect_timeout", "max_clock_skew"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), minimum=0.0)
        for name in ("inbox_size", "inbox_bytes"):
            _integer(name, getattr(self, name), minimum=1)
        _integer("replay_memory", self.replay_memory, minimum=0)
        for name in ("decode_threads", "verify_workers", "max_nodes", "max_status_bytes", "max_seq_gap"):
            if getattr(self, name) is not None:
                _integer(name, getattr(self, name), minimum=0)
        if self.inbox_policy not in POLICIES:
            raise ConfigError(f"inbox_policy must be one of {', '.join(POLICIES)}, not {self.inbox_policy!r}")
        if self.encrypt_comms is not None and not isinstance(self.encrypt_comms, bool):
            raise ConfigError(f"encrypt_comms must be True, False or None, not {self.encrypt_comms!r}")
        for name in ("root_topic", "serializer"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, not {type(value).__name__}")
        for name in ("on_connection", "on_node_conflict"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"{name} must be callable, not {type(value).__name__}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def unknown_option_error(unknown: Collection[str], valid: Iterable[str]) -> ConfigError:
    """The error for options nobody knows, each with the closest valid name when one is close."""
    choices = sorted(set(valid))
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return ConfigError(f"unknown Session option(s): {', '.join(parts)}")


def _number(name: str, value: Any, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not value >= minimum:
        raise ConfigError(f"{name} must be >= {minimum:g}, not {value!r}")


def _integer(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, not {value!r}")
