"""Ports: the Protocols through which the pye2 core talks to the outside world.

Only interfaces live here. Implementations are adapters: transports in the
``pye2_transport_*`` packages, signers and serializers in :mod:`pye2.adapters`.
"""

from __future__ import annotations

from pye2.ports.clock import Clock, Timer
from pye2.ports.formatter import Formatter
from pye2.ports.serializer import Serializer
from pye2.ports.signer import Signer, SignerFactory, Verifier
from pye2.ports.transport import (
    BaseTransport,
    ConnectionEvent,
    ConnectionListener,
    Delivery,
    Handler,
    Subscription,
    SupportsConnectionEvents,
    SupportsSharedSubscriptions,
    Transport,
    TransportCapabilities,
    TransportFactory,
)

__all__ = [
    "BaseTransport",
    "Clock",
    "ConnectionEvent",
    "ConnectionListener",
    "Delivery",
    "Formatter",
    "Handler",
    "Serializer",
    "Signer",
    "SignerFactory",
    "Subscription",
    "SupportsConnectionEvents",
    "SupportsSharedSubscriptions",
    "Timer",
    "Transport",
    "TransportCapabilities",
    "TransportFactory",
    "Verifier",
]
