"""Import rules of the hexagonal layout (STYLE.md, "Dependency rule").

* ``pye2.domain`` is pure: standard library only, and none of the modules or
  calls that do I/O, start threads or read the clock.
* nothing in ``pye2`` imports a ``pye2_transport_*`` package;
* transport packages never import ``pye2.service``.
Checked statically on the source (every import, every call of a forbidden
name) and dynamically (importing the domain under an audit hook).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "pye2" / "domain"

#: modules the domain may import besides itself and pye2.errors
DOMAIN_STDLIB_ALLOWED = {
    "__future__", "abc", "ast", "base64", "binascii", "collections", "dataclasses", "datetime", "enum",
    "functools", "hashlib", "itertools", "json", "math", "operator", "re", "string", "struct", "types",
    "typing", "uuid", "zlib", "decimal", "numbers", "textwrap", "keyword", "copy", "codecs", "unicodedata",
    "reprlib",
}
#: calls that read the clock, touch files or the console, whatever they are imported as
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "print", "input", "uuid1", "uuid4", "time", "sleep",
                   "monotonic", "perf_counter"}


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno))
    return out


@pytest.mark.parametrize("path", python_files("pye2/domain"), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_imports_only_pure_modules(path: Path) -> None:
    bad = [
        (mod, line)
        for mod, line in imported_modules(path)
        if not (mod in ("pye2.errors", "urllib.parse") or mod.startswith("pye2.domain")
                or mod.split(".")[0] in DOMAIN_STDLIB_ALLOWED)
    ]
    assert bad == [], f"{path.name} imports outside the pure domain: {bad}"


@pytest.mark.parametrize("path", python_files("pye2/domain"), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_calls_no_clock_file_or_console(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in FORBIDDEN_CALLS:
                bad.append((name, node.lineno))
    assert bad == [], f"{path.name} reads the clock or does I/O: {bad}"


@pytest.mark.parametrize("path", python_files("pye2"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_a_transport_package(path: Path) -> None:
    bad = [(m, line) for m, line in imported_modules(path) if m.startswith("pye2_transport")]
    assert bad == [], f"{path} imports a transport package: {bad}"


@pytest.mark.parametrize(
    "path",
    [p for pkg in ("pye2_transport_memory", "pye2_transport_mqtt", "pye2_transport_amqp") for p in python_files(pkg)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_transports_never_import_the_service_layer(path: Path) -> None:
    bad = [(m, line) for m, line in imported_modules(path) if m == "pye2.service" or m.startswith("pye2.service.")]
    assert bad == [], f"{path} imports pye2.service: {bad}"


PROBE = r"""
import importlib, pkgutil, sys
events = []
def hook(event, args):
    if event in ("open", "socket.connect", "socket.bind", "_thread.start_new_thread", "subprocess.Popen",
                 "os.system") and not (event == "open" and str(args[0]).endswith((".py", ".pyc", ".so"))):
        events.append((event, str(args[0])[:80] if args else ""))
import pye2.domain
sys.addaudithook(hook)
for info in pkgutil.walk_packages(pye2.domain.__path__, "pye2.domain."):
    importlib.import_module(info.name)
import pye2
leaked = sorted(m for m in sys.modules if m.startswith("pye2_transport"))
print(repr((events, leaked)))
"""


def test_importing_the_domain_and_facade_does_no_io_and_loads_no_transport() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT)
    events, leaked = eval(out.stdout.strip().splitlines()[-1])
    assert events == [], f"I/O or threads at import: {events}"
    assert leaked == [], f"importing pye2 loaded transport packages: {leaked}"


def test_routing_and_handles_do_not_import_each_other_or_the_sessions_privates() -> None:
    """The router knows handles by a protocol; handles use the session's public API and its router."""
    router = {m for m, _ in imported_modules(ROOT / "pye2/service/router.py")}
    directory = {m for m, _ in imported_modules(ROOT / "pye2/service/directory.py")}
    assert "pye2.service.handles" not in router | directory
    assert "pye2.service.session" not in router | directory
    tree = ast.parse((ROOT / "pye2/service/handles.py").read_text("utf-8"))
    private = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                      and isinstance(node.value, ast.Attribute) and node.value.attr == "session"
                      and node.attr.startswith("_")}
                     | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                        and isinstance(node.value, ast.Name) and node.value.id == "session"
                        and node.attr.startswith("_")})
    assert private == [], f"handles reach into the session's privates: {private}"


@pytest.mark.parametrize("path", python_files("pye2_transport_memory"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_simulator_uses_pye2s_ports_plugin_host_and_facade_not_its_adapters(path: Path) -> None:
    """Only the wall clock adapter (a public Clock implementation) may be imported from pye2.adapters."""
    bad = [(m, line) for m, line in imported_modules(path)
           if m.startswith("pye2.adapters") and m != "pye2.adapters.system_clock"]
    assert bad == [], f"{path.name} imports pye2's adapters: {bad}"
