"""Pure configuration of the MQTT transport: URL and keyword options -> frozen ``MqttConfig``.

URL form::

    mqtt://[USER[:PASSWORD]@]HOST[:PORT][/][?option=value&...]
    mqtts://USER:PASSWORD@HOST:8883?ca_file=/path/ca.pem&client_id=me&qos=1

* default port 1883 (``mqtt``) or 8883 (``mqtts``, TLS); user and password are
  percent-decoded; the path must be empty or ``/``.
* query values are percent-decoded, but a ``+`` stays a ``+`` (the MQTT one-level
  wildcard), so ``qos_overrides=+/+/config:2,lummetry/ctrl:1`` is written as is; a ``#``
  must be written ``%23`` (in a URL it starts the fragment).
* keyword options override the URL; every option is a field of :class:`MqttConfig`
  (``ca`` is accepted as a short name for ``ca_file``).

The password never appears in ``repr`` and :attr:`MqttConfig.safe_url` masks it; no error
quotes it, even when an unencoded ``/``, ``?`` or ``#`` in it moved it past the host.
Every invalid value raises :class:`pye2.errors.ConfigError`. Nothing here does I/O:
file paths (CA, client certificate) are only read when the transport connects.
"""

from __future__ import annotations

import difflib
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pye2.domain.options import none_or as _none_or
from pye2.domain.options import query_options as _query
from pye2.domain.options import to_bool as _to_bool
from pye2.domain.options import to_float as _to_float
from pye2.domain.options import to_int as _to_int
from pye2.domain.options import to_str as _to_str
from pye2.domain.urls import at_after_host, spilled_credentials_error
from pye2.errors import ConfigError

from ._topics import matches, validate_filter

__all__ = ["COMMAND_FILTER", "OVERFLOW_POLICIES", "PROTOCOLS", "MqttConfig", "parse_url"]

