"""Data sources of a simulated node: ``Void``, ``IotQueueListener``, ``NetworkListener``.

* ``Void``: no data at all; a real node starts no capture for it, and the
  simulated node does not even build this object (instances of a Void
  pipeline run on their own timer and need ``ALLOW_EMPTY_INPUTS``). It is
  registered so the type is known.
* ``IotQueueListener`` (also ``IoTQueueListener``): subscribes, through the
  node's own transport, to the payloads topic ``{root}/payloads`` and the
  node's addressed ``{root}/{address}/payloads`` (or to ``TOPIC`` when one
  is configured), and turns each received JSON payload into one
  ``STRUCT_DATA`` input holding the flat payload dict. ``PATH_FILTER`` (4
  entries matched against ``EE_PAYLOAD_PATH``, upper-cased; null = any; an
  entry may be a list of accepted values), ``MESSAGE_FILTER`` (sub-dict
  match) and ``FILTER_BY_DESTINATION`` (only payloads whose ``EE_DEST``
  names this node) are applied. Encrypted payloads addressed to the node
  are decrypted.
* ``NetworkListener``: the admin pipeline's listener (the same, with the
  admin ``PATH_FILTER`` by default).

Connection settings: ``HOST``, ``PORT``, ``USER``, ``PASS``, ``QOS``,
``SECURED``, ``PROTOCOL`` (top level or in ``STREAM_CONFIG_METADATA``) are
accepted and ignored: the listener always uses the node's own transport, i.e.
the network the node is on. A simulated network has one broker, so settings
pointing elsewhere are logged and still served from the node's network.

Signatures: a real node's comm layer verifies what it receives; a generic
IoT listener may also hear unsigned device data. So a message that carries
a signature must verify (else it is dropped and counted in
``rejected``); an unsigned message is accepted as plain IoT data.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pye2.errors import Pye2Error
from pye2_transport_memory.node._admin import ADMIN_PATH_FILTER
from pye2_transport_memory.node.netmon import Received
from pye2_transport_memory.node.plugin_base import InputItem, NodeApi, SimDataSource

__all__ = ["IotQueueListener", "NetworkListener", "PushSource", "Void", "message_matches", "path_matches"]

log = logging.getLogger(__name__)

_CONNECTION_KEYS = ("HOST", "PORT", "USER", "PASS", "QOS", "SECURED", "PROTOCOL")
_BUFFER = 1000


def path_matches(path_filter: Any, path: Any) -> bool:
    """``PATH_FILTER`` semantics: 4 entries against ``EE_PAYLOAD_PATH``, upper-cased, None = any."""
    if not isinstance(path_filter, list):
        return True
    if not isinstance(path, list):
        path = [None, None, None, None]
    for i, want in enumerate(path_filter[:4]):
        if want is None:
            continue
        have = path[i] if i < len(path) else None
        have_text = str(have).upper() if have is not None else None
        wanted = want if isinstance(want, list) else [want]
        if have_text not in {str(w).upper() for w in wanted if w is not None}:
            return False
    return True


def message_matches(message_filter: Any, message: Mapping[str, Any]) -> bool:
    """``MESSAGE_FILTER`` semantics: every key present with an equal value (dicts recursively)."""
    if not isinstance(message_filter, dict):
        return True
    for key, want in message_filter.items():
        have = message.get(key)
        if isinstance(want, dict):
            if not isinstance(have, dict) or not message_matches(want, have):
                return False
        elif have != want:
            return False
    return True


class Void(SimDataSource):
    """``VOID``: no data (the node starts no capture for it)."""

    TYPES: ClassVar[tuple[str, ...]] = ("VOID", "Void")


class PushSource(SimDataSource):
    """A source fed by deliveries: it buffers inputs and asks the node for a poll when data arrives.

    The node calls :meth:`set_wake` instead of polling on a timer, so an idle
    listener costs nothing per tick. Like a real DCT cycle, each poll yields
    one input; while a ``backlog`` remains the node polls again every
    ``1 / CAP_RESOLUTION`` s, so messages arriving together are not lost to
    an instance's one-slot input queue.
    """

    def __init__(self, node: NodeApi, pipeline: str, config: dict[str, Any]) -> None:
        super().__init__(node, pipeline, config)
        self._buffer: deque[InputItem] = deque(maxlen=_BUFFER)
        self._wake: Callable[[], None] | None = None

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Called by the node: ``wake()`` schedules a poll."""
        self._wake = wake

    def push(self, item: InputItem) -> None:
        """Buffer one input and ask for a poll."""
        self._buffer.append(item)
        if self._wake is not None:
            self._wake()

    @property
    def backlog(self) -> int:
        """Inputs still buffered."""
        return len(self._buffer)

    def poll(self) -> list[InputItem]:
        """The oldest buffered input (one per cycle), or nothing."""
        return [self._buffer.popleft()] if self._buffer else []


