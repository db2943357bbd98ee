"""Connection settings: arguments, then environment, then a ``.env`` file.

Keys: ``PYE2_HOST``, ``PYE2_PORT``, ``PYE2_USER``, ``PYE2_PASS``,
``PYE2_TRANSPORT`` (a registered name or URL), ``PYE2_PROFILE``
(``AIXP``/``RATIO1``). An explicit argument always wins; an environment
variable beats the same key in ``.env``. The ``.env`` file is read from the
current directory (or the ``env_file`` path given), ``KEY=VALUE`` lines,
``#`` comments, optional quotes; a missing file is fine.

A password never shows: ``repr`` masks ``pwd`` and the password of a
``transport`` URL as ``***``, and errors do not echo a malformed transport.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pye2.domain.urls import mask_url
from pye2.errors import ConfigError

__all__ = ["Settings", "env_count", "eth_setting", "read_env_file", "resolve_settings", "trusted_nodes_from_env"]

KEYS = ("PYE2_HOST", "PYE2_PORT", "PYE2_USER", "PYE2_PASS", "PYE2_TRANSPORT", "PYE2_PROFILE")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``.env`` file; a missing file gives ``{}``."""
    p = Path(path)
    if not p.is_file():
        return {}
    out: dict[str, str] = {}
    for raw in p.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        line = line.removeprefix("export ")
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings (password kept out of ``repr``)."""

    transport: str | None
    host: str | None
    port: int | None
    user: str | None
    pwd: str | None
    profile: str | None

    def __repr__(self) -> str:
        return (f"Settings(transport={(mask_url(self.transport) if self.transport is not None else None)!r}, host={self.host!r}, port={self.port!r}, "
                f"user={self.user!r}, pwd={'***' if self.pwd else None}, profile={self.profile!r})")

    def transport_url(self) -> str | None:
        """The URL to build the transport from (``host`` alone means MQTT, as in the original)."""
        if self.transport and "://" in self.transport:
            return self.transport
        scheme = self.transport or ("mqtt" if self.host else None)
        if scheme is None:
            return None
        if not _SCHEME.fullmatch(scheme):
            # Not a name and not scheme://...: perhaps a mistyped URL with a password, so not echoed.
            raise ConfigError("transport must be a registered name (mqtt, amqp, memory, ...) or a URL "
                              "scheme://...; the value given is neither (not shown: it may hold a password)")
        if scheme in ("memory", "sim") and not self.host:
            return f"{scheme}://"
        if not self.host:
            raise ConfigError(f"transport {scheme!r} needs a host (argument host= or PYE2_HOST)")
        auth = ""
        if self.user:
            auth = quote(self.user, safe="") + (":" + quote(self.pwd, safe="") if self.pwd else "") + "@"
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{auth}{self.host}{port}"


def resolve_settings(
    *,
    host: str | None,
    port: int | str | None,
    user: str | None,
    pwd: str | None,
    transport: str | None,
    profile: str | None,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
) -> Settings:
    """Merge arguments over the environment over ``.env``."""
    env = dict(read_env_file(env_file)) if env_file else {}
    env.update({k: v for k, v in (os.environ if environ is None else environ).items() if k in KEYS})

    def pick(arg: object, key: str) -> str | None:
        if arg is not None:
            return str(arg)
        value = env.get(key)
        return value if value else None

    port_text = pick(port, "PYE2_PORT")
    try:
        port_num = int(port_text) if port_text is not None else None
    except ValueError:
        raise ConfigError(f"port must be a number, not {port_text!r}") from None
    return Settings(
        transport=pick(transport, "PYE2_TRANSPORT"),
        host=pick(host, "PYE2_HOST"),
        port=port_num,
        user=pick(user, "PYE2_USER"),
        pwd=pick(pwd, "PYE2_PASS"),
        profile=pick(profile, "PYE2_PROFILE"),
    )


def env_count(name: str, default: int, *, minimum: int) -> int:
    """``$name`` as an integer of at least ``minimum`` (0 or 1), or ``default`` when unset or empty.

    Raises:
        ConfigError: the variable is not such an integer.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        kind = "positive" if minimum >= 1 else "non-negative"
        raise ConfigError(f"{name} must be a {kind} integer, not {raw!r}")
    return int(raw)


def trusted_nodes_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str] | list[str] | None:
    """``PYE2_TRUSTED_NODES``: comma-separated addresses, or ``name=address`` pairs (not both); None if unset.

    Raises:
        ConfigError: a mix of both forms, or an empty name or address.
    """
    raw = (os.environ if environ is None else environ).get("PYE2_TRUSTED_NODES", "").strip()
    if not raw:
        return None
    items = [item.strip() for item in raw.split(",") if item.strip()]
    pairs = [item.partition("=") for item in items]
    if all(sep for _, sep, _ in pairs):
        if any(not name.strip() or not address.strip() for name, _, address in pairs):
            raise ConfigError("PYE2_TRUSTED_NODES: every name=address pair needs both")
        return {name.strip(): address.strip() for name, _, address in pairs}
    if any(sep for _, sep, _ in pairs):
        raise ConfigError("PYE2_TRUSTED_NODES: give either addresses or name=address pairs, not both")
    return items


def eth_setting(value: object = None, environ: Mapping[str, str] | None = None) -> bool | None:
    """The ``eth`` option: None for ``"auto"`` (learn each node's signing mode), else True/False.

    ``value`` None falls back to ``PYE2_ETH`` (unset: auto).

    Raises:
        ConfigError: anything else than auto / true / false (and their usual spellings).
    """
    if value is None:
        value = (os.environ if environ is None else environ).get("PYE2_ETH", "auto")
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("auto", ""):
        return None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"eth must be 'auto', True or False (PYE2_ETH likewise), not {value!r}")
