"""An attacker on the same broker: its own key, its own raw transport, the session's topics.

It sniffs what nodes publish, and publishes copies (replays) or altered
copies signed with its own key (forgeries). Works over any Transport: the
simulated network's, or a real MQTT connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pye2.domain.profiles import WireProfile
from pye2.ports.transport import Delivery, Transport
from pye2.wire import Identity, sign_message

SIGNATURE_FIELDS = ("EE_SIGN", "EE_SENDER", "EE_HASH", "EE_ETH_SIGN", "EE_ETH_SENDER", "SIGN_CANON_V")


class Attacker:
    """Forges and replays messages on ``transport`` under ``profile``'s topics."""

    def __init__(self, transport: Transport, profile: WireProfile) -> None:
        self.transport = transport
        self.profile = profile
        self.identity = Identity.generate()
        self.address = self.identity.address(profile)
        self.captured: dict[str, list[bytes]] = {"ctrl": [], "notif": [], "payloads": []}
        transport.connect()
        for kind, topic in (("ctrl", profile.ctrl), ("notif", profile.notif), ("payloads", profile.payloads)):
            transport.subscribe(topic, self._capture(kind))

    def _capture(self, kind: str) -> Callable[[Delivery], None]:
        def keep(delivery: Delivery) -> None:
            self.captured[kind].append(bytes(delivery.body))
        return keep

    def last(self, kind: str, where: Callable[[dict[str, Any]], bool] = lambda m: True) -> bytes:
        """The last captured body of ``kind`` whose message matches ``where``."""
        for body in reversed(self.captured[kind]):
            if where(json.loads(body)):
                return body
        raise AssertionError(f"nothing captured on {kind} matches")

    def forge(self, body: bytes | Mapping[str, Any], **changes: Any) -> bytes:
        """``body`` with ``changes`` applied, signed by the attacker's key (its EE_ID etc. kept unless changed)."""
        message = dict(json.loads(body) if isinstance(body, bytes) else body)
        for name in SIGNATURE_FIELDS:
            message.pop(name, None)
        message.update(changes)
        return json.dumps(sign_message(message, self.identity, profile=self.profile)).encode()

    def publish(self, kind: str, body: bytes) -> None:
        topic = {"ctrl": self.profile.ctrl, "notif": self.profile.notif, "payloads": self.profile.payloads}[kind]
        self.transport.publish(topic, body)

    def close(self) -> None:
        self.transport.close()
