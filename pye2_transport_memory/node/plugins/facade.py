"""What custom code holds as ``plugin`` on a simulated node: a facade over :class:`~.api.PluginApi`.

The facade exposes exactly the documented custom-code API
(:data:`~.api.CUSTOM_CODE_METHODS`, :data:`~.api.CUSTOM_CODE_VALUES`,
:data:`~.api.CUSTOM_CODE_MODULES` and ``cfg_*``). The real API object, and
through it the node, lives only in closures of the facade's functions:
there is no attribute, private or not, that leads to it, so even a gap in
the sandbox's check would not hand out the node's identity or transport.

* every call counts a step of the execution budget (:func:`~.sandbox.tick`);
* ``cmdapi_*`` arguments are copied as plain JSON data, so node code that
  sends the commands never meets objects made by the code;
* images handed to the code are copies (inputs are shared between nodes);
  ``cfg_*`` values are copies too (the node keeps the instance config);
* attributes the code sets on ``plugin`` live in the facade, never on the
  API object; ``_*`` and ``cfg_*`` cannot be set;
* ``plugin.json``, ``plugin.re`` and ``plugin.np`` are read-only views: an
  allow-list for ``json``/``re``; for numpy everything but submodules (except
  ``random`` -- seeded per instance --, ``linalg`` and ``fft``), module-level
  mutable tables, file I/O and process-wide settings.
"""

from __future__ import annotations

import copy
import json
import re
import types
from collections.abc import Callable
from typing import Any

from pye2_transport_memory.node.plugin_base import InputItem
from pye2_transport_memory.node.plugins.api import (
    CUSTOM_CODE_METHODS,
    CUSTOM_CODE_MODULES,
    CUSTOM_CODE_VALUES,
    PluginApi,
)
from pye2_transport_memory.node.plugins.sandbox import Guarded, plain_data, tick

__all__ = ["JSON_NAMES", "NUMPY_REFUSED", "RE_NAMES", "module_view", "plugin_facade"]

JSON_NAMES = ("dumps", "loads", "JSONDecodeError")
RE_NAMES = (
    "compile", "search", "match", "fullmatch", "split", "findall", "finditer", "sub", "subn", "escape", "error",
    "Pattern", "Match", "RegexFlag", "NOFLAG", "A", "ASCII", "I", "IGNORECASE", "L", "LOCALE", "M", "MULTILINE",
    "S", "DOTALL", "X", "VERBOSE", "U", "UNICODE",
)
#: numpy names custom code does not get: files, process-wide settings, introspection, test runners
NUMPY_REFUSED = frozenset({
    "load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile", "fromregex",
    "memmap", "DataSource", "info", "show_config", "show_runtime", "get_include", "test", "seterr", "seterrcall",
    "setbufsize", "set_printoptions", "printoptions", "set_string_function", "add_docstring", "add_newdoc",
    "add_newdoc_ufunc", "byte_bounds", "safe_eval", "lookfor", "source", "who", "deprecate",
    "deprecate_with_doc", "disp", "loads", "recfromcsv", "recfromtxt", "ndfromtxt", "mafromtxt",
})
_NUMPY_SUBMODULES = ("linalg", "fft")
_HIDDEN = "is not available to custom code on a simulated node"


def _fresh_errors(lookup: Callable[[str], Any], attr: str) -> Any:
    """``lookup(attr)``, an AttributeError replaced by a new one.

    The interpreter stores the object whose lookup failed in
    ``AttributeError.obj``: raised inside the facade that would be the real
    module or API object. The new error carries only the message (and no
    ``__context__``).
    """
    try:
        return lookup(attr)
    except AttributeError as exc:
        message = str(exc)
    raise AttributeError(message)


def module_view(name: str, lookup: Callable[[str], Any]) -> Guarded:
    """A read-only object whose attributes come from ``lookup`` (never ``_*``)."""

    class module(Guarded):
        __slots__ = ()

        def __getattr__(self, attr: str) -> Any:
            if attr.startswith("_"):
                raise AttributeError(f"module {name!r} has no attribute {attr!r}")
            return _fresh_errors(lookup, attr)

        def __setattr__(self, attr: str, value: Any) -> None:
            raise AttributeError(f"module {name!r} is read-only for custom code")

        def __delattr__(self, attr: str) -> None:
            raise AttributeError(f"module {name!r} is read-only for custom code")

        def __repr__(self) -> str:
            return f"<module {name!r} (custom code view)>"

    return module()