#: Topics that carry commands to a node (``<root>/<node>/config``).
COMMAND_FILTER = "+/+/config"
OVERFLOW_POLICIES = ("raise", "drop_oldest", "drop_newest")
PROTOCOLS = ("5", "3.1.1")
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# MQTT's remaining-length field tops out at 256 MiB; keep room for the topic and header.
_MQTT_MAX_BODY = 268_435_455 - 65_535 - 16
_ALIASES = {"ca": "ca_file", "cert": "cert_file", "key": "key_file", "insecure": "tls_insecure"}


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Settings of one :class:`~pye2_transport_mqtt.transport.MqttTransport`.

    Connection: ``scheme`` (``mqtt`` or ``mqtts`` = TLS), ``host``, ``port`` (0 = scheme
    default), ``username``, ``password`` (never in repr), ``ca_file`` (mqtts; None = system
    CAs), ``cert_file``/``key_file`` (client certificate), ``tls_insecure`` (no certificate
    or host name check: tests only), ``client_id`` (default ``pye2-<random>``; must be unique
    on the broker, which drops the older of two connections with one id), ``protocol``
    (``"5"``, the default, or ``"3.1.1"`` for old brokers), ``keepalive`` seconds,
    ``clean_session``, ``session_expiry`` (MQTT 5, seconds the broker keeps a non-clean
    session), ``connect_timeout`` (TCP + TLS + CONNACK, and each SUBACK wait).

    QoS: a topic gets the QoS of the first ``qos_overrides`` filter that matches it, else
    ``qos``. When ``qos_overrides`` is not given, command topics (``+/+/config``) get
    ``max(1, qos)``: a lost command is worse than a duplicate one.

    Reconnect: exponential backoff with full jitter, the n-th delay drawn uniformly from
    ``[0, min(reconnect_max_delay, reconnect_initial_delay * reconnect_multiplier**(n-1))]``;
    give up after ``reconnect_max_attempts`` failed attempts (None = never; 0 = never
    reconnect) or ``reconnect_give_up_after`` seconds since the connection was lost.

    Publishing: every publish passes one FIFO queue of at most ``offline_queue_max``
    messages (it fills while disconnected, or when paho already holds ``max_inflight``
    unconfirmed messages). When it is full while connected, ``publish()`` first waits up to
    ``publish_timeout`` seconds for room (0: never waits); then, or at once while
    disconnected, ``overflow`` decides: ``raise`` (QueueFull, the default), ``drop_oldest``
    or ``drop_newest`` (both logged and counted).
    ``max_message_bytes`` bounds a body; ``drain_timeout`` bounds how long ``close()``
    waits for queued and unconfirmed messages.
    """

    scheme: str = "mqtt"
    host: str = "localhost"
    port: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    client_id: str = ""
    protocol: str = "5"
    keepalive: int = 60
    clean_session: bool = True
    session_expiry: int = 0
    qos: int = 0
    qos_overrides: tuple[tuple[str, int], ...] | None = None
    connect_timeout: float = 10.0
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_multiplier: float = 2.0
    reconnect_max_attempts: int | None = None
    reconnect_give_up_after: float | None = None
    offline_queue_max: int = 1000
    overflow: str = "raise"
    publish_timeout: float = 5.0
    max_inflight: int = 20
    max_message_bytes: int = 16 * 1024 * 1024
    drain_timeout: float = 2.0

    def __post_init__(self) -> None:
        for name, convert in _CONVERTERS.items():
            value = getattr(self, name)
            converted = convert(name, value)
            if converted is not value:
                object.__setattr__(self, name, converted)
        self._check_connection()
        self._check_numbers()
        if not 0 <= self.qos <= 2:
            raise ConfigError(f"qos must be 0, 1 or 2, got {self.qos}")
        if self.qos_overrides is None:
            object.__setattr__(self, "qos_overrides", ((COMMAND_FILTER, max(1, self.qos)),))
        for topic_filter, level in self.qos_overrides or ():
            validate_filter(topic_filter)
            if not 0 <= level <= 2:
                raise ConfigError(f"QoS for {topic_filter!r} must be 0, 1 or 2, got {level}")

    def _check_connection(self) -> None:
        if self.scheme not in _DEFAULT_PORTS:
            raise ConfigError(f"scheme must be 'mqtt' or 'mqtts', got {self.scheme!r}")
        if self.port == 0:
            object.__setattr__(self, "port", _DEFAULT_PORTS[self.scheme])
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be 1..65535, got {self.port}")
        if not self.host or any(c in self.host for c in "/?#@ "):
            raise ConfigError(f"invalid MQTT host {self.host!r}")
        if not self.tls and (self.ca_file or self.cert_file or self.key_file or self.tls_insecure):
            raise ConfigError("ca_file, cert_file, key_file and tls_insecure need an mqtts:// URL (TLS)")
        if self.key_file and not self.cert_file:
            raise ConfigError("key_file needs cert_file")
        if self.password is not None and self.username is None:
            raise ConfigError("a password needs a username")
        if not self.client_id:
            object.__setattr__(self, "client_id", f"pye2-{secrets.token_hex(6)}")
        if len(self.client_id.encode("utf-8")) > 65535 or "\x00" in self.client_id:
            raise ConfigError("client_id must be at most 65535 UTF-8 bytes without NUL")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if not 0 <= self.keepalive <= 65535:
            raise ConfigError(f"keepalive must be 0..65535 seconds, got {self.keepalive}")
        if not 0 <= self.session_expiry <= 0xFFFFFFFF:
            raise ConfigError(f"session_expiry must be 0..4294967295 seconds, got {self.session_expiry}")

    def _check_numbers(self) -> None:
        for name in ("connect_timeout", "reconnect_initial_delay", "reconnect_max_delay", "drain_timeout",
                     "publish_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "connect_timeout" and value == 0):
                raise ConfigError(f"{name} must be a finite number of seconds >= 0 (> 0 for timeouts), got {value!r}")
        if self.reconnect_initial_delay > self.reconnect_max_delay:
            raise ConfigError("reconnect_initial_delay must not exceed reconnect_max_delay")
        if not (math.isfinite(self.reconnect_multiplier) and self.reconnect_multiplier >= 1):
            raise ConfigError(f"reconnect_multiplier must be >= 1, got {self.reconnect_multiplier!r}")
        if self.reconnect_max_attempts is not None and self.reconnect_max_attempts < 0:
            raise ConfigError("reconnect_max_attempts must be None (never give up) or >= 0")
        give_up = self.reconnect_give_up_after
        if give_up is not None and not (math.isfinite(give_up) and give_up > 0):
            raise ConfigError(f"reconnect_give_up_after must be None or > 0 seconds, got {give_up!r}")
        if self.offline_queue_max < 1:
            # Every publish passes the queue (even while connected), so it needs room for one.
            raise ConfigError(f"offline_queue_max must be >= 1, got {self.offline_queue_max}")
        if self.overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow must be one of {OVERFLOW_POLICIES}, got {self.overflow!r}")
        if not 1 <= self.max_inflight <= 65535:
            raise ConfigError(f"max_inflight must be 1..65535, got {self.max_inflight}")
        if not 1 <= self.max_message_bytes <= _MQTT_MAX_BODY:
            raise ConfigError(f"max_message_bytes must be 1..{_MQTT_MAX_BODY}, got {self.max_message_bytes}")

    @property
    def tls(self) -> bool:
        """True for ``mqtts``."""
        return self.scheme == "mqtts"

    @property
    def reconnects(self) -> bool:
        """True unless automatic reconnection is off (``reconnect_max_attempts=0``)."""
        return self.reconnect_max_attempts != 0

    @property
    def safe_url(self) -> str:
        """The broker URL with the password masked, for logs and errors."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = ""
        if self.username is not None:
            user = quote(self.username, safe="") + (":***" if self.password is not None else "") + "@"
        return f"{self.scheme}://{user}{host}:{self.port}"

    def qos_for(self, topic: str) -> int:
        """The QoS used to publish on ``topic`` (or to subscribe with ``topic`` as filter)."""
        for topic_filter, level in self.qos_overrides or ():
            if topic_filter == topic or matches(topic_filter, topic):
                return level
        return self.qos

    def backoff_ceiling(self, attempt: int) -> float:
        """Upper bound of the delay before reconnect ``attempt`` (1-based)."""
        try:
            grown = self.reconnect_initial_delay * self.reconnect_multiplier ** max(attempt - 1, 0)
        except OverflowError:
            return self.reconnect_max_delay
        return min(self.reconnect_max_delay, grown)

    def reconnect_delay(self, attempt: int, draw: float) -> float:
        """Full-jitter delay before ``attempt``; ``draw`` is uniform in ``[0, 1)``."""
        return min(max(draw, 0.0), 1.0) * self.backoff_ceiling(attempt)

    def gives_up(self, attempt: int, down_for: float) -> bool:
        """Whether reconnect ``attempt`` should not be made, ``down_for`` seconds after the loss."""
        if self.reconnect_max_attempts is not None and attempt > self.reconnect_max_attempts:
            return True
        return self.reconnect_give_up_after is not None and down_for >= self.reconnect_give_up_after

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MqttConfig:
        """Same as :func:`parse_url`."""
        return parse_url(url, **options)












