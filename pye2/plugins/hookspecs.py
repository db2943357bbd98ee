"""Hook specifications of the ``pye2`` plugin group.

A plugin is a module (or object) with functions decorated by
:data:`hookimpl`, published under the ``pye2`` entry-point group::

    [project.entry-points.pye2]
    mytransport = "my_package.plugin"

Every hook receives a ``register`` callable. Plugins call it once per thing
they provide; names are case-insensitive and must be unique across all
plugins (a clash raises :class:`pye2.errors.PluginConflictError`).
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

__all__ = ["PROJECT", "Register", "hookimpl", "hookspec"]

PROJECT = "pye2"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """``register(name, factory, *, requires=(), extra=None)``.

    ``requires`` lists importable module names the factory needs; if one is
    missing, using the plugin raises an ``ExtraMissing`` error that names
    ``pip install 'pye2[<extra>]'`` (or the modules, when ``extra`` is None).
    """

    def __call__(
        self, name: str, factory: Any, *, requires: tuple[str, ...] = (), extra: str | None = None
    ) -> None: ...


@hookspec
def pye2_register_transports(register: Register) -> None:
    """Register transport factories by URL scheme.

    ``factory(url: str, **options) -> Transport`` must not touch the network
    (that happens in ``connect()``) and should import its driver lazily.
    """


@hookspec
def pye2_register_serializers(register: Register) -> None:
    """Register serializers by name: ``factory() -> Serializer``."""


@hookspec
def pye2_register_signers(register: Register) -> None:
    """Register signer backends by name: ``factory() -> SignerFactory``."""


@hookspec
def pye2_register_formatters(register: Register) -> None:
    """Register payload formatters by name: ``factory() -> Formatter``."""


@hookspec
def pye2_register_commands(register: Register) -> None:
    """Register ``pye2`` command-line subcommands by name.

    ``factory()`` returns ``(help, add_arguments, run)``: ``add_arguments(parser)``
    fills an ``argparse`` sub-parser and ``run(args) -> int`` executes it. This
    is how the simulator adds ``pye2 sim`` and ``pye2 demo`` without the core
    importing it.
    """