def _allow_listed(name: str, module: Any, names: tuple[str, ...]) -> Guarded:
    allowed = {attr: getattr(module, attr) for attr in names if hasattr(module, attr)}

    def lookup(attr: str) -> Any:
        try:
            return allowed[attr]
        except KeyError:
            raise AttributeError(f"{name}.{attr} {_HIDDEN}") from None

    return module_view(name, lookup)


def _numpy_view(name: str, source: Any, refused: frozenset[str] = frozenset(),
                submodules: dict[str, Callable[[Any], Guarded]] | None = None) -> Guarded:
    views: dict[str, Guarded] = {}
    subs = submodules or {}

    def lookup(attr: str) -> Any:
        if attr in views:
            return views[attr]
        if attr in refused:
            raise AttributeError(f"{name}.{attr} {_HIDDEN}")
        value = getattr(source, attr)
        if attr in subs:
            views[attr] = subs[attr](value)
            return views[attr]
        if isinstance(value, (types.ModuleType, dict, list, set)):
            raise AttributeError(f"{name}.{attr} {_HIDDEN}")  # noqa: TRY004 - an attribute the code cannot have
        return value

    return module_view(name, lookup)


def _numpy(seeded: Any) -> Guarded:
    subs: dict[str, Callable[[Any], Guarded]] = {"random": lambda value: _numpy_view("numpy.random", value)}
    for sub in _NUMPY_SUBMODULES:
        subs[sub] = lambda value, sub=sub: _numpy_view(f"numpy.{sub}", value)  # type: ignore[misc]
    return _numpy_view("numpy", seeded, NUMPY_REFUSED, subs)


def _counted(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        tick()
        return func(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = func.__doc__
    return call


def _command(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        tick()
        return func(*plain_data(args, what="a command argument"), **plain_data(kwargs, what="a command argument"))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = func.__doc__
    return call


def _image_copy(img: Any) -> Any:
    return img.copy() if callable(getattr(img, "copy", None)) else img


def _input_copy(item: InputItem) -> InputItem:
    return InputItem(item.type, img=_image_copy(item.img), struct_data=item.struct_data,
                     metadata=dict(item.metadata), init_data=item.init_data)


def plugin_facade(api: PluginApi) -> Guarded:
    """The ``plugin`` of one instance's custom code (build it once per instance: it keeps the code's attributes)."""
    extras: dict[str, Any] = {}
    methods: dict[str, Callable[..., Any]] = {}
    for name in CUSTOM_CODE_METHODS:
        method = getattr(api, name)
        methods[name] = _command(method, name) if name.startswith("cmdapi_") else _counted(method, name)
    methods["dataapi_image"] = _counted(lambda: _image_copy(api.dataapi_image()), "dataapi_image")
    methods["dataapi_images"] = _counted(lambda: [_image_copy(i) for i in api.dataapi_images()], "dataapi_images")
    methods["dataapi_inputs"] = _counted(lambda: [_input_copy(i) for i in api.dataapi_inputs()], "dataapi_inputs")
    modules: dict[str, Any] = {
        "json": _allow_listed("json", json, JSON_NAMES),
        "re": _allow_listed("re", re, RE_NAMES),
        "deepcopy": _counted(copy.deepcopy, "deepcopy"),
    }
    assert set(modules) | {"np"} == set(CUSTOM_CODE_MODULES)
    values = frozenset(CUSTOM_CODE_VALUES)
    label = f"<plugin {api.get_signature()} of {api.get_stream_id()}:{api.get_instance_id()}>"

    def read(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"'plugin' has no attribute {name!r}")
        if name in extras:
            return extras[name]
        if name in methods:
            return methods[name]
        if name in modules:
            return modules[name]
        if name == "np":
            modules["np"] = _numpy(api.np)
            return modules["np"]
        if name in values:
            return getattr(api, name)
        if name.startswith("cfg_"):
            return copy.deepcopy(getattr(api, name))
        raise AttributeError(f"'plugin' has no attribute {name!r}")

    class plugin(Guarded):
        __slots__ = ()

        def __getattr__(self, name: str) -> Any:
            return _fresh_errors(read, name)

        def __setattr__(self, name: str, value: Any) -> None:
            if name.startswith("cfg_"):
                raise AttributeError(f"{name} is read-only (it mirrors the instance config)")
            if name.startswith("_"):
                raise AttributeError(f"'plugin' attribute {name!r} cannot be set")
            extras[name] = value

        def __delattr__(self, name: str) -> None:
            if name not in extras:
                raise AttributeError(f"'plugin' attribute {name!r} cannot be deleted")
            del extras[name]

        def __repr__(self) -> str:
            return label

        def __dir__(self) -> list[str]:
            return sorted({*methods, *modules, "np", *values, *extras})

    return plugin()
