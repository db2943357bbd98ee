"""Signatures the simulator made itself: verified once per signer, then known to be valid.

Every simulated node signs what it publishes and every receiver verifies it:
a 100-node network checks 36,000 signatures per simulated hour that this
very process has just made. :class:`SignatureMemo` is a Verifier that
remembers ``(public key, digest, signature)`` of each signature made through
a signer it witnessed (:meth:`SignatureMemo.witness`) and accepts exactly
those triples without the curve arithmetic. Everything else, forged,
re-signed or corrupted signatures included, goes to the real verifier, and
``verify_message`` still recomputes and compares the digest of every
message, so every verdict stays what the real verifier would say. A
signer's first signature is verified for real; a signer whose signature
does not verify is never vouched for.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from pye2.errors import Pye2Error

if TYPE_CHECKING:
    from pye2.ports.signer import Signer, Verifier

__all__ = ["SignatureMemo"]

log = logging.getLogger(__name__)

_SIZE = 4096

_Triple = tuple[bytes, bytes, bytes]


class SignatureMemo:
    """A Verifier in front of ``verifier`` that knows the signatures of witnessed signers.

    Args:
        verifier: the real verifier (every unknown signature goes to it).
        size: how many unverified signatures are remembered (oldest dropped first).
    """

    def __init__(self, verifier: Verifier, size: int = _SIZE) -> None:
        self.verifier = verifier
        self._size = size
        self._known: OrderedDict[_Triple, None] = OrderedDict()
        self.vouched = 0

    def __repr__(self) -> str:
        return f"<SignatureMemo pending={len(self._known)} vouched={self.vouched} of {self.verifier!r}>"

    def verify(self, public_key: bytes, digest: bytes, signature: bytes) -> None:
        """Return if valid; raise :class:`~pye2.errors.SignatureInvalid` otherwise (the Verifier port)."""
        try:
            # A message is verified once (the receive cache keeps the verdict): forget it now.
            del self._known[(public_key, digest, signature)]
        except KeyError:
            self.verifier.verify(public_key, digest, signature)
            return
        self.vouched += 1

    def witness(self, signer: Signer) -> Signer:
        """``signer``, with every signature it makes remembered as valid."""
        return _Witnessed(signer, self)

    def vouches_for(self, signer: Signer) -> bool:
        """True when ``signer`` came from :meth:`witness` and its first signature verified."""
        return isinstance(signer, _Witnessed) and signer._memo is self and signer._trusted is True

    def settled(self, signer: Signer) -> None:
        """The last signature of ``signer`` needs no verification any more (its verdict is recorded)."""
        if isinstance(signer, _Witnessed) and signer._last is not None:
            self._known.pop(signer._last, None)
            signer._last = None

    def _remember(self, triple: _Triple) -> None:
        known = self._known
        known[triple] = None
        if len(known) > self._size:
            known.popitem(last=False)

    def _check(self, triple: _Triple) -> bool:
        try:
            self.verifier.verify(*triple)
        except Pye2Error as exc:
            log.warning("a simulated signer's signature does not verify (%s); its signatures are checked in full",
                        exc)
            return False
        return True


class _Witnessed:
    """A Signer whose signatures a :class:`SignatureMemo` vouches for."""

    __slots__ = ("_inner", "_last", "_memo", "_trusted", "public_key")

    def __init__(self, inner: Signer, memo: SignatureMemo) -> None:
        self._inner = inner
        self._memo = memo
        self._trusted: bool | None = None
        self._last: _Triple | None = None
        self.public_key: bytes = inner.public_key

    def sign(self, digest: bytes) -> bytes:
        """DER ECDSA signature of ``digest`` by the wrapped signer."""
        signature = self._inner.sign(digest)
        triple = (self.public_key, digest, signature)
        if self._trusted is None:
            self._trusted = self._memo._check(triple)
        if self._trusted:
            self._memo._remember(triple)
            self._last = triple
        return signature

    def __repr__(self) -> str:
        return f"<witnessed {self._inner!r}>"
