"""Broker URLs that may hold a password: masking them, and telling when a password spilled past the host (pure).

One place for what every transport, CLI command and test harness that shows a
URL needs, so a password never reaches a log line, a summary or an error by
one of several slightly different paths.
"""

from __future__ import annotations

from pye2.errors import ConfigError

__all__ = ["at_after_host", "mask_url", "spilled_credentials_error"]


def mask_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``.

    Errs on the side of masking: everything between the first ``:`` after the
    user name and the last ``@`` is hidden, so a password holding an unencoded
    ``/``, ``?``, ``#`` or ``@`` is hidden too. Never raises.
    """
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"


def at_after_host(url: str) -> bool:
    """True when an ``@`` follows the host part (or there is no ``://``), as when a password's ``/`` ends it."""
    start = url.find("://")
    if start < 0:
        return "@" in url
    ends = [i for i in (url.find(c, start + 3) for c in "/?#") if i >= 0]
    return "@" in url[min(ends, default=len(url)):]


def spilled_credentials_error(kind: str) -> ConfigError:
    """The error for a ``kind`` (``"MQTT"``, ``"AMQP"``) URL whose user name or password spilled past the host.

    It quotes nothing of the URL: what a parser would quote may be part of the password.
    """
    return ConfigError(
        f"invalid {kind} URL (not shown: it may hold a password): an '@' comes after the host, so the user "
        "name or password probably holds an unencoded '/', '?', '#' or '@'; percent-encode it "
        "(urllib.parse.quote(password, safe='')), and write an '@' in an option as %40")
