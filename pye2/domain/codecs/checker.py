"""The safety checker nodes run on custom code before executing it.

AST based, as in ratio1 and naeural-core (protocol.md section 10, node.md
section 7). The verdict is a dict ``{error text: [line numbers]}``, empty
when the code is acceptable. Error texts, their trailing spaces, the order of
the keys and of the line numbers (one entry per occurrence, in the order a
depth-first walk of the tree meets them) are those of the nodes, so the map
can be compared with what a node reports in ``EXEC_ERRORS``.

Rules: every ``import`` / ``from ... import`` is refused unless the module is
in ``safe_imports`` (or below one of them); some builtins may not be used as
names and some attributes may not be read or written. Text inside string
literals is never flagged. Code that does not parse yields the single entry
``{"Unable to parse code <reason>": [0]}``.
"""

from __future__ import annotations

import ast
from collections.abc import Collection

__all__ = ["FORBIDDEN_ATTRIBUTES", "FORBIDDEN_NAMES", "check_code"]

#: Names that may not appear as a variable, with the node's error text.
FORBIDDEN_NAMES: dict[str, str] = {
    "globals": "Global vars access is not allowed in plugin code ",
    "__builtins__": "__builtins__ access is not allowed in plugin code ",
    "locals": "Local vars dict access is not allowed in plugin code ",
    "memoryview": "Pointer handling is unsafe in plugin code ",
    "vars": "Usage of `vars(obj)` is not allowed in plugin code ",
    "dir": "Usage of `dir(obj)` is not allowed in plugin code ",
    "exec": "Usage of `exec()` is not allowed in plugin code ",
    "eval": "Usage of `eval()` is not allowed in plugin code ",
    "getattr": "Usage of `getattr()` is not allowed in plugin code ",
    "open": "Usage of `open()` is not allowed in plugin code ",
}

#: Attribute names that may not be accessed on any object, with the node's error text.
FORBIDDEN_ATTRIBUTES: dict[str, str] = {
    "log": "Logger object cannot be used directly in plugin code - please use API ",
    "global_shmem": "Usage of `global_shmem` is not allowed in plugin code ",
    "plugins_shmem": "Usage of `plugins_shmem` is not allowed in plugin code ",
    "config_data": "Usage of `config_data` is not allowed in plugin code ",
    "_default_config": "Usage of `_default_config` is not allowed in plugin code ",
    "__traceback__": "Usage of `__traceback__` as an attribute is not allowed in plugin code ",
    "_upstream_config": "Usage of `_upstream_config` is not allowed in plugin code ",
}


def _import_error(module: str | None) -> str:
    # A relative ``from . import x`` has no module; the node prints it as None.
    return f"Import forbidden for {module} "


class _Visitor(ast.NodeVisitor):
    def __init__(self, safe_imports: Collection[str]) -> None:
        self.safe = tuple(safe_imports)
        self.errors: dict[str, list[int]] = {}

    def _add(self, node: ast.stmt | ast.expr, text: str) -> None:
        self.errors.setdefault(text, []).append(node.lineno)

    def _is_safe(self, module: str | None) -> bool:
        if module is None:
            return False
        return any(module == safe or module.startswith(safe + ".") for safe in self.safe)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._is_safe(alias.name):
                self._add(node, _import_error(alias.name))
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not self._is_safe(node.module):
            self._add(node, _import_error(node.module))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        text = FORBIDDEN_ATTRIBUTES.get(node.attr)
        if text is not None:
            self._add(node, text)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        text = FORBIDDEN_NAMES.get(node.id)
        if text is not None:
            self._add(node, text)
        self.generic_visit(node)


def check_code(code: str, safe_imports: Collection[str] = ()) -> dict[str, list[int]]:
    """Check custom code the way a node does; an empty dict means accepted.

    Args:
        code: the Python source (not base64).
        safe_imports: module names whose import (and submodules) is allowed.

    Returns:
        ``{error text: [line numbers]}``; a parse failure is reported as
        ``{"Unable to parse code <reason>": [0]}``. Never raises for bad code.
    """
    if isinstance(safe_imports, str):
        safe_imports = (safe_imports,)
    visitor = _Visitor(safe_imports)
    try:
        # type_comments=True: nodes parse that way, and it changes what is a syntax error.
        tree = ast.parse(code, type_comments=True)
        visitor.visit(tree)
    except Exception as exc:  # noqa: BLE001 - the node reports any failure (SyntaxError, ValueError, RecursionError...) the same way
        return {f"Unable to parse code {exc}": [0]}
    return visitor.errors
