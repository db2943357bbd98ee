"""pye2-example-tcp: a third-party pye2 transport over plain TCP (an example to copy).

* :mod:`pye2_example_tcp.plugin` registers the ``tcpbus`` URL scheme with pye2.
* :mod:`pye2_example_tcp.transport` is the client, ``TcpBusTransport``.
* :mod:`pye2_example_tcp.broker` is the broker (``python -m pye2_example_tcp.broker``).
* :mod:`pye2_example_tcp.protocol` is the wire format both share.

This module imports nothing on purpose: pye2 imports the package whenever it
loads plugins, and that must stay cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
