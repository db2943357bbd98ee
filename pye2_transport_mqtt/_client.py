"""Everything that knows paho's API shape: building, configuring and stopping a client.

Kept apart from the transport's state machine so the one place that imports
paho names is small. Raises pye2 errors only.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from pye2.errors import TransportConnectError, TransportError, TransportUnavailable

from .config import MqttConfig

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise TransportUnavailable("mqtt needs paho-mqtt: pip install 'pye2[mqtt]'") from exc

__all__ = [
    "MQTTErrorCode",
    "Properties",
    "ReasonCode",
    "barrier",
    "build_client",
    "connect_args",
    "loop_thread_name",
    "mqtt",
    "stop_loop",
    "subscribe",
]

log = logging.getLogger(__name__)

_Client = TypeVar("_Client", bound=mqtt.Client)

#: Never subscribed: unsubscribing from it is a harmless round trip (``$`` keeps it apart from user topics).
BARRIER_FILTER = "$pye2/barrier"


class _PahoDebugLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """paho's own log lines, all at DEBUG.

    paho logs a failed reconnect attempt as an error ("Client is not connected") each
    time; the transport already reports losses, attempts and give-ups at the right level.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves __init__ unannotated


def loop_thread_name(config: MqttConfig) -> str:
    """The name paho 2.x gives the network thread started by ``loop_start()``."""
    return f"paho-mqtt-client-{config.client_id}"


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    """The TLS context for ``mqtts``: system CAs or ``ca_file``, optional client certificate.

    Raises:
        TransportConnectError: a file is missing or not valid PEM.
    """
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ValueError) as exc:  # missing file, bad PEM (ssl.SSLError is an OSError)
        raise TransportConnectError(f"cannot load TLS files for {config.safe_url}: {exc}") from exc
    if config.tls_insecure:
        log.warning("TLS certificate and host name checks are OFF for %s (tls_insecure)", config.safe_url)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_client(config: MqttConfig, callbacks: dict[str, Callable[..., None]],
                 factory: Callable[..., _Client]) -> _Client:
    """A configured paho client (callback API 2) with ``callbacks`` (``on_connect`` ...) set.

    ``factory`` makes it: ``mqtt.Client`` or a subclass, called like it.

    Raises:
        TransportConnectError: paho or TLS setup failed.
    """
    try:
        if config.protocol == "5":
            client = factory(CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=mqtt.MQTTv5)
        else:
            client = factory(CallbackAPIVersion.VERSION2, client_id=config.client_id,
                             clean_session=config.clean_session, protocol=mqtt.MQTTv311)
        client.suppress_exceptions = True  # our callbacks catch everything; belt and braces
        client.enable_logger(_PahoDebugLog(logging.getLogger(__name__ + ".paho")))  # type: ignore[arg-type]
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        client.connect_timeout = config.connect_timeout
        # Our outbox keeps paho below this anyway; paho's own queue stays unbounded.
        client.max_inflight_messages_set(config.max_inflight)
        if config.tls:
            client.tls_set_context(tls_context(config))
            client.tls_insecure_set(config.tls_insecure)
        for name, callback in callbacks.items():
            setattr(client, name, callback)
    except TransportError:
        raise
    except Exception as exc:
        raise TransportConnectError(f"cannot set up the MQTT client for {config.safe_url}: {exc}") from exc
    return client


def connect_args(config: MqttConfig) -> dict[str, Any]:
    """Extra keyword arguments of ``Client.connect`` (MQTT 5 clean start and session expiry)."""
    if config.protocol != "5":
        return {}
    args: dict[str, Any] = {"clean_start": config.clean_session}
    if config.session_expiry:
        props = _properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = config.session_expiry
        args["properties"] = props
    return args


def subscribe(client: mqtt.Client, config: MqttConfig, topic_filter: str, qos: int,
              sub_id: int | None) -> int | None:
    """Send SUBSCRIBE; return its message id, or None when paho has no socket.

    Raises:
        TransportError: paho refused the call.
    """
    try:
        if config.protocol == "5":
            props = _properties(PacketTypes.SUBSCRIBE)
            if sub_id is not None:
                props.SubscriptionIdentifier = sub_id
            rc, mid = client.subscribe(topic_filter, options=SubscribeOptions(qos=qos), properties=props)
        else:
            rc, mid = client.subscribe(topic_filter, qos=qos)
    except Exception as exc:
        raise TransportError(f"cannot subscribe to {topic_filter!r}: {exc}") from exc
    if rc == MQTTErrorCode.MQTT_ERR_NO_CONN or mid is None:
        return None
    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise TransportError(f"cannot subscribe to {topic_filter!r}: {mqtt.error_string(rc)}")
    return mid


def barrier(client: mqtt.Client) -> int | None:
    """Send an UNSUBSCRIBE of a filter nobody uses; its UNSUBACK marks a point in the stream.

    Everything the broker routed to this session before it handled the packet is sent
    before the acknowledgement. Returns the message id, or None when paho has no socket.

    Raises:
        TransportError: paho refused the call.
    """
    try:
        rc, mid = client.unsubscribe(BARRIER_FILTER)
    except Exception as exc:
        raise TransportError(f"cannot send an MQTT barrier: {exc}") from exc
    if rc == MQTTErrorCode.MQTT_ERR_NO_CONN or mid is None:
        return None
    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise TransportError(f"cannot send an MQTT barrier: {mqtt.error_string(rc)}")
    return mid


def stop_loop(client: mqtt.Client) -> None:
    """Stop paho's network thread (from that thread itself: only ask it to end)."""
    try:
        client.loop_stop()
    except AttributeError:
        # paho reads its thread attribute twice; if the thread ends in between it calls
        # join() on None. The thread is gone then, which is all we wanted.
        pass


def disconnect_quietly(client: mqtt.Client) -> None:
    """Send DISCONNECT if there is a socket; errors only matter for logs."""
    try:
        client.disconnect()
    except Exception as exc:  # noqa: BLE001 - a half-open socket: stopping the loop is what matters
        log.debug("disconnect failed: %s", exc)
