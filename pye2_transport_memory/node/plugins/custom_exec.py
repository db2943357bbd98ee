"""``CUSTOM_EXEC_01`` and ``REST_CUSTOM_EXEC_01``: run client code on a simulated node.

As a real node does (node.md section 7): ``CODE`` is base64 of zlib-compressed
source; it is checked by the nodes' AST checker (violations are reported in
``EXEC_ERRORS`` as ``{text: [lines]}`` and the code is not run); a
cooperative ``plugin.sleep(0.001)`` is inserted after every loop header; code
with a top-level ``return`` is wrapped in a function whose return value
becomes the result; it runs with ``exec`` in a fresh namespace per call
holding ``plugin`` and a ``print`` that writes to the node log; the result is
the first of ``__result``, ``_result``, ``result`` found there.

Stricter than a real node (issue 12: a simulator shares a process, a laptop
or a CI machine with keys and brokers), see :mod:`.sandbox`: code the node's
checker accepts is checked again by :func:`~.sandbox.check_sandbox` (same
``{text: [lines]}`` report); it runs with curated builtins, under a step and
time budget (:class:`~.sandbox.SandboxLimits`, ``LIMITS`` of the plugin
class: subclass and register it to change them) and, on Linux, a memory
window; ``plugin`` is :func:`~.facade.plugin_facade` of the instance's
:class:`~.api.PluginApi`, never the node; results leave as plain data. Code
that runs past its budget is stopped and reported like any failing code.

Errors and the node (contract, duck-typed so the node needs no import from
here): when the code cannot be decoded, is refused by a checker, raises or
runs past its budget, ``process`` raises :class:`PluginProcessError`. Its
``payload`` (the ``EXEC_*`` body, keys already upper case) must be published
first, then the node sends its ``EXCEPTION`` notification
"Exception in <stream=...>" with ``info`` as ``INFO`` and backs the instance
off ``backoff`` seconds (10, as a real node). Any other exception from
``process`` has no payload.

The code runs inline on the node's timer (no helper thread); the budget, not
the code, decides when it ends (a real node has no timeout).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import importlib
import logging
import traceback
import types
from typing import Any, ClassVar

from pye2.errors import DecodeError, PluginError
from pye2_transport_memory.node.plugin_base import InputItem, PluginContext, SimPlugin
from pye2_transport_memory.node.plugins.api import PluginApi
from pye2_transport_memory.node.plugins.facade import plugin_facade
from pye2_transport_memory.node.plugins.sandbox import Sandbox, SandboxLimits, check_sandbox, harden, plain_data

__all__ = ["BAD_BASE64", "CustomExec01", "PluginProcessError", "RestCustomExec01", "prepare_code"]

logger = logging.getLogger(__name__)

BAD_BASE64 = "Provided ascii data is not a valid base64 object"
#: seconds a real node puts a failing custom-code instance to sleep
SLEEP_ON_ERRORS = 10.0
_RESULT_NAMES = ("__result", "_result", "result")
_WRAPPER = "__exec_code__"
#: bounds of the traceback reported for failing code (exceptions in a chain, characters)
_MAX_CHAIN = 3
_MAX_ERROR_CHARS = 20_000


class PluginProcessError(PluginError):
    """``process`` failed but has a payload to publish before the EXCEPTION notification.

    Attributes:
        payload: body to emit first (keys upper case), or None.
        info: text for the notification's ``INFO`` (code and traceback).
        backoff: seconds the node should wait before running the instance again.
    """

    def __init__(self, message: str, *, payload: dict[str, Any] | None, info: str,
                 backoff: float = SLEEP_ON_ERRORS) -> None:
        super().__init__(message)
        self.payload = payload
        self.info = info
        self.backoff = backoff


# -- code preparation ---------------------------------------------------------
def _codecs() -> tuple[Any, Any]:
    """``(base64_to_code, check_code)``: the wire facade when present, else the domain codecs."""
    try:
        wire = importlib.import_module("pye2.wire")
        return wire.base64_to_code, wire.check_code
    except (ImportError, AttributeError):
        from pye2.domain.codecs.checker import check_code
        from pye2.domain.codecs.code import base64_to_code

        return base64_to_code, check_code


def _has_top_level_return(tree: ast.Module) -> bool:
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a return in there belongs to that scope
        todo.extend(ast.iter_child_nodes(node))
    return False


class _LoopYield(ast.NodeTransformer):
    """Insert ``plugin.sleep(0.001)`` at the start of every loop body (node behaviour)."""

    def _tick(self, loop: ast.For | ast.While | ast.AsyncFor) -> ast.stmt:
        call = ast.Call(
            func=ast.Attribute(value=ast.Name(id="plugin", ctx=ast.Load()), attr="sleep", ctx=ast.Load()),
            args=[ast.Constant(value=0.001)], keywords=[],
        )
        stmt = ast.Expr(value=call)
        first = loop.body[0]
        return ast.copy_location(stmt, first)

    def _visit_loop(self, node: ast.For | ast.While | ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        node.body.insert(0, self._tick(node))
        return node

    visit_For = _visit_loop
    visit_While = _visit_loop
    visit_AsyncFor = _visit_loop


def prepare_code(source: str) -> Any:
    """Rewrite and compile checked source as a node does, then harden it; returns a code object.

    Line numbers are those of the client's source (the rewriting is done on
    the tree), so tracebacks point at the client's lines. The result is
    meant for :meth:`~.sandbox.Sandbox.run` (it calls the sandbox's helpers).

    Raises:
        DecodeError: the source does not compile (the checker normally
            catches this first).
    """
    try:
        tree = ast.parse(source, "<string>")
        tree = _LoopYield().visit(tree)
        if _has_top_level_return(tree):
            body = tree.body or [ast.Pass()]
            func = ast.FunctionDef(
                name=_WRAPPER,
                args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="plugin")], kwonlyargs=[], kw_defaults=[],
                                   defaults=[]),
                body=body, decorator_list=[], returns=None, type_comment=None,
            )
            call = ast.Assign(
                targets=[ast.Name(id="__result", ctx=ast.Store())],
                value=ast.Call(func=ast.Name(id=_WRAPPER, ctx=ast.Load()),
                               args=[ast.Name(id="plugin", ctx=ast.Load())], keywords=[]),
            )
            ast.copy_location(func, body[0])
            ast.copy_location(call, body[-1])
            tree = ast.Module(body=[func, call], type_ignores=[])
        tree = harden(tree)
        return compile(tree, "<string>", "exec")
    except (SyntaxError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"custom code does not compile: {exc}") from exc


class _CodeRunner:
    """Decodes, checks and runs one instance's code; caches the compiled form per CODE."""

    def __init__(self, api: PluginApi, log: Any, limits: SandboxLimits) -> None:
        self.api = api
        self.plugin = plugin_facade(api)
        self.sandbox = Sandbox(limits, log)
        self._cache_key: str | None = None
        self._cached: tuple[Any, str | None, Any] = (None, None, None)  # (code obj, source, errors)

    def _prepare(self, b64: str) -> tuple[Any, str | None, Any]:
        if b64 == self._cache_key:
            return self._cached
        base64_to_code, check_code = _codecs()
        source: str | None = None
        try:
            source = base64_to_code(b64)
        except DecodeError:
            prepared: tuple[Any, str | None, Any] = (None, None, BAD_BASE64)
        else:
            # The node's verdict first, with its exact texts; the simulator's stricter rules after.
            errors = check_code(source) or check_sandbox(source)
            if errors:
                prepared = (None, source, dict(errors))
            else:
                try:
                    prepared = (prepare_code(source), source, None)
                except DecodeError as exc:
                    prepared = (None, source, {f"Unable to parse code {exc.__cause__}": [0]})
        self._cache_key, self._cached = b64, prepared
        return prepared

    def run(self, b64: str) -> tuple[Any, Any, list[str], str | None]:
        """Run the code once: ``(result, errors, warnings, source)``."""
        code, source, errors = self._prepare(b64)
        if errors is not None:
            return None, errors, [], source
        if "np" in _names(code):  # import numpy before the memory window opens (its import maps a lot)
            with contextlib.suppress(ImportError):  # no numpy: the code meets ExtraMissing itself
                self.api.np  # noqa: B018
        namespace = self.sandbox.namespace(self.plugin)
        try:
            self.sandbox.run(code, namespace)
            result = next((namespace[name] for name in _RESULT_NAMES if name in namespace), None)
            result = plain_data(result, max_depth=self.sandbox.limits.max_result_depth)
        except KeyboardInterrupt:
            raise  # the code cannot raise it (not in its builtins): a real Ctrl-C
        # Running client code is this plugin's job; any failure of it (SystemExit, the budget's
        # BaseException...) is reported, as a node does, and never stops the simulated node.
        except BaseException as exc:  # noqa: BLE001
            return None, _failure_text(exc), [], source
        return result, None, [], source


def _names(code: types.CodeType) -> set[str]:
    """Every name a code object and the code objects inside it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _failure_text(exc: BaseException) -> str:
    """The traceback a node reports, bounded: code that keeps catching and raising builds long chains."""
    link: BaseException | None = exc
    for _ in range(_MAX_CHAIN - 1):
        link = None if link is None else (link.__cause__ or link.__context__)
    if link is not None:
        link.__cause__ = link.__context__ = None
        link.__suppress_context__ = True
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(text) > _MAX_ERROR_CHARS:
        head, tail = _MAX_ERROR_CHARS // 4, _MAX_ERROR_CHARS * 3 // 4
        text = f"{text[:head]}\n... ({len(text) - head - tail} characters cut) ...\n{text[-tail:]}"
    return text


def _error_info(errors: Any, source: str | None) -> str:
    sep = "*" * 100
    return (f"Reset/sleep plugin for {SLEEP_ON_ERRORS:g}s. Error in custom code execution: {errors}\n"
            f"{sep}\n{source or ''}\n")


class CustomExec01(SimPlugin):
    """Periodic custom code (``CUSTOM_EXEC_01``, plugin version 2.1.0)."""

    SIGNATURE = "CUSTOM_EXEC_01"
    VERSION = "2.1.0"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **SimPlugin.DEFAULTS,
        "PROCESS_DELAY": 0.05,
        "ALLOW_EMPTY_INPUTS": True,
        "MAX_INPUTS_QUEUE_SIZE": 1,
        "CODE": "",
        "RESULT_KEY": "exec_result",
        "ERROR_KEY": "exec_errors",
        "WARNING_KEY": "exec_warning",
        "DEBUG_EXEC": False,
        "SEND_MANIFEST_EACH": 300,
    }
    #: budgets of one execution (the simulator operator's choice, not the client's)
    LIMITS: ClassVar[SandboxLimits] = SandboxLimits()

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.api = PluginApi(ctx)
        self._runner = _CodeRunner(self.api, ctx.node.log, self.LIMITS)
        self.iteration = 0
        self._idle_since: float | None = ctx.node.time()

    def _keys(self) -> tuple[str, str, str]:
        cfg = self.config
        return (str(cfg.get("RESULT_KEY") or "exec_result").upper(),
                str(cfg.get("ERROR_KEY") or "exec_errors").upper(),
                str(cfg.get("WARNING_KEY") or "exec_warning").upper())

    def _where(self) -> str:
        ctx = self.ctx
        return f"<stream='{ctx.pipeline}' sign='{ctx.signature}' inst='{ctx.instance_id}'>"

    def process(self, inputs: list[InputItem]) -> dict[str, Any] | None:
        """Run the code once; emit ``EXEC_*`` when there is a result or an error."""
        self.iteration += 1
        self.api.set_inputs(inputs)
        code = self.config.get("CODE") or ""
        result: Any = None
        errors: Any = None
        warnings: list[str] = []
        source: str | None = None
        if isinstance(code, str) and code:
            result, errors, warnings, source = self._runner.run(code)
        elif code:
            errors = BAD_BASE64
        rkey, ekey, wkey = self._keys()
        if result is not None or errors is not None:
            self._idle_since = None
            payload = {rkey: result, ekey: errors, wkey: warnings, "EXEC_ITER": self.iteration}
            if errors is not None:
                raise PluginProcessError(f"Exception in {self._where()}", payload=payload,
                                         info=_error_info(errors, source))
            return payload
        return self._idle_payload(rkey, ekey, wkey, bool(code))

    def _idle_payload(self, rkey: str, ekey: str, wkey: str, has_code: bool) -> dict[str, Any] | None:
        now = self.ctx.node.time()
        if self._idle_since is None:
            self._idle_since = now
            return None
        elapsed = now - self._idle_since
        if elapsed <= float(self.config.get("SEND_MANIFEST_EACH") or 300):
            return None
        self._idle_since = now
        ctx = self.ctx
        why = "(code available)" if has_code else "(IDLE DUE TO NO CODE PROVIDED)"
        msg = f"Custom plugin {ctx.pipeline}:{ctx.signature}:{ctx.instance_id} was idle past {elapsed:.1f}s {why}"
        self.api.P(msg)
        return {rkey: None, ekey: msg, wkey: None, "EXEC_ITER": self.iteration}


class RestCustomExec01(SimPlugin):
    """One-shot custom code (``REST_CUSTOM_EXEC_01``): runs once per new ``REQUEST``.

    ``REQUEST`` is ``{"DATA": {"CODE": b64}, "TIMESTAMP": ...}`` (PyE2's
    ``wait_exec``); every run emits ``RESULT_KEY``/``ERROR_KEY``/``WARNING_KEY``
    and the keys of a ``ROOT_PAYLOAD_DATA`` dict in the result are lifted to
    the payload root. Like a real node it runs only on iterations with input
    (``ALLOW_EMPTY_INPUTS`` false) unless configured otherwise.
    """

    SIGNATURE = "REST_CUSTOM_EXEC_01"
    VERSION = "0.1.0"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **SimPlugin.DEFAULTS,
        "PROCESS_DELAY": 1,
        "ALLOW_EMPTY_INPUTS": False,
        "RUN_WITHOUT_IMAGE": False,
        "MAX_INPUTS_QUEUE_SIZE": 1,
        "RESULT_KEY": "exec_result",
        "ERROR_KEY": "exec_errors",
        "WARNING_KEY": "exec_warning",
        "ROOT_PAYLOAD_KEY": "ROOT_PAYLOAD_DATA",
        "DEBUG_EXEC": False,
        "REQUEST": None,
    }
    #: budgets of one execution (the simulator operator's choice, not the client's)
    LIMITS: ClassVar[SandboxLimits] = SandboxLimits()

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.api = PluginApi(ctx)
        self._runner = _CodeRunner(self.api, ctx.node.log, self.LIMITS)
        self._done: Any = None

    def process(self, inputs: list[InputItem]) -> dict[str, Any] | None:
        """Execute the pending request, if it is new."""
        request = self.config.get("REQUEST")
        if request is None or request == self._done:
            return None
        self._done = copy.deepcopy(request)
        self.api.set_inputs(inputs)
        result: Any = None
        errors: Any = None
        warnings: list[str] = []
        source: str | None = None
        data = request.get("DATA") if isinstance(request, dict) else None
        if not isinstance(data, dict):
            errors = "Request does not comply with the given manifest"
        elif isinstance(data.get("CODE"), str) and data["CODE"]:
            result, errors, warnings, source = self._runner.run(data["CODE"])
        else:
            errors = "Received empty CODE"
        if self.config.get("ALLOW_EMPTY_INPUTS"):
            warnings = [*warnings, "Result might be erroneous due to plugin being allowed to run without input"]
        cfg = self.config
        payload: dict[str, Any] = {}
        root_key = str(cfg.get("ROOT_PAYLOAD_KEY") or "ROOT_PAYLOAD_DATA")
        if isinstance(result, dict):
            root = result.get(root_key.lower(), result.get(root_key.upper()))
            if isinstance(root, dict):
                payload.update({str(k).upper(): v for k, v in root.items()})
        payload.update({
            str(cfg.get("RESULT_KEY") or "exec_result").upper(): result,
            str(cfg.get("ERROR_KEY") or "exec_errors").upper(): errors,
            str(cfg.get("WARNING_KEY") or "exec_warning").upper(): warnings,
        })
        if errors is not None:
            ctx = self.ctx
            raise PluginProcessError(
                f"Exception in <stream='{ctx.pipeline}' sign='{ctx.signature}' inst='{ctx.instance_id}'>",
                payload=payload, info=_error_info(errors, source),
            )
        return payload
