"""Pure configuration of the AMQP transport: URL and keyword options -> frozen ``AmqpConfig``.

URL form::

    amqp://USER:PASSWORD@HOST:PORT/VHOST?option=value&...
    amqps://USER:PASSWORD@HOST:PORT/VHOST?ca_file=/path/ca.pem

* default port 5672 (``amqp``) or 5671 (``amqps``); default credentials ``guest``/``guest``
  (as pika's); no path or ``/`` -> vhost ``/``; otherwise the path is one percent-encoded
  segment (``/%2F`` is ``/``, ``/prod`` is ``prod``).
* query values are percent-decoded but a ``+`` stays a ``+`` (write filters such as
  ``confirm_filters=+/+/config`` as they are; ``#`` must be written ``%23``, a bare ``#``
  starts a URL fragment, which is refused); lists are comma-separated.
* keyword options override the URL; every option is a field of :class:`AmqpConfig`.

The password is never shown: it is left out of ``repr`` and :attr:`AmqpConfig.safe_url`
masks it; no error quotes it, even when an unencoded ``/``, ``?`` or ``#`` in it moved it
past the host. Every invalid value raises :class:`pye2.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pye2.domain.options import none_or
from pye2.domain.options import query_options as _query
from pye2.domain.options import to_bool as _to_bool
from pye2.domain.options import to_float as _to_float
from pye2.domain.options import to_int as _to_int
from pye2.domain.options import to_str as _to_str
from pye2.domain.urls import at_after_host, spilled_credentials_error
from pye2.errors import ConfigError

from .topology import queue_name, validate_filter

__all__ = ["OVERFLOW_POLICIES", "AmqpConfig", "parse_url"]

OVERFLOW_POLICIES = ("raise", "drop_oldest")
_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}
_RABBITMQ_HARD_MAX = 512 * 1024 * 1024  # rabbit refuses max_message_size above 512 MiB


@dataclass(frozen=True, slots=True)
class AmqpConfig:
    """Settings of one :class:`~pye2_transport_amqp.transport.AmqpTransport`.

    Connection: ``scheme`` (``amqp``/``amqps``), ``host``, ``port`` (0 = scheme default),
    ``vhost``, ``username``, ``password`` (never in repr), ``ca_file`` (amqps only; None =
    system CAs), ``heartbeat`` seconds (0 disables), ``connect_timeout`` seconds (also bounds
    each subscribe's broker round trips), ``blocked_timeout`` (a connection the broker keeps
    blocked by a resource alarm for longer is dropped and reconnected).

    Reconnect: exponential backoff with full jitter, the n-th delay drawn uniformly from
    ``[0, min(reconnect_max_delay, reconnect_initial_delay * 2**(n-1))]``; give up after
    ``reconnect_max_attempts`` failed attempts (None = never, 0 = never reconnect).

    Publishing: ``confirms`` turns publisher confirms on (channel in confirm mode); a
    publish to an address matching one of ``confirm_filters`` (default ``+/+/config``, the
    command topics) blocks until the broker confirms it, at most ``publish_timeout``
    seconds. While disconnected, publishes wait in a queue of at most
    ``offline_queue_max`` messages; when it is full ``overflow`` decides: ``raise``
    (:class:`~pye2.errors.QueueFull`, the default) or ``drop_oldest`` (logged and counted).
    Bodies above ``max_message_bytes`` raise :class:`~pye2.errors.MessageTooLarge`.

    Topology: ``exchange_durable`` (must match how others declared the root exchange),
    ``queue_prefix`` (first part of the session's queue names).
    """

    scheme: str = "amqp"
    host: str = "localhost"
    port: int = 0
    vhost: str = "/"
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    ca_file: str | None = None
    heartbeat: int = 30
    connect_timeout: float = 10.0
    blocked_timeout: float = 60.0
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_max_attempts: int | None = None
    confirms: bool = True
    confirm_filters: tuple[str, ...] = ("+/+/config",)
    publish_timeout: float = 5.0
    offline_queue_max: int = 1000
    overflow: str = "raise"
    max_message_bytes: int = 16 * 1024 * 1024
    exchange_durable: bool = True
    queue_prefix: str = "pye2"

    def __post_init__(self) -> None:
        _check_types(self)
        if self.scheme not in _DEFAULT_PORTS:
            raise ConfigError(f"scheme must be 'amqp' or 'amqps', got {self.scheme!r}")
        if self.port == 0:
            object.__setattr__(self, "port", _DEFAULT_PORTS[self.scheme])
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be 1..65535, got {self.port}")
        if not self.host:
            raise ConfigError("host must not be empty")
        if self.ca_file is not None and self.scheme != "amqps":
            raise ConfigError("ca_file needs an amqps:// URL (TLS)")
        if not 0 <= self.heartbeat <= 65535:
            raise ConfigError(f"heartbeat must be 0..65535 seconds, got {self.heartbeat}")
        for name in ("connect_timeout", "blocked_timeout", "reconnect_initial_delay",
                     "reconnect_max_delay", "publish_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.reconnect_initial_delay > self.reconnect_max_delay:
            raise ConfigError("reconnect_initial_delay must not exceed reconnect_max_delay")
        if self.reconnect_max_attempts is not None and self.reconnect_max_attempts < 0:
            raise ConfigError("reconnect_max_attempts must be None (never give up) or >= 0")
        for topic_filter in self.confirm_filters:
            validate_filter(topic_filter)
        if self.offline_queue_max < 0:
            raise ConfigError("offline_queue_max must be >= 0")
        if self.overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow must be one of {OVERFLOW_POLICIES}, got {self.overflow!r}")
        if not 1 <= self.max_message_bytes <= _RABBITMQ_HARD_MAX:
            raise ConfigError(f"max_message_bytes must be 1..{_RABBITMQ_HARD_MAX}, got {self.max_message_bytes}")
        queue_name(self.queue_prefix, "x", 0, 0)  # validates the prefix

    @property
    def tls(self) -> bool:
        """True for ``amqps``."""
        return self.scheme == "amqps"

    @property
    def reconnects(self) -> bool:
        """True unless automatic reconnection is off (``reconnect_max_attempts=0``)."""
        return self.reconnect_max_attempts != 0

    @property
    def safe_url(self) -> str:
        """The broker URL with the password masked, for logs and errors."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        vhost = "" if self.vhost == "/" else quote(self.vhost, safe="")
        return f"{self.scheme}://{quote(self.username, safe='')}:***@{host}:{self.port}/{vhost}"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AmqpConfig:
        """Same as :func:`parse_url`."""
        return parse_url(url, **options)












def _to_optional_str(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    return _to_str(name, value)


def _to_str_tuple(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{name} must be a comma-separated string or a sequence of strings, got {value!r}")


_CONVERTERS: dict[str, Callable[[str, object], Any]] = {
    "scheme": _to_str, "host": _to_str, "port": _to_int, "vhost": _to_str,
    "username": _to_str, "password": _to_str, "ca_file": _to_optional_str,
    "heartbeat": _to_int, "connect_timeout": _to_float, "blocked_timeout": _to_float,
    "reconnect_initial_delay": _to_float, "reconnect_max_delay": _to_float,
    "reconnect_max_attempts": none_or(_to_int), "confirms": _to_bool,
    "confirm_filters": _to_str_tuple, "publish_timeout": _to_float,
    "offline_queue_max": _to_int, "overflow": _to_str, "max_message_bytes": _to_int,
    "exchange_durable": _to_bool, "queue_prefix": _to_str,
}
_OPTION_NAMES = tuple(f.name for f in fields(AmqpConfig) if f.name != "scheme")


def _check_types(config: AmqpConfig) -> None:
    # Direct construction gets the same conversions and errors as URL options.
    for name, convert in _CONVERTERS.items():
        value = getattr(config, name)
        converted = convert(name, value)
        if converted is not value:
            object.__setattr__(config, name, converted)


def _coerce(options: Mapping[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in _OPTION_NAMES:
            close = difflib.get_close_matches(name, _OPTION_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown AMQP option {name!r}{hint}")
        out[name] = _CONVERTERS[name](name, value)
    return out




def parse_url(url: str, **options: Any) -> AmqpConfig:
    """Build an :class:`AmqpConfig` from an ``amqp://`` or ``amqps://`` URL and options.

    Keyword options override the URL's query options, which override the defaults.

    Raises:
        ConfigError: not a str, wrong scheme, bad port, vhost or option, unknown option.
    """
    if not isinstance(url, str):
        raise ConfigError(f"AMQP URL must be a str, got {type(url).__name__}")
    try:
        return _parse(url.strip(), options)
    except ConfigError:
        if not at_after_host(url):
            raise
        # The user name or password spilled past the host: the error may quote part of it.
        raise spilled_credentials_error("AMQP") from None


def _parse(url: str, options: Mapping[str, Any]) -> AmqpConfig:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # urllib quotes what it cannot parse, which may be a password (amqp://user:password, no host).
        text = str(exc)
        hidden = "'" in text or '"' in text
        reason = "malformed host or port (not shown, in case it is a password)" if hidden else text
        raise ConfigError(f"invalid AMQP URL: {reason}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"AMQP URL must start with amqp:// or amqps://, got scheme {parts.scheme!r}")
    if parts.fragment:
        raise ConfigError("AMQP URL must not have a #fragment")
    if parts.username is None and at_after_host(url):
        # amqp:/user:pass@host would make "user:pass@host" the vhost (shown in repr and errors).
        raise ConfigError("AMQP URL has an '@' after the host and no user name before it")
    path = parts.path
    if path in ("", "/"):
        vhost = "/"
    elif "/" in path[1:]:
        raise ConfigError("AMQP URL path is the vhost: one segment; write '/' inside it as %2F")
    else:
        vhost = unquote(path[1:])
    if port == 0:
        raise ConfigError("AMQP URL port must be 1..65535, got 0")
    values: dict[str, Any] = {"scheme": scheme, "vhost": vhost, "port": port or 0}
    if parts.hostname:
        values["host"] = parts.hostname
    if parts.username is not None:
        values["username"] = unquote(parts.username)
        values["password"] = unquote(parts.password or "")
    values.update(_coerce(_query(parts.query)))
    values.update(_coerce(options))
    return AmqpConfig(**values)
