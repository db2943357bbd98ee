"""Guards the hardened custom code calls, its builtins, and plain results (see :mod:`.sandbox`)."""

from __future__ import annotations

import builtins
import dis
import importlib
import operator
import re
import string
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from numbers import Integral
from typing import Any

from pye2_transport_memory.node.plugins._budget import MODULE, current_limits, tick

__all__ = [
    "REFUSED_ATTRIBUTES",
    "WHERE",
    "Attributes",
    "Guarded",
    "attribute_allowed",
    "augmented",
    "binop",
    "format_attribute",
    "make_builtins",
    "plain_data",
]

WHERE = "in plugin code on a simulated node "
_INTERNAL_ATTRIBUTE = re.compile(r"^(?:_|(?:f|co|tb|gi|cr|ag)_)")
#: attributes refused on any object besides ``_*`` and the frame/code/traceback/generator families:
#: ``obj`` is where the interpreter puts the object an ``AttributeError`` was raised for (it may be a
#: library's internal one), ``mro`` lists classes, ``format_map`` reads attributes named in strings,
#: the others are numpy's ways to files and raw memory
REFUSED_ATTRIBUTES = frozenset({"obj", "mro", "format_map", "tofile", "dump", "ctypes", "ctypeslib", "cffi"})


def attribute_allowed(name: str) -> bool:
    """Whether custom code on a simulated node may read attribute ``name`` (also in format strings)."""
    return not _INTERNAL_ATTRIBUTE.match(name) and name not in REFUSED_ATTRIBUTES


# -- guarded operations ---------------------------------------------------------------------------
_SEQUENCES = (str, bytes, bytearray, list, tuple)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "mul": operator.mul, "pow": operator.pow, "lshift": operator.lshift,
    "imul": operator.imul, "ipow": operator.ipow, "ilshift": operator.ilshift,
}


def _too_big(what: str, size: int, limit: int) -> MemoryError:
    return MemoryError(f"custom code on a simulated node may not build {what} of {size} (limit {limit})")


def _check_operands(a: Any, b: Any, op: str) -> None:
    limits = current_limits()
    if op.endswith("mul"):
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, _SEQUENCES) and isinstance(n, Integral):
                size = len(seq) * int(n)
                if size > limits.max_items:
                    raise _too_big("a sequence", size, limits.max_items)
    elif isinstance(a, int) and isinstance(b, Integral):  # numpy ints wrap around: no guard needed
        exponent = int(b)
        if exponent <= 0:
            return
        if op.endswith("pow"):
            bits = a.bit_length() * exponent if abs(a) > 1 else 0
        else:
            bits = a.bit_length() + exponent if a else 0
        if bits > limits.max_int_bits:
            raise _too_big("an int of bits", bits, limits.max_int_bits)


def binop(a: Any, b: Any, op: str) -> Any:
    _check_operands(a, b, op)
    return _OPS[op](a, b)


def augmented(obj: Any, key: Any, value: Any, op: str) -> None:
    obj[key] = binop(obj[key], value, op)


def _check_spec(spec: str) -> None:
    limit = current_limits().max_items
    for digits in re.findall(r"\d+", spec):
        if len(digits) > 18 or int(digits) > limit:
            raise _too_big("a formatted field of width", int(digits), limit)


_field_name_split: Callable[[str], tuple[Any, Iterator[tuple[bool, Any]]]] = (
    importlib.import_module("_string").formatter_field_name_split)