def _to_protocol(name: str, value: object) -> str:
    text = str(value).strip().lower().removeprefix("mqttv").removeprefix("v") if isinstance(value, (str, int)) else ""
    text = {"311": "3.1.1", "5.0": "5"}.get(text, text)
    if text in PROTOCOLS:
        return text
    raise ConfigError(f"{name} must be one of {PROTOCOLS}, got {value!r}")


def _to_overrides(name: str, value: object) -> tuple[tuple[str, int], ...] | None:
    if value is None:
        return None
    pairs: list[tuple[object, object]] = []
    if isinstance(value, str):
        for item in (part.strip() for part in value.split(",")):
            if item:
                topic_filter, sep, level = item.rpartition(":")
                if not sep:
                    raise ConfigError(f"{name} entries are FILTER:QOS, got {item!r}")
                pairs.append((topic_filter, level))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise ConfigError(f"{name} must be 'FILTER:QOS,...', a mapping or (filter, qos) pairs, got {value!r}")
    return tuple((_to_str(name, f), _to_int(name, q)) for f, q in pairs)


_CONVERTERS: dict[str, Callable[[str, object], Any]] = {
    "scheme": _to_str, "host": _to_str, "port": _to_int,
    "username": _none_or(_to_str), "password": _none_or(_to_str),
    "ca_file": _none_or(_to_str), "cert_file": _none_or(_to_str), "key_file": _none_or(_to_str),
    "tls_insecure": _to_bool, "client_id": _to_str, "protocol": _to_protocol,
    "keepalive": _to_int, "clean_session": _to_bool, "session_expiry": _to_int,
    "qos": _to_int, "qos_overrides": _to_overrides, "connect_timeout": _to_float,
    "reconnect_initial_delay": _to_float, "reconnect_max_delay": _to_float,
    "reconnect_multiplier": _to_float, "reconnect_max_attempts": _none_or(_to_int),
    "reconnect_give_up_after": _none_or(_to_float), "offline_queue_max": _to_int,
    "overflow": _to_str, "publish_timeout": _to_float, "max_inflight": _to_int, "max_message_bytes": _to_int,
    "drain_timeout": _to_float,
}
_OPTION_NAMES = tuple(f.name for f in fields(MqttConfig) if f.name != "scheme")


