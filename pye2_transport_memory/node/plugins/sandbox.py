"""Containment for custom code on a simulated node (stricter than a real node).

A simulator runs on developer laptops and CI machines attached to shared
brokers, in the same process as the nodes' keys, so custom code gets less
than a real node gives it. After the nodes' own checker
(:mod:`pye2.domain.codecs.checker`, whose texts stay those of the nodes) has
accepted the code, :func:`check_sandbox` refuses, reported in ``EXEC_ERRORS``
as ``{text: [lines]}``:

* any dunder name, argument or definition (``__import__``, ``__class__``,
  ``__builtins__``...; ``def __init__`` in a class body and
  ``super().__init__`` excepted);
* any attribute starting with ``_`` (so every dunder attribute), frame, code,
  traceback and generator attributes (``f_*``, ``co_*``, ``tb_*``, ``gi_*``,
  ``cr_*``, ``ag_*``), ``obj`` (an ``AttributeError`` holds the object it
  was raised for there), ``mro``, ``format_map``, and numpy's ``tofile``,
  ``dump``, ``ctypes``, ``ctypeslib`` and ``cffi``; the same for ``match``
  class patterns;
* the builtins ``compile``, ``breakpoint``, ``input``, ``help``, ``exit``,
  ``quit``, ``setattr``, ``delattr``, ``hasattr`` and the ``site`` helpers;
* metaclasses (``class A(metaclass=...)`` or ``**`` in a class header).

:func:`harden` then rewrites the accepted tree, and the code runs with
:meth:`Sandbox.run`:

* a step is counted at the start of every loop iteration, function call,
  lambda call and comprehension item (and every ``plugin`` API call); past
  ``max_steps`` steps or ``max_seconds`` of wall time :class:`BudgetExceeded`
  (a ``BaseException``) is raised, and again at every later step, so
  ``except:`` cannot keep the code going. Counting steps rather than tracing
  lines keeps runs deterministic on the virtual clock and leaves
  ``sys.settrace`` to debuggers and coverage;
* builtins are a curated dict: no ``open``, ``eval``, ``exec``, ``compile``,
  ``getattr`` family, ``globals``/``vars``/``locals``/``dir``,
  ``memoryview``, ``breakpoint``, ``input``, ``help``, ``exit``,
  ``KeyboardInterrupt``; ``type`` and ``id`` raise (one-argument ``type``
  leads to ``type`` itself, whose three-argument form builds classes with
  dunder methods); ``range``, ``iter``, ``pow`` and ``format`` are bounded;
  ``__import__`` (the code cannot name it) gives an ``import`` statement of
  the code only allow-listed modules (none: a node refuses every import) and
  lets through the imports libraries make while the code calls them (numpy's
  lazy imports, ``datetime.strptime``: C code imports through the builtins
  of the running frame); the modules go to the library, not to the code;
* ``a * n``, ``a ** n`` and ``a << n`` (and their augmented forms) refuse
  results over ``max_items`` items or ``max_int_bits`` bits before computing
  them; on Linux the address space may grow by at most ``max_memory`` bytes
  while the code runs (``RLIMIT_AS``; the soft limit is restored afterwards),
  so other allocations fail with ``MemoryError`` instead of exhausting the
  machine;
* ``x.format`` on strings goes through a formatter that refuses the same
  attributes in replacement fields (``"{0.__class__}"``) and huge widths;
* attributes can only be set or deleted on objects the code made itself
  (instances, classes and functions of the code) and on ``plugin``, so code
  cannot change shared classes or modules (``json.JSONDecodeError``, numpy's
  classes...) that the node and other nodes use (``ndarray.shape = ...`` is
  refused too: use ``reshape``);
* :func:`plain_data` turns a result into plain JSON data before the node sees
  it, so node code never calls methods of the code's classes.

Not bounded: long single calls into C (a catastrophic regular expression, a
huge numpy computation, ``sorted`` of a very long list) run to their end;
memory outside Linux is bounded only by the size guards above (``s += s`` in
a loop, ``str.ljust``, ``"%*d"`` or f-string widths are not guarded there);
on Linux other threads of the process share the memory window while custom
code runs; a budget is per execution, so a periodic instance that always
runs out costs up to ``max_seconds`` of CPU per run (then the node backs it
off 10 s, as for any failing code); commands and log lines the code sends
within its budget are not limited here.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from pye2_transport_memory.node.plugins._budget import (
    MODULE,
    Budget,
    BudgetExceeded,
    SandboxError,
    SandboxLimits,
    memory_window,
    running,
    tick,
)
from pye2_transport_memory.node.plugins._guards import (
    REFUSED_ATTRIBUTES,
    WHERE,
    Attributes,
    Guarded,
    attribute_allowed,
    augmented,
    binop,
    format_attribute,
    make_builtins,
    plain_data,
)

__all__ = [
    "MODULE",
    "REFUSED_ATTRIBUTES",
    "REFUSED_NAMES",
    "BudgetExceeded",
    "Guarded",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "attribute_allowed",
    "check_sandbox",
    "harden",
    "plain_data",
    "tick",
]

_DUNDER = re.compile(r"^__.+__$")
#: builtins a real node lets through that a simulated node refuses by name
REFUSED_NAMES = frozenset({
    "compile", "breakpoint", "input", "help", "exit", "quit", "setattr", "delattr", "hasattr",
    "copyright", "credits", "license",
})


# -- the check ------------------------------------------------------------------------------------
def _is_super_init(node: ast.Attribute) -> bool:
    value = node.value
    return (node.attr == "__init__" and isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "super")


class _Checker(ast.NodeVisitor):
    def __init__(self, methods: set[int], bound: set[str]) -> None:
        self.methods = methods  # ids of the defs directly in a class body
        self.bound = bound  # names the code assigns, defines or takes as arguments
        self.errors: dict[str, list[int]] = {}

    def _add(self, node: Any, text: str) -> None:
        self.errors.setdefault(text, []).append(getattr(node, "lineno", 0))

    def _name(self, node: Any, name: str | None) -> None:
        if name is not None and _DUNDER.match(name):
            self._add(node, f"Usage of `{name}` is not allowed {WHERE}")

    def _attribute(self, node: Any, name: str) -> None:
        if not attribute_allowed(name):
            self._add(node, f"Access to attribute `.{name}` is not allowed {WHERE}")

    def visit_Name(self, node: ast.Name) -> None:
        # a refused builtin is only reported where it is read and the code never binds the name itself
        if node.id in REFUSED_NAMES and isinstance(node.ctx, ast.Load) and node.id not in self.bound:
            self._add(node, f"Usage of `{node.id}` is not allowed {WHERE}")
        self._name(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not _is_super_init(node):
            self._attribute(node, node.attr)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._name(node, node.arg)
        self.generic_visit(node)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        allowed = node.name == "__init__" and id(node) in self.methods
        if _DUNDER.match(node.name) and not allowed:
            self._add(node, f"Definition of `{node.name}` is not allowed {WHERE}")
        self.generic_visit(node)

    visit_FunctionDef = _definition
    visit_AsyncFunctionDef = _definition

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(kw.arg is None or kw.arg == "metaclass" for kw in node.keywords):
            self._add(node, f"Metaclasses are not allowed {WHERE}")
        self._definition(node)

    def _names(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            self._name(node, name)

    visit_Global = _names
    visit_Nonlocal = _names

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._name(node, node.name)
        self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> None:
        self._name(node, node.asname)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._name(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._name(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._name(node, node.rest)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for name in node.kwd_attrs:  # ``case C(attr=x)`` reads ``subject.attr``
            self._attribute(node, name)
        self.generic_visit(node)


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
    return bound


def check_sandbox(source: str) -> dict[str, list[int]]:
    """The simulator's rules on top of the node's checker; an empty dict means accepted.

    Run it on code the node's checker accepted. Never raises for bad code.
    """
    try:
        tree = ast.parse(source, type_comments=True)
    except Exception as exc:  # noqa: BLE001 - reported as the node's checker does
        return {f"Unable to parse code {exc}": [0]}
    methods = {id(stmt) for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for stmt in cls.body}
    checker = _Checker(methods, _bound_names(tree))
    checker.visit(tree)
    return checker.errors


# -- the rewrite ----------------------------------------------------------------------------------
_TICK = "__sb_tick__"
_ATTRS = "__sb_attrs__"
_FORMAT = "__sb_format__"
_BINOP = "__sb_binop__"
_AUG = "__sb_aug__"
_SLICE = "__sb_slice__"
_GUARDED_OPS: dict[type[ast.operator], str] = {ast.Mult: "mul", ast.Pow: "pow", ast.LShift: "lshift"}


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _as_expr(node: ast.expr) -> ast.expr:
    """A subscript's index as an expression (``a[1:2]`` -> ``slice(1, 2, None)``)."""
    if isinstance(node, ast.Slice):
        none = ast.Constant(value=None)
        return _call(_SLICE, node.lower or none, node.upper or none, node.step or none)
    if isinstance(node, ast.Tuple):
        return ast.Tuple(elts=[_as_expr(e) for e in node.elts], ctx=ast.Load())
    return node


