"""CommandRecorder: what commands each simulated node received, read off the wire.

A client transport of the network subscribes to every node's command address
(``{root}/{node}/config``) before the nodes start, so it sees exactly what a
node's own subscription sees, on the in-memory hub and on a broker alike.
An encrypted command is decrypted with the receiving node's key (the node is
in this process). What is recorded is what *arrived*: whether the node
accepted it (signature, allow-list) is in ``node.counters``. Commands a node
sends to itself bypass the broker, as on a real node, and are not seen.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pye2.domain.logtext import clip
from pye2.errors import Pye2Error
from pye2.ports.transport import Delivery

if TYPE_CHECKING:
    from pye2_transport_memory.network import SimulatedNetwork

__all__ = ["CommandRecorder", "ReceivedCommand"]

log = logging.getLogger(__name__)

#: commands kept per node (the oldest are dropped beyond it)
MAX_PER_NODE = 10_000


@dataclass(frozen=True)
class ReceivedCommand:
    """One command that arrived on a node's command address.

    Attributes:
        node: the receiving node's id.
        action: ``ACTION`` (``""`` if absent or unreadable).
        payload: ``PAYLOAD`` (decrypted if it was encrypted and could be).
        sender: the claimed ``EE_SENDER``.
        initiator_id: ``INITIATOR_ID``.
        encrypted: the command travelled encrypted.
        time: the network clock's ``time()`` when it arrived.
        message: the whole (decrypted) message.
    """

    node: str
    action: str
    payload: Any
    sender: str | None
    initiator_id: str | None
    encrypted: bool
    time: float
    message: dict[str, Any]

    def __repr__(self) -> str:
        return f"<ReceivedCommand {self.action} -> {self.node} from {self.initiator_id}>"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class CommandRecorder:
    """Records the commands every node of ``network`` receives (call :meth:`attach` before the nodes start)."""

    def __init__(self, network: SimulatedNetwork) -> None:
        self._network = network
        self._lock = threading.Lock()
        self._seen: dict[str, list[ReceivedCommand]] = {node_id: [] for node_id in network.node_ids}
        self._delivered: dict[str, int] = dict.fromkeys(network.node_ids, 0)
        self.malformed = 0
        self._transport: Any = None

    def attach(self) -> None:
        """Connect a client transport and subscribe to every node's command address."""
        transport = self._network.transport()
        transport.connect()
        profile = self._network.profile
        for node_id, node in self._network.nodes.items():
            target = node.address if profile.commands_by_address else node.alias
            transport.subscribe(profile.config(target), self._handler(node_id))
        self._transport = transport

    def _handler(self, node_id: str) -> Callable[[Delivery], None]:
        def on_command(delivery: Delivery) -> None:  # on the wall clock the network's transport wakes waiters
            self._record(node_id, delivery.body)

        return on_command

    def _record(self, node_id: str, body: bytes) -> None:
        with self._lock:
            self._delivered[node_id] += 1
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            message, error = None, str(exc)
        else:
            error = "not a JSON object"
        if not isinstance(message, dict):
            with self._lock:
                self.malformed += 1
            log.debug("command recorder: unreadable command for %s: %s", node_id, clip(error))
            return
        encrypted = message.get("EE_IS_ENCRYPTED") is True
        if encrypted:
            node = self._network.nodes[node_id]
            try:
                message = node.decrypt_message(message, _text(message.get("EE_SENDER")))
            except Pye2Error as exc:
                log.debug("command recorder: cannot decrypt a command for %s: %s", node_id, clip(str(exc)))
        action = message.get("ACTION")
        command = ReceivedCommand(
            node=node_id, action=action if isinstance(action, str) else "", payload=message.get("PAYLOAD"),
            sender=_text(message.get("EE_SENDER")), initiator_id=_text(message.get("INITIATOR_ID")),
            encrypted=encrypted, time=self._network.clock.time(), message=message)
        with self._lock:
            seen = self._seen[node_id]
            seen.append(command)
            if len(seen) > MAX_PER_NODE:
                del seen[: len(seen) - MAX_PER_NODE]

    def delivered(self, node_id: str) -> int:
        """How many bodies arrived for ``node_id`` (readable or not; the node counts ``commands_received``)."""
        with self._lock:
            return self._delivered[node_id]

    def commands(self, node_id: str) -> list[ReceivedCommand]:
        """The commands ``node_id`` received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._seen[node_id])

    def clear(self) -> None:
        """Forget what was recorded (to look only at what comes next)."""
        with self._lock:
            for seen in self._seen.values():
                seen.clear()