def _coerce(options: Mapping[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_name, value in options.items():
        name = _ALIASES.get(raw_name, raw_name)
        if name not in _OPTION_NAMES:
            close = difflib.get_close_matches(raw_name, _OPTION_NAMES + tuple(_ALIASES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown MQTT option {raw_name!r}{hint}")
        if name in out:
            raise ConfigError(f"MQTT option {name!r} is given twice (directly and as {raw_name!r})")
        out[name] = _CONVERTERS[name](name, value)
    return out




def parse_url(url: str, **options: Any) -> MqttConfig:
    """Build an :class:`MqttConfig` from an ``mqtt://`` or ``mqtts://`` URL and options.

    Keyword options override the URL's query options, which override the defaults.

    Raises:
        ConfigError: not a str, wrong scheme, bad host, port, path or option value,
            unknown option.
    """
    if not isinstance(url, str):
        raise ConfigError(f"MQTT URL must be a str, got {type(url).__name__}")
    try:
        return _parse(url.strip(), options)
    except ConfigError:
        if not at_after_host(url):
            raise
        # The user name or password spilled past the host: the error may quote part of it.
        raise spilled_credentials_error("MQTT") from None


def _parse(url: str, options: Mapping[str, Any]) -> MqttConfig:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # urllib quotes what it cannot parse, which may be a password (mqtt://user:password, no host).
        text = str(exc)
        hidden = "'" in text or '"' in text
        reason = "malformed host or port (not shown, in case it is a password)" if hidden else text
        raise ConfigError(f"invalid MQTT URL: {reason}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"MQTT URL must start with mqtt:// or mqtts://, got scheme {parts.scheme!r}")
    if parts.path not in ("", "/"):
        raise ConfigError(f"MQTT URL must not have a path (got {parts.path!r}); topics are pye2 addresses")
    if parts.fragment:
        raise ConfigError("MQTT URL must not have a #fragment")
    if not parts.hostname:
        raise ConfigError("MQTT URL has no host (write mqtt://HOST:PORT)")
    values: dict[str, Any] = {"scheme": scheme, "host": parts.hostname, "port": port or 0}
    if parts.username is not None:
        values["username"] = unquote(parts.username)
        if parts.password is not None:
            values["password"] = unquote(parts.password)
    values.update(_coerce(_query(parts.query)))
    values.update(_coerce(options))
    return MqttConfig(**values)
