"""Test rig for the simulated node: one node, a client transport, a sniffer, a client key.

Commands are built the way a client builds them (``pye2.domain.commands`` +
``sign_message``) and published raw on the node's command topic.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pye2.domain.commands import build_envelope
from pye2.domain.profiles import AIXP, WireProfile
from pye2.wire import Identity, encrypt_command, sign_message
from pye2_transport_memory.clock import VirtualClock
from pye2_transport_memory.hub import Hub
from pye2_transport_memory.node.node import SimulatedNode
from pye2_transport_memory.transport import MemoryTransport


def key(name: str) -> Identity:
    """A deterministic test key."""
    return Identity.from_private_bytes(hashlib.sha256(f"test-key:{name}".encode()).digest())


CLIENT = key("client")
STRANGER = key("stranger")


class Rig:
    """One node on a hub with a virtual clock, plus a client that sees everything."""

    def __init__(self, *, profile: WireProfile = AIXP, start: bool = True, node_id: str = "node-1",
                 **node_kw: Any) -> None:
        self.profile = profile
        self.clock = VirtualClock()
        self.hub = Hub(self.clock)
        node_kw.setdefault("allow_list", [CLIENT.address(profile)])  # the rig's client may command the node
        self.node = SimulatedNode(node_id, transport=MemoryTransport(self.hub, name=node_id), clock=self.clock,
                                  profile=profile, **node_kw)
        self.client = MemoryTransport(self.hub, name="client")
        self.client.connect()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.client.subscribe(f"{profile.root}/#", self._sniff)
        if start:
            self.node.start()

    def _sniff(self, delivery: Any) -> None:
        try:
            message = json.loads(delivery.body)
        except ValueError:
            message = {"_raw": delivery.body}
        self.seen.append((delivery.address, message))

    # -- sending ---------------------------------------------------------------------
    def envelope(self, action: str, payload: Any = None, *, initiator: str = "tester",
                 session: str | None = "test-session") -> dict[str, Any]:
        """The unsigned command dict a client builds (AIXP adds SESSION_ID itself for the tests)."""
        message = build_envelope(action, payload, profile=self.profile, target_id=self.node.alias,
                                 target_address=self.node.address, initiator_id=initiator, session_id=session,
                                 now=self.clock.time())
        if session is not None:
            message.setdefault("SESSION_ID", session)
        return message

    def publish(self, message: Any, *, topic: str | None = None) -> None:
        """Publish a dict (as JSON) or raw bytes on the node's command topic."""
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.client.publish(topic or self.command_topic, body)

    @property
    def command_topic(self) -> str:
        target = self.node.address if self.profile.commands_by_address else self.node.alias
        return self.profile.config(target)

    def send(self, action: str, payload: Any = None, *, signer: Identity | None = CLIENT, advance: float = 0.5,
             encrypt: bool = False, **kw: Any) -> dict[str, Any]:
        """Build, sign (unless ``signer`` is None), publish, then let the node run ``advance`` seconds."""
        message = self.envelope(action, payload, **kw)
        if encrypt:
            message = encrypt_command(message, sender=signer or CLIENT, receivers=self.node.address)
        if signer is not None:
            message = sign_message(message, signer, profile=self.profile)
        self.publish(message)
        if advance:
            self.clock.advance(advance)
        return message

    # -- reading -----------------------------------------------------------------------
    def mark(self) -> int:
        """Position in the sniffed stream (to look only at what comes after)."""
        return len(self.seen)

    def events(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        """Sniffed messages of one event type (HEARTBEAT, NOTIFICATION, PAYLOAD)."""
        return [m for _, m in self.seen[since:] if m.get("EE_EVENT_TYPE") == kind]

    def notes(self, since: int = 0) -> list[tuple[Any, Any, str]]:
        """``(type, code, text)`` of sniffed notifications."""
        return [(m["NOTIFICATION_TYPE"], m["NOTIFICATION_CODE"], m["NOTIFICATION"])
                for m in self.events("NOTIFICATION", since)]

    def codes(self, since: int = 0) -> list[Any]:
        """Notification codes in order."""
        return [code for _, code, _ in self.notes(since)]


def pipeline(name: str = "p1", *instances: dict[str, Any], signature: str = "SIMPLE_COUNTER",
             type_: str = "Void", **extra: Any) -> dict[str, Any]:
    """A pipeline config with one plugin entry."""
    insts = list(instances) or [{"INSTANCE_ID": "i1", "PROCESS_DELAY": 1}]
    return {"NAME": name, "TYPE": type_, "PLUGINS": [{"SIGNATURE": signature, "INSTANCES": insts}], **extra}
