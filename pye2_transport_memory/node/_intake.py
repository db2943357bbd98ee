"""How a simulated node accepts a command (node.md section 5, steps 1-6).

Decode (malformed: counted, logged), target check on ``EE_ID``, signature
(secured node: -5000 notification and drop; unsecured: an ABNORMAL
FUNCTIONING notification and the command runs NON-VALIDATED), decryption,
allow-list (silent drop), then the node's injections into dict payloads.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from pye2.domain.logtext import clip
from pye2.errors import Pye2Error
from pye2.ports.transport import Delivery
from pye2.wire import verify_message
from pye2_transport_memory.node._commands import Command
from pye2_transport_memory.node._notify import ABNORMAL, Notice

if TYPE_CHECKING:
    from pye2_transport_memory.node.node import SimulatedNode

__all__ = ["accept_command", "inject"]

log = logging.getLogger("pye2_transport_memory.node")

_ETH_FIELDS = ("EE_ETH_SENDER", "EE_ETH_SIGN")
#: refused senders a node warns about (each once); later ones are only counted
_MAX_WARNED = 256


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def inject(payload: Any, *, sender: str | None, initiator: str | None, session: str | None,
           validated: bool) -> None:
    """What a node adds to dict payloads (a list's dict items too), in place.

    A payload's own ``INITIATOR_ID`` stays: ``UPDATE_CONFIG`` checks it against the envelope's.
    """
    for item in payload if isinstance(payload, list) else [payload]:
        if isinstance(item, dict):
            item.update({"EE_SENDER": sender, "VALIDATED": validated})
            item.setdefault("INITIATOR_ID", initiator)
            if session is not None:
                item.setdefault("SESSION_ID", session)


def _sender_in_mode(node: SimulatedNode, message: dict[str, Any], cached: str | None) -> str | None:
    """The verified sender under the node's signing mode (node.md section 5, step 3).

    The shared cache verifies under the network's profile. A node whose mode
    differs from it checks a command that carries ``EE_ETH_*`` fields again: with
    ETH mode off they are hashed as data (so a command that left them out of its
    hash fails: "Corrupted digest!"); with it on, both forms are accepted.
    """
    if node.sign_profile is node.profile or not any(f in message for f in _ETH_FIELDS):
        return cached
    if node.eth_enabled and cached is not None:
        return cached
    try:
        return verify_message(message, profile=node.sign_profile, verifier=node.receive_cache.verifier,
                              json_native=True)
    except Pye2Error as exc:
        node.log(f"Corrupted digest! command signature does not verify in this node's signing mode: {exc}")
        return None


def _warn_not_allowed(node: SimulatedNode, sender: str | None) -> None:
    """Say once per sender (a bounded memory) who was refused and how to allow it."""
    warned = node.refused_senders
    if sender in warned or len(warned) >= _MAX_WARNED:
        return
    warned.add(sender)
    log.warning("simulated node %s: command from %s dropped: not in its allow-list (allow it with "
                "SimulatedNetwork(allow_list=[...]) / set_allow_list, or `pye2 sim --allow ADDRESS`)",
                node.alias, clip(sender))


def accept_command(node: SimulatedNode, delivery: Delivery) -> Command | None:
    """The command in ``delivery`` if the node accepts it, else None (counted, maybe notified)."""
    counters = node.counters
    counters["commands_received"] += 1
    counters["in_bytes"] += len(delivery.body)
    received = node.receive_cache.message(delivery.body)
    message = received.message
    if message is None:
        counters["rejected_malformed"] += 1
        node.log(f"malformed command on {delivery.address}: {received.error}")
        return None
    if not node.is_me(message.get("EE_ID")):
        counters["rejected_not_for_me"] += 1
        node.log("Message is not for the current device")
        return None
    sender = _sender_in_mode(node, message, received.sender)
    validated = sender is not None
    if not validated:
        claimed = _text(message.get("EE_SENDER"))
        text = f"INCOMING: Received invalid command from {message.get('INITIATOR_ID')}({claimed}):{message!r}"
        notice = Notice("CommunicationManager", ABNORMAL, text, -5000 if node.secured else None, displayed=False,
                        session_id=_text(message.get("SESSION_ID")))
        node.notify(notice)
        if node.secured:
            counters["rejected_signature"] += 1
            return None
        counters["unverified_commands"] += 1
        sender = claimed
    if message.get("EE_IS_ENCRYPTED") is True:
        try:
            message = node.decrypt_message(message, sender)
        except Pye2Error as exc:
            counters["rejected_decrypt"] += 1
            node.log(f"cannot decrypt command from {sender}: {exc}")
            return None
    if not node.is_allowed(sender):
        counters["rejected_not_allowed"] += 1
        node.log(f"command from {sender} dropped: not in the allow-list")
        _warn_not_allowed(node, sender)
        return None
    payload = copy.deepcopy(message.get("PAYLOAD"))
    initiator, session = _text(message.get("INITIATOR_ID")), _text(message.get("SESSION_ID"))
    inject(payload, sender=sender, initiator=initiator, session=session, validated=validated)
    action = message.get("ACTION")
    counters["commands_accepted"] += 1
    return Command(str(action) if action is not None else "", payload, sender, initiator, session, validated,
                   raw=message)
