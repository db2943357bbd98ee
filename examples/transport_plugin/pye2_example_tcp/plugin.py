"""How pye2 finds this transport: a pluggy hook published under the ``pye2`` entry-point group.

``pyproject.toml`` names this module::

    [project.entry-points.pye2]
    tcp = "pye2_example_tcp.plugin"

pye2's :class:`~pye2.plugins.PluginHost` imports it on ``load()`` and calls the
hook below. Keep this module light: it is imported whenever anyone lists
pye2's plugins, so it must not import the transport (nor its driver, if it had
one). The factory imports it on first use.
"""

from __future__ import annotations

from typing import Any

from pye2.plugins import hookimpl
from pye2.plugins.hookspecs import Register
from pye2.ports.transport import Transport

__all__ = ["make_transport", "pye2_register_transports"]


def make_transport(url: str, **options: Any) -> Transport:
    """The factory pye2 calls for ``tcpbus://...`` URLs: an unconnected transport."""
    from pye2_example_tcp.transport import TcpBusTransport  # lazy: only when someone asks for tcpbus

    return TcpBusTransport.from_url(url, **options)


@hookimpl
def pye2_register_transports(register: Register) -> None:
    """Register the ``tcpbus`` URL scheme.

    A transport needing a third-party driver would say so, for a helpful error
    when it is missing: ``register("tcpbus", make_transport, requires=("somedriver",))``.
    """
    register("tcpbus", make_transport)
