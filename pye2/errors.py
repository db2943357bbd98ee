"""The one exception tree of pye2.

Every error pye2 raises is a :class:`Pye2Error`. Where an error has an obvious
built-in meaning it also inherits that built-in, so ``except ValueError`` keeps
working for callers who do not know pye2's tree::

    Pye2Error
    ├── ConfigError (ValueError)            bad argument, URL, profile or setting
    ├── PluginError
    │   ├── PluginConflictError             two plugins claim one name
    │   ├── PluginNotFound (LookupError)    no plugin registered under that name
    │   └── ExtraMissing (ImportError)      an optional dependency is not installed
    │       ├── TransportUnavailable
    │       └── SerializerUnavailable
    ├── DecodeError (ValueError)            bytes/JSON/base64/zlib that do not decode
    │   └── DecompressionBomb               inflating would exceed the size cap
    ├── SignatureInvalid (ValueError)       missing, malformed or wrong signature
    ├── CryptoError (ValueError)            encryption or decryption failed
    ├── IdentityError                       key file cannot be read, written or parsed
    ├── CodeCheckError (ValueError)         custom code refused by the checker (``.errors``)
    ├── CommandError                        a command could not be built or was refused
    │   ├── CommandFailed                   the node answered with a failure code
    │   │   └── NotAllowed                  the node does not allow-list this session
    │   └── CommandTimeout (TimeoutError)   no answer before the deadline
    ├── NodeOffline (LookupError)           the node is not (or no longer) online
    ├── AmbiguousNode (LookupError)         a node name claimed by several addresses, none pinned
    ├── PipelineNotFound (LookupError)      the pipeline is not known
    └── TransportError (ConnectionError)
        ├── TransportConnectError           could not connect within the timeout
        ├── TransportClosed                 used after close()
        ├── MessageTooLarge (ValueError)    body above the transport's maximum
        └── QueueFull                       a bounded queue refused an item
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "AmbiguousNode",
    "CodeCheckError",
    "CommandError",
    "CommandFailed",
    "CommandTimeout",
    "ConfigError",
    "CryptoError",
    "DecodeError",
    "DecompressionBomb",
    "ExtraMissing",
    "IdentityError",
    "MessageTooLarge",
    "NodeOffline",
    "NotAllowed",
    "PipelineNotFound",
    "PluginConflictError",
    "PluginError",
    "PluginNotFound",
    "Pye2Error",
    "QueueFull",
    "SerializerUnavailable",
    "SignatureInvalid",
    "TransportClosed",
    "TransportConnectError",
    "TransportError",
    "TransportUnavailable",
]


class Pye2Error(Exception):
    """Root of every error raised by pye2."""


class ConfigError(Pye2Error, ValueError):
    """A setting, argument, URL or profile is invalid."""


class PluginError(Pye2Error):
    """Something went wrong while finding or loading a plugin."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name; the message names both."""


class PluginNotFound(PluginError, LookupError):
    """No plugin is registered under the requested name."""


class ExtraMissing(PluginError, ImportError):
    """An optional dependency is missing; the message names the pip command."""


class TransportUnavailable(ExtraMissing):
    """A transport's driver (paho-mqtt, pika, ...) is not installed."""


class SerializerUnavailable(ExtraMissing):
    """A serializer's library (msgpack, ...) is not installed."""


class DecodeError(Pye2Error, ValueError):
    """Input could not be decoded (JSON, base64, zlib, UTF-8, shape)."""


class DecompressionBomb(DecodeError):
    """Inflating the data would exceed the configured size cap."""


class SignatureInvalid(Pye2Error, ValueError):
    """A message's signature is missing, malformed or does not verify.

    ``reason`` says which of these it is.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CryptoError(Pye2Error, ValueError):
    """Encryption or decryption failed (wrong receiver, tampered data...)."""


class IdentityError(Pye2Error):
    """A key could not be generated, parsed, loaded or saved."""


class CodeCheckError(Pye2Error, ValueError):
    """Custom code was refused by the safety checker.

    ``errors`` maps each error text to the line numbers where it occurs.
    """

    def __init__(self, errors: Mapping[str, Sequence[int]]) -> None:
        self.errors: dict[str, list[int]] = {k: list(v) for k, v in errors.items()}
        detail = "; ".join(f"{msg.strip()} (line {', '.join(map(str, lines))})" for msg, lines in self.errors.items())
        super().__init__(f"custom code refused by the checker: {detail}")


class CommandError(Pye2Error):
    """A command could not be built, sent, or was refused."""


class CommandFailed(CommandError):
    """The node answered a command with a failure notification.

    ``code`` and ``node_text`` are the node's ``NOTIFICATION_CODE`` and words, when it answered.
    """

    def __init__(self, message: str, *, code: int | None = None, node_text: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.node_text = node_text


class NotAllowed(CommandFailed):
    """The node's heartbeat says it is ``SECURED`` and does not list this session's address.

    A real node ignores such commands without a word; ``address`` is the
    session's address, which the node's operator adds to the node's
    ``authorized_addrs`` (``pye2 sim``: ``--allow ADDRESS``).
    """

    def __init__(self, message: str, *, node: str | None = None, address: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.address = address


class CommandTimeout(CommandError, TimeoutError):
    """No confirmation arrived before the deadline."""


class NodeOffline(Pye2Error, LookupError):
    """The node is not online (no message within the online timeout)."""


class AmbiguousNode(Pye2Error, LookupError):
    """A node name that several addresses claim, and that the user has not pinned.

    ``name`` is the name asked for, ``addresses`` every address that claimed it
    (the bound one first). Pass an address instead, or pin the right one
    (``Session(trusted_nodes={name: address})`` / ``session.pin_node``).
    """

    def __init__(self, name: str, addresses: Sequence[str]) -> None:
        self.name = name
        self.addresses = list(addresses)
        super().__init__(f"node name {name!r} is claimed by {len(self.addresses)} addresses "
                         f"({', '.join(self.addresses)}); pass the address, or pin one with "
                         f"trusted_nodes={{name: address}} / session.pin_node(name, address)")


class PipelineNotFound(Pye2Error, LookupError):
    """The pipeline is not known on that node."""


class TransportError(Pye2Error, ConnectionError):
    """A transport failed; the driver's own exception is chained as ``__cause__``."""


class TransportConnectError(TransportError):
    """The transport could not connect to its broker within the timeout."""


class TransportClosed(TransportError):
    """The transport was used after ``close()``."""


class MessageTooLarge(TransportError, ValueError):
    """The message body is larger than the transport accepts."""


class QueueFull(TransportError):
    """A bounded queue refused an item (see the owner's overflow policy)."""