class _Harden(ast.NodeTransformer):
    def _tick(self, at: ast.AST) -> ast.stmt:
        return ast.copy_location(ast.Expr(value=_call(_TICK)), at)

    def _counted(self, node: Any) -> Any:
        self.generic_visit(node)
        node.body.insert(0, self._tick(node.body[0]))
        return node

    visit_For = _counted
    visit_AsyncFor = _counted
    visit_While = _counted
    visit_FunctionDef = _counted
    visit_AsyncFunctionDef = _counted

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self.generic_visit(node)
        node.body = ast.BoolOp(op=ast.And(), values=[_call(_TICK), node.body])  # tick() is True
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.ifs.insert(0, _call(_TICK))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = _GUARDED_OPS.get(type(node.op))
        if op is None:
            return node
        return ast.copy_location(_call(_BINOP, node.left, node.right, ast.Constant(value=op)), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)  # an attribute target is now ``__sb_attrs__(obj)[name]``
        op = _GUARDED_OPS.get(type(node.op))
        if op is None:
            return node
        target = node.target
        if isinstance(target, ast.Name):
            value = _call(_BINOP, ast.Name(id=target.id, ctx=ast.Load()), node.value, ast.Constant(value="i" + op))
            return ast.copy_location(ast.Assign(targets=[target], value=value), node)
        if isinstance(target, ast.Subscript):
            call = _call(_AUG, target.value, _as_expr(target.slice), node.value, ast.Constant(value="i" + op))
            return ast.copy_location(ast.Expr(value=call), node)
        return node  # pragma: no cover - augmented targets are names, subscripts or attributes

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            proxy = _call(_ATTRS, node.value)
            return ast.copy_location(ast.Subscript(value=proxy, slice=ast.Constant(value=node.attr), ctx=node.ctx),
                                     node)
        if node.attr == "format":
            return ast.copy_location(_call(_FORMAT, node.value), node)
        return node


