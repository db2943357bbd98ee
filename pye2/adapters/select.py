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
"""

from __future__ import annotations

import logging
import os

from pye2.adapters.secp256k1 import CryptographyVerifier
from pye2.errors import ExtraMissing
from pye2.ports.signer import Verifier

__all__ = ["VERIFIER_ENV", "best_verifier"]

log = logging.getLogger(__name__)

#: Environment variable naming the verifier backend (``auto`` when unset).
VERIFIER_ENV = "PYE2_VERIFIER"


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
            log.debug("coincurve is not installed: verifying signatures with cryptography")
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