class IotQueueListener(PushSource):
    """Payloads heard on the network, one ``STRUCT_DATA`` input each (see the module docstring)."""

    TYPES: ClassVar[tuple[str, ...]] = ("IotQueueListener", "IoTQueueListener")
    DEFAULT_CAP_RESOLUTION: ClassVar[float] = 20.0
    DEFAULT_PATH_FILTER: ClassVar[Any] = None

    def __init__(self, node: NodeApi, pipeline: str, config: dict[str, Any]) -> None:
        super().__init__(node, pipeline, config)
        self._unsubscribe: list[Callable[[], None]] = []
        self.received = 0
        self.rejected = 0
        meta = config.get("STREAM_CONFIG_METADATA")
        self._meta: dict[str, Any] = meta if isinstance(meta, dict) else {}

    def _setting(self, key: str) -> Any:
        value = self.config.get(key, self._meta.get(key))
        return None if value == "#DEFAULT" else value

    def topics(self) -> list[str]:
        """Topics this listener subscribes to."""
        topic = self._setting("TOPIC")
        if isinstance(topic, str) and topic:
            return [topic]
        root = self._profile_root()
        return [f"{root}/payloads", f"{root}/{self.node.address}/payloads"]

    def _profile_root(self) -> str:
        profile = getattr(self.node, "profile", None)
        return str(getattr(profile, "root", "lummetry"))

    def start(self) -> None:
        """Subscribe on the node's transport."""
        ignored = {k: self._setting(k) for k in _CONNECTION_KEYS if self._setting(k) is not None}
        if ignored:
            log.info("%s on %s: connection settings %s ignored; listening on the node's own network",
                     self.pipeline, self.node.alias, sorted(ignored))
        for topic in self.topics():
            self._unsubscribe.append(self.node.subscribe(topic, self._on_message))

    def stop(self) -> None:
        """Unsubscribe."""
        for cancel in self._unsubscribe:
            cancel()
        self._unsubscribe.clear()
        self._buffer.clear()

    def _decode(self, body: bytes) -> dict[str, Any] | None:
        cache = getattr(self.node, "receive_cache", None)
        if cache is None:
            return None
        received: Received = cache.message(body)
        if received.message is None or (received.signed and received.sender is None):
            self.rejected += 1
            return None
        message = received.message
        if message.get("EE_IS_ENCRYPTED") is True:
            decrypt = getattr(self.node, "decrypt_message", None)
            if decrypt is not None:
                try:
                    clear: dict[str, Any] = dict(decrypt(message, received.sender))
                    return clear
                except Pye2Error as exc:
                    log.debug("%s: encrypted payload not for this node (%s)", self.pipeline, exc)
        return message

    def _on_message(self, topic: str, body: bytes) -> None:
        message = self._decode(body)
        if message is None:
            return
        path_filter = self.config.get("PATH_FILTER", self.DEFAULT_PATH_FILTER)
        if not path_matches(path_filter, message.get("EE_PAYLOAD_PATH")):
            return
        if not message_matches(self.config.get("MESSAGE_FILTER"), message):
            return
        if self._setting("FILTER_BY_DESTINATION"):
            dest = message.get("EE_DEST")
            dests = dest if isinstance(dest, list) else [dest]
            own = self.node.address.split("_", 1)[-1]
            if not any(isinstance(d, str) and d.split("_", 1)[-1] == own for d in dests):
                return
        self.received += 1
        # Shared with other nodes (cache): the runtime hands plugins a copy when they consume it.
        self.push(InputItem("STRUCT_DATA", struct_data=message, metadata={}))


class NetworkListener(IotQueueListener):
    """The admin pipeline's listener: payloads of the admin plugins only (by default)."""

    TYPES: ClassVar[tuple[str, ...]] = ("NetworkListener",)
    DEFAULT_PATH_FILTER: ClassVar[Any] = ADMIN_PATH_FILTER
