"""The network commands of ``pye2``: nodes, pipelines, archive, watch, exec, doctor.

Each lives in a module of its own with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> exit code``; :func:`add_network_commands` adds them to the ``pye2``
parser. They share the connection options of :mod:`pye2.cli_net._options`
(broker, profile, root topic, identity; from the environment and ``.env`` too),
print text or JSON lines (:mod:`pye2.cli_net._output`) and fail with one
``error: ...`` line and a non-zero exit code (:func:`pye2.cli_net._common.command`).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["COMMANDS", "add_network_commands"]

#: subcommand -> module (under pye2.cli_net)
COMMANDS = {
    "nodes": "nodes",
    "pipelines": "pipelines",
    "archive": "archive",
    "watch": "watch",
    "exec": "exec_code",
    "doctor": "doctor",
}


def add_network_commands(commands: Any) -> None:
    """Add the network subcommands to ``commands`` (an argparse subparsers object)."""
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"pye2.cli_net.{module_name}")
        sub = commands.add_parser(name, help=module.HELP, description=(module.__doc__ or "").split("\n\n")[0])
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
