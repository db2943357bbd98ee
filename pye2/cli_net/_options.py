"""Connection options shared by every network command, and the session they build.

Options (each falls back to the environment, then to ``.env``, as
:class:`~pye2.Session` resolves its settings; an option always wins)::

    --broker URL        transport URL or name (PYE2_TRANSPORT; PYE2_HOST/PORT/USER/PASS as Session reads them)
    --profile NAME      aixp or ratio1 (PYE2_PROFILE)
    --root TOPIC        topic root (PYE2_ROOT; default: the profile's)
    --identity PATH     key file (PYE2_IDENTITY; default: the Session's, PYE2_HOME/_pk_sdk.pem)
    --env-file PATH     the .env file (default ./.env)
    --json              JSON lines instead of text
    --timeout SECONDS   how long to wait for a node or an answer

A password (in ``--broker`` or ``PYE2_PASS``) never shows in output or errors.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pye2.errors import ConfigError, IdentityError
from pye2.service.settings import Settings, read_env_file, resolve_settings

__all__ = ["CliFailure", "Connection", "add_connection_options", "connection", "explain", "mask", "positive_float"]

#: the Session's default key file name (inside PYE2_HOME)
DEFAULT_KEY_NAME = "_pk_sdk.pem"
#: the client name the commands use (``INITIATOR_ID``)
CLIENT_NAME = "pye2-cli"


class CliFailure(Exception):
    """A failure the command reports as one ``error: ...`` line (exit code ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def positive_float(text: str) -> float:
    """argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_connection_options(parser: argparse.ArgumentParser, *, timeout: float | None = None,
                           timeout_help: str = "seconds to wait") -> None:
    """The shared options (and ``--timeout`` when the command waits for something)."""
    group = parser.add_argument_group("connection (each also from the environment or .env)")
    group.add_argument("--broker", metavar="URL", default=None,
                       help="broker URL, e.g. mqtt://user:pass@host:1883 (PYE2_TRANSPORT, or PYE2_HOST/PORT/USER/PASS)")
    group.add_argument("--profile", choices=("aixp", "ratio1"), type=str.lower, default=None,
                       help="wire profile (PYE2_PROFILE; default aixp)")
    group.add_argument("--root", metavar="TOPIC", default=None, help="topic root (PYE2_ROOT; default the profile's)")
    group.add_argument("--identity", metavar="PATH", default=None,
                       help=f"key file (PYE2_IDENTITY; default $PYE2_HOME/{DEFAULT_KEY_NAME}, made on first use)")
    group.add_argument("--env-file", metavar="PATH", default=".env", dest="env_file",
                       help="the .env file to read (default ./.env)")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    if timeout is not None:
        parser.add_argument("--timeout", type=positive_float, default=timeout, metavar="SECONDS",
                            help=f"{timeout_help} (default {timeout:g})")


def _env(args: argparse.Namespace, key: str) -> str | None:
    """``key`` from the environment, else from the ``.env`` file (the Session's order)."""
    value = os.environ.get(key)
    if value:
        return value
    value = read_env_file(args.env_file).get(key) if args.env_file else None
    return value or None


@dataclass
class Connection:
    """What the options resolved to (no network yet)."""

    settings: Settings
    root: str | None
    identity_path: Path
    identity_explicit: bool
    env_file: str | None
    secrets: tuple[str, ...]
    #: ``-v``: the SDK logs at INFO (to stderr, with ``pye2 -v``)
    verbose: bool = False

    @property
    def broker(self) -> str:
        """The broker URL with its password masked (``***``), or a hint that none is set."""
        try:
            url = self.settings.transport_url()
        except ConfigError:
            return "(invalid transport)"
        return mask(url, self.secrets) if url else "(no broker configured)"

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        return mask(text, self.secrets)

    def load_identity(self) -> Any:
        """The key of ``identity_path`` (Session's rule: an absent default file is made on first connect).

        Raises:
            CliFailure: an explicit file is missing, or the file cannot be used.
        """
        from pye2.wire import Identity

        path = self.identity_path
        if not path.exists():
            if self.identity_explicit:
                raise CliFailure(f"identity file {path} does not exist (make one: pye2 keys new --out {path})")
            return None  # the Session makes it, as the SDK does
        try:
            return Identity.load(path)
        except IdentityError as exc:
            raise CliFailure(f"identity file {path}: {exc}") from None

    def session(self, **options: Any) -> Any:
        """A new :class:`~pye2.Session` for these options (not connected)."""
        from pye2 import Session

        identity = options.pop("identity", None)
        if identity is None:
            identity = self.load_identity()
        kwargs: dict[str, Any] = {"env_file": self.env_file, "key_path": str(self.identity_path)}
        if self.root:
            kwargs["root_topic"] = self.root
        return Session(name=CLIENT_NAME, transport=self.settings.transport, host=self.settings.host,
                       port=self.settings.port, user=self.settings.user, pwd=self.settings.pwd,
                       profile=self.settings.profile, identity=identity, silent=not self.verbose, **kwargs, **options)


def mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def connection(args: argparse.Namespace) -> Connection:
    """Resolve the shared options as the Session would.

    Raises:
        CliFailure: a setting is invalid (exit code 2).
    """
    try:
        settings = resolve_settings(host=None, port=None, user=None, pwd=None, transport=args.broker,
                                    profile=args.profile, env_file=args.env_file or None)
    except ConfigError as exc:
        raise CliFailure(str(exc), 2) from None
    secrets: list[str] = [s for s in (settings.pwd,) if s]
    if settings.transport and "://" in settings.transport:
        secrets.extend(_url_secrets(settings.transport))
    if settings.profile and settings.profile.lower() not in ("aixp", "ratio1"):
        raise CliFailure(f"unknown profile {settings.profile!r} (aixp or ratio1)", 2)
    root = args.root or _env(args, "PYE2_ROOT")
    if root is not None and (not root or any(c in root for c in "+#") or root != root.strip()):
        raise CliFailure(f"--root {root!r}: a topic root has no spaces, '+' or '#'", 2)
    explicit = args.identity or _env(args, "PYE2_IDENTITY")
    path = Path(explicit).expanduser() if explicit else (
        Path(os.environ.get("PYE2_HOME", Path.home() / ".pye2")) / DEFAULT_KEY_NAME)
    return Connection(settings=settings, root=root, identity_path=path, identity_explicit=bool(explicit),
                      env_file=args.env_file or None, secrets=tuple(dict.fromkeys(secrets)))


def _url_secrets(url: str) -> list[str]:
    """The password of ``url`` as written and decoded (everything between ``user:`` and the last ``@``)."""
    _, _, rest = url.partition("://")
    userinfo, at, _host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return []
    raw = userinfo.partition(":")[2]
    found = [raw, unquote(raw)]
    try:
        parsed = urlsplit(url).password
    except ValueError:
        parsed = None
    if parsed:
        found.append(parsed)
    return [s for s in found if s]


def explain(exc: BaseException, conn: Connection | None) -> str:
    """One line for a failure, with secrets masked."""
    text = " ".join((str(exc) or type(exc).__name__).split())
    return conn.scrub(text) if conn is not None else text
