"""Plugin discovery: built-ins, third-party entry points, clashes, block-list, extras."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pye2.errors import ExtraMissing, PluginConflictError, PluginNotFound, TransportUnavailable
from pye2.plugins import PluginHost, hookimpl


def make_distribution(root: Path, dist: str, module: str, entry: str, body: str) -> None:
    """Write an installed distribution (package + dist-info with a pye2 entry point)."""
    (root / f"{module}.py").write_text(textwrap.dedent(body), "utf-8")
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", "utf-8")
    (info / "entry_points.txt").write_text(f"[pye2]\n{entry} = {module}\n", "utf-8")


TRANSPORT_PLUGIN = """
    from pye2.plugins import hookimpl

    class LoopTransport:
        def __init__(self, url, **options):
            self.url = url
            self.options = options

    @hookimpl
    def pye2_register_transports(register):
        register("{scheme}", LoopTransport)
"""


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_and_our_transports_come_through_the_same_registries(plugin_host: PluginHost) -> None:
    assert {"json", "msgpack"} <= set(plugin_host.serializers.names())
    assert "cryptography" in plugin_host.signers.names()
    assert {"default", "aixp1", "cavi2"} <= set(plugin_host.formatters.names())
    assert {"memory", "mqtt", "mqtts", "amqp", "amqps"} <= set(plugin_host.transports.names())
    assert "distribution pye2" in plugin_host.transports.entry("mqtt").source


def test_third_party_transport_is_found_through_its_entry_point(site: Path) -> None:
    make_distribution(site, "pye2-loop", "pye2_loop_plugin", "loop", TRANSPORT_PLUGIN.format(scheme="loop"))
    host = PluginHost().load()
    transport = host.make_transport("loop://somewhere", timeout=3)
    assert type(transport).__name__ == "LoopTransport"
    assert transport.url == "loop://somewhere" and transport.options == {"timeout": 3}
    assert "pye2-loop" in host.transports.entry("loop").source


def test_two_plugins_claiming_one_name_are_both_named(site: Path) -> None:
    make_distribution(site, "pye2-first", "pye2_first_plugin", "first", TRANSPORT_PLUGIN.format(scheme="dup"))
    make_distribution(site, "pye2-second", "pye2_second_plugin", "second", TRANSPORT_PLUGIN.format(scheme="dup"))
    with pytest.raises(PluginConflictError) as info:
        PluginHost().load()
    assert "pye2-first" in str(info.value) and "pye2-second" in str(info.value)


def test_disable_env_blocks_a_plugin_by_entry_point_name(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(site, "pye2-first", "pye2_first_plugin", "first", TRANSPORT_PLUGIN.format(scheme="dup"))
    make_distribution(site, "pye2-second", "pye2_second_plugin", "second", TRANSPORT_PLUGIN.format(scheme="dup"))
    monkeypatch.setenv("PYE2_DISABLE_PLUGINS", "second, amqp")
    host = PluginHost().load()
    assert "pye2-first" in host.transports.entry("dup").source
    assert "amqp" not in host.transports.names()
    assert "mqtt" in host.transports.names()


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    host = PluginHost().load()
    for name in [m for m in sys.modules if m == "paho" or m.startswith("paho.")] + ["paho"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if paho-mqtt were not installed
    with pytest.raises(TransportUnavailable) as info:
        host.make_transport("mqtt://127.0.0.1:1883")
    assert "pip install 'pye2[mqtt]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_missing_requirement_without_extra_names_the_module() -> None:
    class Plugin:
        @hookimpl
        def pye2_register_serializers(self, register):  # type: ignore[no-untyped-def]
            register("exotic", object, requires=("pye2_no_such_module_xyz",))

    host = PluginHost(entry_points=False, extra_plugins=[Plugin()]).load()
    with pytest.raises(ExtraMissing, match="pip install pye2_no_such_module_xyz"):
        host.serializer("exotic")


def test_unknown_name_suggests_the_closest() -> None:
    host = PluginHost().load()
    with pytest.raises(PluginNotFound, match="did you mean 'mqtt'"):
        host.make_transport("mqt://x")
    with pytest.raises(LookupError):
        host.formatter("nope")


def test_hermetic_host_without_entry_points_has_no_transports() -> None:
    host = PluginHost(entry_points=False).load()
    assert host.transports.names() == []
    assert host.serializer("json").loads(b'{"a": 1}') == {"a": 1}


def test_load_is_idempotent() -> None:
    host = PluginHost()
    assert host.load() is host.load()
    assert host.serializers.names().count("json") == 1


def test_tracing_logs_hook_calls(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PYE2_TRACE_PLUGINS", "1")
    caplog.set_level("DEBUG", logger="pye2.plugins.host")
    PluginHost(entry_points=False).load()
    assert any("pye2_register_serializers" in r.getMessage() for r in caplog.records)