def harden(tree: ast.Module) -> ast.Module:
    """Rewrite a checked tree for :meth:`Sandbox.run` (steps, size guards, attribute writes, ``format``)."""
    hardened = _Harden().visit(tree)
    assert isinstance(hardened, ast.Module)
    return ast.fix_missing_locations(hardened)


# -- the runtime ----------------------------------------------------------------------------------
class Sandbox:
    """Runs hardened code objects of one plugin instance under :class:`SandboxLimits`."""

    def __init__(self, limits: SandboxLimits, log: Callable[[str], None],
                 allowed_modules: Mapping[str, object] | None = None) -> None:
        self.limits = limits
        self._log = log
        self._allowed = dict(allowed_modules or {})

    def _print(self) -> Callable[..., None]:
        log = self._log

        def print(*args: Any, sep: Any = " ", end: Any = "\n", **_: Any) -> None:
            tick()
            log(str(sep).join(str(a) for a in args))

        return print

    def namespace(self, plugin: object) -> dict[str, Any]:
        """A fresh global namespace holding ``plugin``, ``print`` and the rewrite's helpers."""
        print_ = self._print()
        return {
            "__builtins__": make_builtins(print_, self._allowed),
            "__name__": MODULE,
            "plugin": plugin,
            "print": print_,
            _TICK: tick,
            _ATTRS: Attributes,
            _FORMAT: format_attribute,
            _BINOP: binop,
            _AUG: augmented,
            _SLICE: slice,
        }

    def run(self, code: types.CodeType, namespace: dict[str, Any]) -> None:
        """``exec`` the code within the budget.

        Raises:
            BudgetExceeded: the code ran too long (also when it caught the stop).
            BaseException: whatever the code raised.
        """
        budget = Budget(self.limits)
        with running(budget), memory_window(self.limits.max_memory):
            exec(code, namespace)  # noqa: S102 - running client code is this plugin's job
        if budget.exceeded is not None:
            raise BudgetExceeded(f"{budget.exceeded} (the code caught the stop and went on)")