class _SafeFormatter(string.Formatter):
    """``str.format`` that refuses the attributes the check refuses and huge widths."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attribute, key in rest:
            if is_attribute:
                if not attribute_allowed(key):
                    raise AttributeError(f"format strings may not read `.{key}` {WHERE.strip()}")
                obj = getattr(obj, key)
            else:
                obj = obj[key]
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec)
        return builtins.format(value, format_spec)


_FORMATTER = _SafeFormatter()


def _checked_fields(text: str, depth: int = 0) -> bool:
    """Refuse what ``text.format`` would read that the check refuses; True if a spec is itself formatted."""
    dynamic = False
    for _, field_name, spec, _ in _FORMATTER.parse(text):
        if field_name is None:
            continue
        _, rest = _field_name_split(field_name)
        for is_attribute, key in rest:
            if is_attribute and not attribute_allowed(key):
                raise AttributeError(f"format strings may not read `.{key}` {WHERE.strip()}")
        if spec and "{" in spec and depth < 2:
            _checked_fields(spec, depth + 1)
            dynamic = True
        elif spec:
            _check_spec(spec)
    return dynamic


def _safe_format(text: str, args: Any, kwargs: Any) -> str:
    if _checked_fields(text):
        return _FORMATTER.vformat(text, args, kwargs)  # widths known only now: checked field by field
    return str.format(text, *args, **kwargs)


def _safe_format_of(text: str) -> Callable[..., str]:
    def format(*args: Any, **kwargs: Any) -> str:
        return _safe_format(text, args, kwargs)

    return format


def _unbound_safe_format(self: str, *args: Any, **kwargs: Any) -> str:
    if not isinstance(self, str):
        raise TypeError("descriptor 'format' requires a 'str' object")
    return _safe_format(self, args, kwargs)


def format_attribute(obj: Any) -> Any:
    """``obj.format`` as custom code sees it."""
    if isinstance(obj, str):
        return _safe_format_of(obj)
    value = obj.format
    if value is str.format:
        return _unbound_safe_format
    owner = getattr(value, "__self__", None)
    if isinstance(value, types.BuiltinMethodType) and isinstance(owner, str):  # super(str, s).format
        return _safe_format_of(owner)
    return value


class Guarded:
    """Base of the objects the simulator hands custom code (``plugin``, module views).

    Their own ``__setattr__`` decides what the code may set on them.
    """

    __slots__ = ()


def _may_write(obj: Any) -> bool:
    if isinstance(obj, Guarded):
        return True
    if type(obj).__module__ == MODULE:
        return True  # an instance of a class of the code
    return isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == MODULE


class Attributes:
    """``obj.name = v`` / ``del obj.name`` as ``__sb_attrs__(obj)[name] = v`` (the rewrite's target)."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def _check(self, name: str) -> None:
        if not _may_write(self._obj):
            raise AttributeError(f"custom code on a simulated node may only set attributes of its own objects, "
                                 f"not .{name} of a {type(self._obj).__name__}")

    def __getitem__(self, name: str) -> Any:
        return getattr(self._obj, name)

    def __setitem__(self, name: str, value: Any) -> None:
        self._check(name)
        setattr(self._obj, name, value)

    def __delitem__(self, name: str) -> None:
        self._check(name)
        delattr(self._obj, name)


# -- curated builtins -----------------------------------------------------------------------------
_SAFE_BUILTINS = (
    "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr",
    "classmethod", "complex", "dict", "divmod", "enumerate", "filter", "float", "frozenset", "hash", "hex", "int",
    "isinstance", "issubclass", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "property",
    "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "zip",
    "Ellipsis", "NotImplemented", "__build_class__",
)
#: BaseException subclasses custom code may not name (it could stop the node's loop with them)
_HIDDEN_EXCEPTIONS = frozenset({"KeyboardInterrupt"})


def _unavailable(name: str, why: str) -> Callable[..., Any]:
    def refuse(*_: Any, **__: Any) -> Any:
        raise NameError(f"{name}() is not available to custom code on a simulated node ({why})")

    refuse.__name__ = refuse.__qualname__ = name
    return refuse


def _range(*args: Any) -> range:
    r = range(*args)
    limit = current_limits().max_items
    try:
        size = len(r)
    except OverflowError:
        size = limit + 1
    if size > limit:
        raise _too_big("a range", size, limit)
    return r


def _call_until(func: Callable[[], Any], sentinel: Any) -> Iterator[Any]:
    while True:
        tick()
        value = func()
        if value == sentinel:
            return
        yield value


def _iter(obj: Any, *sentinel: Any) -> Iterator[Any]:
    if not sentinel:
        return iter(obj)
    if len(sentinel) > 1 or not callable(obj):
        raise TypeError("iter(callable, sentinel) takes a callable and one sentinel")
    return _call_until(obj, sentinel[0])  # counted per item, unlike the builtin's C loop


def _pow(base: Any, exp: Any, mod: Any = None) -> Any:
    if mod is not None:
        return pow(base, exp, mod)
    return binop(base, exp, "pow")


def _format(value: Any, format_spec: str = "") -> str:
    _check_spec(str(format_spec))
    return format(value, format_spec)


_IMPORT_NAME = dis.opmap["IMPORT_NAME"]


def _restricted_import(allowed: Mapping[str, object]) -> Callable[..., object]:
    """The ``__import__`` of the code's builtins.

    An ``import`` statement of the code itself (the frame that asks is the
    code's, stopped on an ``IMPORT_NAME``) only gets an allow-listed module
    (none by default: the node's checker refuses every import, so this is a
    second line). Library code imports through the builtins of the frame
    that runs (numpy's lazy imports, ``datetime.strptime``): those imports
    go through, and their modules go to the library, not to the code.
    """
    real_import = builtins.__import__

    def __import__(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                   level: int = 0) -> object:
        frame = sys._getframe(1)
        own = frame.f_globals.get("__name__") == MODULE
        if own:
            code = frame.f_code.co_code
            own = 0 <= frame.f_lasti < len(code) and code[frame.f_lasti] == _IMPORT_NAME
        if not own:
            return real_import(name, globals, locals, fromlist, level)
        if level == 0 and name in allowed:
            return allowed[name]
        raise ImportError(f"import of {name!r} is not allowed in custom code on a simulated node")

    return __import__


def make_builtins(print_: Callable[..., None], allowed_modules: Mapping[str, object]) -> dict[str, Any]:
    table: dict[str, Any] = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
    for name, value in vars(builtins).items():
        if (isinstance(value, type) and issubclass(value, BaseException) and not name.startswith("_")
                and name not in _HIDDEN_EXCEPTIONS):
            table[name] = value
    table.update({
        "print": print_,
        "range": _range,
        "iter": _iter,
        "pow": _pow,
        "format": _format,
        "type": _unavailable("type", "use isinstance()"),
        "id": _unavailable("id", "object addresses stay inside the node"),
        "__import__": _restricted_import(dict(allowed_modules)),
    })
    return table


# -- results --------------------------------------------------------------------------------------
def _made_by_code(cls: type) -> bool:
    return any(getattr(base, "__module__", None) == MODULE for base in cls.__mro__)


def plain_data(value: Any, *, what: str = "the result", max_depth: int | None = None) -> Any:
    """``value`` rebuilt from plain dicts, lists and tuples, for node code to encode.

    Objects of classes the code defined (or their subclasses of ``dict``,
    ``str``...) are refused, so node code never calls the code's methods;
    numpy object arrays are unpacked; other values (numbers, strings, numpy
    arrays, datetimes...) are kept for the node's encoder.

    Raises:
        TypeError: an object made by the code.
        ValueError: nesting deeper than ``max_depth`` (or a cycle).
    """
    depth_limit = current_limits().max_result_depth if max_depth is None else max_depth

    def walk(item: Any, depth: int) -> Any:
        cls = type(item)
        if cls in (str, int, float, bool, type(None)):
            return item
        if depth > depth_limit:
            raise ValueError(f"{what} is nested deeper than {depth_limit} levels (or holds a cycle)")
        if _made_by_code(cls):
            raise TypeError(f"{what} holds a {cls.__name__} object made by the custom code; "
                            "only JSON data leaves custom code on a simulated node")
        if isinstance(item, dict):
            return {walk(k, depth + 1): walk(v, depth + 1) for k, v in dict.items(item)}
        if isinstance(item, list):
            return [walk(v, depth + 1) for v in list.__iter__(item)]
        if isinstance(item, tuple):
            return tuple(walk(v, depth + 1) for v in tuple.__iter__(item))
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(item, numpy.ndarray) and item.dtype.hasobject:
            return walk(item.tolist(), depth + 1)
        return item

    return walk(value, 0)
