"""Turn pika's exceptions into pye2's: the only place that knows pika's error types.

The pika exception is kept as ``__cause__``; messages name the broker by its safe URL
(password masked) and never include credentials.
"""

from __future__ import annotations

from pika import exceptions as pex
from pika.adapters.utils import connection_workflow as wf

from pye2.errors import TransportConnectError, TransportError

__all__ = ["describe", "translate"]


def describe(exc: BaseException) -> str:
    """A short human reason for a pika (or socket) exception."""
    if isinstance(exc, pex.ProbableAuthenticationError):
        return "login refused by the broker (check username and password)"
    if isinstance(exc, pex.ProbableAccessDeniedError):
        return "access to the vhost refused (check the vhost name and the user's permissions)"
    if isinstance(exc, (pex.ConnectionClosed, pex.ChannelClosed)):
        return f"closed with ({exc.reply_code}) {exc.reply_text}"
    if isinstance(exc, pex.AMQPHeartbeatTimeout):
        return "no heartbeat from the broker"
    if isinstance(exc, pex.ConnectionBlockedTimeout):
        return "the broker kept the connection blocked (resource alarm) for too long"
    if isinstance(exc, pex.StreamLostError):
        return f"connection lost ({exc.args[0] if exc.args else 'EOF'})"
    if isinstance(exc, wf.AMQPConnectionWorkflowFailed):
        inner = exc.exceptions[-1] if exc.exceptions else None
        return describe(inner) if inner is not None else "connection attempt failed"
    if isinstance(exc, wf.AMQPConnectorPhaseErrorBase):
        return describe(exc.exception)
    if isinstance(exc, wf.AMQPConnectorStackTimeout):
        return "timed out while connecting"
    if isinstance(exc, pex.AMQPConnectionError) and exc.args and isinstance(exc.args[0], BaseException):
        return describe(exc.args[0])
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def translate(exc: BaseException | None, where: str, *, connecting: bool = False) -> TransportError:
    """Wrap ``exc`` in ``TransportConnectError`` (while connecting) or ``TransportError``."""
    cls = TransportConnectError if connecting else TransportError
    reason = describe(exc) if exc is not None else "unknown reason"
    error = cls(f"AMQP {where}: {reason}")
    error.__cause__ = exc
    return error
