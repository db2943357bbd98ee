"""Choosing the signature verifier: the fastest available, unless told otherwise.

``PYE2_VERIFIER`` (or the ``preference`` argument) selects it:

* unset, empty or ``auto``: ``coincurve`` (libsecp256k1) when it can be
  imported, else ``cryptography``;
* ``cryptography``: always the default OpenSSL-based verifier;
* ``coincurve``: libsecp256k1, or :class:`~pye2.errors.ExtraMissing` naming
  ``pip install 'pye2[fast]'`` when it is not installed;
* any other name: the verifier of that signer backend from the plugin host
  (a third-party ``pye2_register_signers`` plugin), or
  :class:`~pye2.errors.PluginNotFound` listing the known names.

Both built-in verifiers give the same verdict on every input (the vector
tests check this), so the choice changes speed only.

``PYE2_JSON`` (or ``preference``) does the same for JSON on the receiving side
(:func:`best_parser`, :func:`best_sorted_text`): ``auto`` uses orjson when it
can be imported, ``stdlib`` never does, ``orjson`` insists on it. Both give
identical messages and canonical texts (the orjson paths hand anything they
cannot do exactly back to the stdlib), so again only speed changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from pye2.adapters.secp256k1 import CryptographyVerifier
from pye2.domain.canonical import SortedTextFn
from pye2.errors import ConfigError, ExtraMissing, SerializerUnavailable
from pye2.ports.serializer import Serializer
from pye2.ports.signer import Verifier

__all__ = ["JSON_ENV", "VERIFIER_ENV", "best_parser", "best_sorted_text", "best_verifier"]

log = logging.getLogger(__name__)

#: Environment variable naming the verifier backend (``auto`` when unset).
VERIFIER_ENV = "PYE2_VERIFIER"
#: Environment variable choosing the JSON fast paths (``auto`` when unset).
JSON_ENV = "PYE2_JSON"
_JSON_CHOICES = ("auto", "stdlib", "orjson")


#: the fallbacks already announced in this process (each one is said once, in one line)
_ANNOUNCED: set[str] = set()


def _announce_fallback(what: str, text: str) -> None:
    """A one-line warning, once per process, that a fast path is missing and how to get it."""
    if what in _ANNOUNCED:
        return
    _ANNOUNCED.add(what)
    log.warning("%s (pip install %s, a normal dependency of pye2 on CPython)", text, what)


def _coincurve_verifier() -> Verifier:
    from pye2.adapters.coincurve_backend import CoincurveVerifier

    return CoincurveVerifier()


def best_verifier(preference: str | None = None) -> Verifier:
    """A new verifier chosen by ``preference``, else ``$PYE2_VERIFIER``, else ``auto``.

    Callers keep the result (it holds the parsed-key cache); each call builds
    a new one.

    Raises:
        ExtraMissing: ``coincurve`` was asked for explicitly and is not installed.
        PluginNotFound: the name is neither built in nor a registered signer backend.
    """
    raw = preference if preference is not None else os.environ.get(VERIFIER_ENV, "")
    choice = raw.strip().lower() or "auto"
    if choice == "auto":
        try:
            verifier = _coincurve_verifier()
        except ExtraMissing:
            _announce_fallback("coincurve", "coincurve is not installed: verifying signatures with cryptography, "
                                            "about 5x slower")
            return CryptographyVerifier()
        log.debug("verifying signatures with coincurve (libsecp256k1)")
        return verifier
    if choice == "cryptography":
        return CryptographyVerifier()
    if choice == "coincurve":
        return _coincurve_verifier()
    from pye2.plugins.host import default_host  # only for third-party backends: loads entry points

    plugged: Verifier = default_host().signer_backend(choice).verifier()
    log.debug("verifying signatures with signer backend %r", choice)
    return plugged


def _json_choice(preference: str | None) -> str:
    raw = preference if preference is not None else os.environ.get(JSON_ENV, "")
    choice = raw.strip().lower() or "auto"
    if choice not in _JSON_CHOICES:
        raise ConfigError(f"{JSON_ENV} must be one of {', '.join(_JSON_CHOICES)}, not {raw!r}")
    return choice


def best_parser(serializer: Serializer, preference: str | None = None) -> Callable[[bytes], dict[str, Any]]:
    """The function that parses received bytes for ``serializer``.

    For the ``json`` serializer, orjson's parser (:class:`OrjsonSerializer`, which
    returns exactly what the stdlib returns) unless ``stdlib`` is chosen; any
    other serializer parses with its own ``loads``.

    Raises:
        ConfigError: unknown ``PYE2_JSON`` value.
        SerializerUnavailable: ``orjson`` was asked for and is not installed.
    """
    choice = _json_choice(preference)
    if getattr(serializer, "name", None) != "json" or choice == "stdlib":
        return serializer.loads
    from pye2.adapters.orjson_serializer import OrjsonSerializer

    try:
        return OrjsonSerializer().loads
    except SerializerUnavailable:
        if choice == "orjson":
            raise
        _announce_fallback("orjson", "orjson is not installed: parsing received JSON with the stdlib, slower")
        return serializer.loads


def best_sorted_text(preference: str | None = None) -> SortedTextFn | None:
    """The exact-or-None writer of the sorted JSON text (``v2`` and legacy canons) on orjson, or None.

    Raises:
        ConfigError: unknown ``PYE2_JSON`` value.
        SerializerUnavailable: ``orjson`` was asked for and cannot be used.
    """
    choice = _json_choice(preference)
    if choice == "stdlib":
        return None
    from pye2.adapters.orjson_canonical import OrjsonSortedText

    try:
        return OrjsonSortedText()
    except SerializerUnavailable as exc:
        if choice == "orjson":
            raise
        log.debug("canonical JSON on the stdlib: %s", exc)
        return None
