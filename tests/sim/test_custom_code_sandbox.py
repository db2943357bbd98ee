"""Custom code on a simulated node is contained (issue 12): a catalogue of escape attempts.

Every attempt is shipped by a real Session to a node of a SimulatedNetwork on the
virtual clock (``check=False``: the client's pre-check is skipped so the node has to
refuse it). Each is either refused by a check before running -- the node's own
checker (its exact texts) or the simulator's stricter one -- or contained while it
runs; the test asserts which, that the node's private key never shows up in any
message or log line, and that afterwards the same node still runs custom code and
the network is still up.
"""

from __future__ import annotations

import base64
import json
import resource
import sys
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from pye2.domain.codecs.checker import check_code
from pye2.domain.codecs.code import code_to_base64
from pye2.wire import Identity
from pye2_transport_memory import SimulatedNetwork
from pye2_transport_memory.node._signing import derive_secret
from pye2_transport_memory.node.plugin_base import InputItem, PluginContext
from pye2_transport_memory.node.plugins.api import CUSTOM_CODE_METHODS, CUSTOM_CODE_VALUES, PluginApi
from pye2_transport_memory.node.plugins.custom_exec import CustomExec01, PluginProcessError
from pye2_transport_memory.node.plugins.facade import plugin_facade
from pye2_transport_memory.node.plugins.sandbox import SandboxError, SandboxLimits, check_sandbox

SEED = 12
NODE = "sim-node-1"

NODE_CHECK = "node"  # refused by the nodes' checker (shared with the client's pre-check)
SIM_CHECK = "sandbox"  # refused by the simulator's stricter check
RUNTIME = "runtime"  # accepted by both checks, contained while it runs


@dataclass(frozen=True)
class Attempt:
    id: str
    code: str
    verdict: str
    needle: str  # in an error text (check) or in the reported traceback (runtime)


CATALOGUE = [
    # -- imports
    Attempt("import-os", "import os\nresult = os.system('id')", NODE_CHECK, "Import forbidden for os"),
    Attempt("import-importlib", "import importlib\nresult = importlib.import_module('os')", NODE_CHECK,
            "Import forbidden for importlib"),
    Attempt("import-builtins", "import builtins\nresult = builtins.open('/etc/passwd').read()", NODE_CHECK,
            "Import forbidden for builtins"),
    Attempt("dunder-import", "result = __import__('os').system('id')", SIM_CHECK, "`__import__`"),
    Attempt("pathlib-read", "from pathlib import Path\nresult = Path('/etc/passwd').read_text()", NODE_CHECK,
            "Import forbidden for pathlib"),
    Attempt("open-file", "result = open('/etc/passwd').read()", NODE_CHECK, "open()"),
    # -- dynamic code
    Attempt("exec", "exec(\"import os\")", NODE_CHECK, "exec()"),
    Attempt("eval", "result = eval(\"__import__('os')\")", NODE_CHECK, "eval()"),
    Attempt("compile", "result = compile('1', 'x', 'eval')", SIM_CHECK, "`compile`"),
    Attempt("breakpoint", "breakpoint()", SIM_CHECK, "`breakpoint`"),
    # -- introspection chains
    Attempt("subclasses-chain", "result = ().__class__.__base__.__subclasses__()", SIM_CHECK, "`.__class__`"),
    Attempt("object-subclasses", "result = [c for c in object.__subclasses__()]", SIM_CHECK, "`.__subclasses__`"),
    Attempt("type-subclasses", "result = type.__subclasses__(type)", SIM_CHECK, "`.__subclasses__`"),
    Attempt("function-globals", "def f():\n  pass\nresult = f.__globals__['plugin']", SIM_CHECK, "`.__globals__`"),
    Attempt("function-code", "def f():\n  return 1\nresult = f.__code__.co_consts", SIM_CHECK, "`.__code__`"),
    Attempt("generator-frame", "def g():\n  yield 1\nresult = g().gi_frame.f_back.f_globals", SIM_CHECK,
            "`.gi_frame`"),
    Attempt("traceback-frame", "try:\n  1 / 0\nexcept Exception as e:\n  result = e.__traceback__.tb_frame.f_globals",
            NODE_CHECK, "__traceback__"),
    Attempt("sys-getframe", "result = sys._getframe(1).f_globals", SIM_CHECK, "`._getframe`"),
    Attempt("globals-builtins", "result = globals()['__builtins__']", NODE_CHECK, "Global vars access"),
    Attempt("metaclass", "class M(metaclass=lambda *a: a):\n  pass\nresult = M", SIM_CHECK, "Metaclasses"),
    Attempt("dunder-method", "class A:\n  def __getattr__(self, name):\n    return name\nresult = A().x", SIM_CHECK,
            "`__getattr__`"),
    Attempt("match-class-attribute",
            "match plugin:\n  case object(__class__=c):\n    result = str(c)", SIM_CHECK, "`.__class__`"),
    # -- the node behind `plugin`
    Attempt("plugin-ctx", "result = plugin._ctx.node.identity.to_pem().decode()", SIM_CHECK, "`._ctx`"),
    Attempt("plugin-dict", "result = str(plugin.__dict__)", SIM_CHECK, "`.__dict__`"),
    Attempt("attribute-error-obj",
            "try:\n  plugin.np.nope\nexcept AttributeError as e:\n  result = str(e.obj.lib)", SIM_CHECK, "`.obj`"),
    Attempt("vars-plugin", "result = str(vars(plugin))", NODE_CHECK, "vars(obj)"),
    Attempt("getattr-plugin", "result = getattr(plugin, '_' + 'ctx')", NODE_CHECK, "getattr()"),
    Attempt("setattr-builtin", "setattr(plugin, 'x', 1)", SIM_CHECK, "`setattr`"),
    Attempt("method-self", "result = str(plugin.sleep.__self__)", SIM_CHECK, "`.__self__`"),
    Attempt("fstring-attribute", "result = f'{plugin.__class__.__init__.__globals__}'", SIM_CHECK,
            "`.__class__`"),
    Attempt("type-of-plugin", "result = str(type(plugin))", RUNTIME, "type() is not available"),
    # -- format strings: their contents are not in the tree the checks read
    Attempt("format-class", "result = '{0.__class__.__base__}'.format(1)", RUNTIME, "format strings may not read"),
    Attempt("format-globals", "def f():\n  pass\nresult = '{.__globals__}'.format(f)", RUNTIME,
            "format strings may not read"),
    Attempt("str-format-unbound", "result = str.format('{0.__class__}', plugin)", RUNTIME,
            "format strings may not read"),
    Attempt("format-via-super",
            "class S(str):\n  pass\nresult = super(S, S('{0.__class__}')).format(plugin)", RUNTIME,
            "format strings may not read"),
    Attempt("format-map", "result = '{x.__class__}'.format_map({'x': plugin})", SIM_CHECK, "`.format_map`"),
    # -- modules behind the helpers
    Attempt("json-codecs-open", "result = plugin.json.codecs.open('/etc/passwd').read()", RUNTIME,
            "json.codecs is not available"),
    Attempt("re-enum-sys", "result = plugin.re.enum.sys.modules['os'].system('id')", RUNTIME,
            "re.enum is not available"),
    Attempt("numpy-load", "result = plugin.np.load('/etc/passwd')", RUNTIME, "numpy.load is not available"),
    Attempt("numpy-lib-stride-tricks", "result = plugin.np.lib.stride_tricks.as_strided(plugin.np.zeros(1), (99,))",
            RUNTIME, "numpy.lib is not available"),
    Attempt("numpy-random-submodule", "result = plugin.np.random.mtrand", RUNTIME,
            "numpy.random.mtrand is not available"),
    Attempt("numpy-tofile", "plugin.np.zeros(3).tofile('/tmp/pye2-sandbox-escape')", SIM_CHECK, "`.tofile`"),
    Attempt("shared-class-tampering", "plugin.json.JSONDecodeError.pos = 'pwned'", RUNTIME,
            "may only set attributes of its own objects"),
    # -- stopping the node
    Attempt("keyboard-interrupt", "raise KeyboardInterrupt", RUNTIME, "NameError"),
    Attempt("system-exit", "raise SystemExit(1)", RUNTIME, "SystemExit"),
    Attempt("generator-exit", "raise GeneratorExit", RUNTIME, "GeneratorExit"),
    # -- time
    Attempt("busy-loop", "while True:\n  pass", RUNTIME, "ran past its budget"),
    Attempt("busy-loop-catching-the-stop",
            "while True:\n  try:\n    while True:\n      pass\n  except BaseException:\n    pass", RUNTIME,
            "ran past its budget"),
    Attempt("deep-recursion", "def f(n):\n  return f(n + 1)\nresult = f(0)", RUNTIME, "RecursionError"),
    Attempt("exponential-recursion", "def f():\n  try:\n    f()\n  except:\n    f()\nf()", RUNTIME,
            "ran past its budget"),
    Attempt("c-level-loop", "result = sum(iter(int, 1))", RUNTIME, "ran past its budget"),
    Attempt("huge-range", "result = sum(range(10 ** 12))", RUNTIME, "may not build a range"),
    # -- memory
    Attempt("huge-string", "result = len('x' * 10 ** 10)", RUNTIME, "may not build a sequence"),
    Attempt("huge-int", "result = 2 ** 10 ** 10", RUNTIME, "may not build an int"),
    Attempt("doubling-string", "s = 'x'\nwhile True:\n  s += s", RUNTIME, "MemoryError"),
    # -- objects of the code that node code would use later
    Attempt("hostile-result", "class A:\n  def tolist(self):\n    while True:\n      pass\nresult = [A()]", RUNTIME,
            "made by the custom code"),
    Attempt("hostile-command",
            "class A:\n  pass\nplugin.cmdapi_register_command(None, 'UPDATE_CONFIG', {'NAME': A()})", RUNTIME,
            "made by the custom code"),
    Attempt("cyclic-result", "a = []\na.append(a)\nresult = a", RUNTIME, "nested deeper"),
]


def secret_forms(net: SimulatedNetwork, node_id: str) -> list[str]:
    """Every text form of the node's private key we look for in what leaves the node."""
    secret = derive_secret(SEED, node_id)
    identity = Identity.from_private_bytes(secret)
    assert identity.address(net.profile) == net.nodes[node_id].address  # it is the node's key
    pem_lines = [line for line in identity.to_pem().decode().splitlines() if not line.startswith("-----")]
    return [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode().rstrip("="),
            base64.urlsafe_b64encode(secret).decode().rstrip("="), str(int.from_bytes(secret, "big")),
            *pem_lines]


class Sniffer:
    """Every body published on the network, raw."""

    def __init__(self, net: SimulatedNetwork) -> None:
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.transport = net.transport()
        self.transport.connect()
        self.transport.subscribe(f"{net.profile.root}/#", self._on)

    def _on(self, delivery: Any) -> None:
        with self.lock:
            self.bodies.append(delivery.body)

    def messages(self, since: int = 0) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            bodies = self.bodies[since:]
        for body in bodies:
            try:
                out.append(json.loads(body))
            except ValueError:
                continue
        return out


@pytest.fixture(scope="module")
def sim() -> Any:
    with SimulatedNetwork(2, seed=SEED) as net:
        sniffer = Sniffer(net)
        session = net.session(name="attacker")
        session.connect()
        assert all(session.wait_for_node(node_id, 30) for node_id in net.node_ids)
        pipe = session.create_pipeline(e2id=NODE, name="sandbox", wait=True)
        yield net, session, pipe, sniffer
        session.close()


def test_catalogue_is_large_and_covers_every_verdict() -> None:
    assert len(CATALOGUE) >= 25
    assert len({a.id for a in CATALOGUE}) == len(CATALOGUE)
    assert {a.verdict for a in CATALOGUE} == {NODE_CHECK, SIM_CHECK, RUNTIME}


@pytest.mark.parametrize("attempt", CATALOGUE, ids=lambda a: a.id)
def test_escape_attempt_is_refused_or_contained(sim: Any, attempt: Attempt) -> None:
    net, session, pipe, sniffer = sim
    node = net.nodes[NODE]
    mark = len(sniffer.bodies)
    instance_id = f"attack-{attempt.id}"

    # What the checks say decides the expected verdict (and proves the node's texts are unchanged).
    node_verdict, sim_verdict = check_code(attempt.code), check_sandbox(attempt.code)
    if attempt.verdict == NODE_CHECK:
        assert node_verdict
    elif attempt.verdict == SIM_CHECK:
        assert not node_verdict and sim_verdict
    else:
        assert not node_verdict and not sim_verdict

    pipe.start_custom_plugin(instance_id=instance_id, plain_code=attempt.code, check=False)
    net.advance(3)
    mine = [m for m in sniffer.messages(mark) if m.get("INSTANCE_ID") == instance_id]
    reports = [m for m in mine if m.get("EE_EVENT_TYPE") == "PAYLOAD" and "EXEC_ERRORS" in m]
    assert reports, f"no EXEC_ERRORS payload for {attempt.id}"
    errors = reports[0]["EXEC_ERRORS"]
    assert reports[0]["EXEC_RESULT"] is None
    if attempt.verdict == NODE_CHECK:
        assert errors == node_verdict  # exactly what a real node reports
    elif attempt.verdict == SIM_CHECK:
        assert errors == sim_verdict
    if attempt.verdict == RUNTIME:
        assert isinstance(errors, str) and errors.startswith("Traceback (most recent call last):"), errors
    else:
        assert isinstance(errors, dict)
    assert attempt.needle in (errors if isinstance(errors, str) else " ".join(errors)), errors
    # reported the way a node reports failing code: an EXCEPTION notification follows
    assert any(m.get("EE_EVENT_TYPE") == "NOTIFICATION" and m.get("NOTIFICATION_TYPE") == "EXCEPTION"
               for m in mine)
    assert not any(m.get("EE_EVENT_TYPE") == "PAYLOAD" and m.get("EXEC_RESULT") is not None for m in mine)

    pipe.stop_custom_instance(instance_id)
    net.advance(1)

    # the same node still runs custom code, and the network is up
    assert pipe.wait_exec(plain_code="_result = 1 + 1", timeout=30) == (2, None)
    assert sorted(session.get_active_nodes()) == sorted(net.node_ids)

    # nothing of the node's key left the node (payloads, notifications, heartbeats, log lines)
    seen = b"\n".join(sniffer.bodies[mark:]).decode("utf-8", "replace") + "\n".join(node.log_lines)
    for form in secret_forms(net, NODE):
        assert form not in seen


# -- what the code still can do -------------------------------------------------------------------

def run_code(code: str, *, limits: SandboxLimits | None = None, **params: Any) -> tuple[Any, Any]:
    """(plugin, payload or PluginProcessError) after one process() call on a node of a real network."""
    cls: type[CustomExec01] = CustomExec01
    if limits is not None:
        cls = type("LimitedExec", (CustomExec01,), {"LIMITS": limits})
    with SimulatedNetwork(1, seed=3) as net:
        node = net.nodes[net.node_ids[0]]
        ctx = PluginContext(node=node, pipeline="p", signature=cls.SIGNATURE, instance_id="i",
                            pipeline_config={"NAME": "p", "TYPE": "Void"},
                            config={**cls.DEFAULTS, "CODE": code_to_base64(code), **params})
        plugin = cls(ctx)
        try:
            return plugin, plugin.process([])
        except PluginProcessError as exc:
            return plugin, exc


def test_ordinary_code_keeps_working() -> None:
    code = """
class Base(Exception):
  def __init__(self, msg):
    super().__init__(msg)
    self.msg = msg
class Point:
  def __init__(self, x, y):
    self.x = x
    self.y = y
  def norm(self):
    return plugin.np.sqrt(self.x ** 2 + self.y ** 2)
p = Point(3, 4)
p.x *= 2
p.y += 4
try:
  raise Base('boom')
except Base as e:
  caught = e.msg
words = sorted({w.upper() for w in 'b a c a'.split()})
grid = [[0] * 3 for _ in range(2)]
grid[0][1:2] *= 1
n = 3
n **= 2
n <<= 1
plugin.note = 'kept'
result = {
  'norm': float(p.norm()), 'caught': caught, 'words': words, 'grid': grid, 'n': n,
  'fmt': '{}-{:>4}|{x}'.format(1, 'a', x=2.5), 'fstr': f'{n:03d}', 'pct': '%s/%d' % ('a', 2),
  'json': plugin.json.loads(plugin.json.dumps({'a': [1, 2]})), 're': plugin.re.sub('[0-9]', '#', 'a1b2'),
  'mean': float(plugin.np.arange(5).mean()), 'lam': list(map(lambda v: v * 2, [1, 2])), 'note': plugin.note,
  'when': plugin.datetime.strptime('2024-01-02', '%Y-%m-%d').year, 'pow': pow(2, 10), 'it': list(iter([1])),
}
"""
    _, out = run_code(code)
    assert not isinstance(out, PluginProcessError), out.payload
    assert out["EXEC_RESULT"] == {
        "norm": 10.0, "caught": "boom", "words": ["A", "B", "C"], "grid": [[0, 0, 0], [0, 0, 0]], "n": 18,
        "fmt": "1-   a|2.5", "fstr": "018", "pct": "a/2", "json": {"a": [1, 2]}, "re": "a#b#", "mean": 2.0,
        "lam": [2, 4], "note": "kept", "when": 2024, "pow": 1024, "it": [1],
    }


def test_state_and_functions_survive_between_runs() -> None:
    code = ("if plugin.obj_cache['f'] is None:\n  plugin.obj_cache['f'] = lambda v: v + 1\n"
            "plugin.int_cache['n'] = plugin.obj_cache['f'](plugin.int_cache['n'])\nresult = plugin.int_cache['n']\n")
    plugin, out = run_code(code)
    assert out["EXEC_RESULT"] == 1
    assert plugin.process([])["EXEC_RESULT"] == 2
    # a function of the code called outside any execution (say by node code) does not run
    with pytest.raises(SandboxError):
        plugin.api.obj_cache["f"](1)


def test_budget_is_configurable_per_plugin_class() -> None:
    _, err = run_code("for i in range(1000):\n  pass\nresult = 1", limits=SandboxLimits(max_steps=500))
    assert isinstance(err, PluginProcessError)
    assert "ran past its budget of 500 steps" in err.payload["EXEC_ERRORS"]  # type: ignore[index]
    _, out = run_code("for i in range(400):\n  pass\nresult = 1", limits=SandboxLimits(max_steps=1000))
    assert out["EXEC_RESULT"] == 1
    assert CustomExec01.LIMITS == SandboxLimits()
    assert (SandboxLimits().max_steps, SandboxLimits().max_seconds) == (1_000_000, 2.0)


def test_a_strict_plugin_class_registered_on_the_network() -> None:
    strict = type("StrictExec", (CustomExec01,), {"LIMITS": SandboxLimits(max_steps=100, max_seconds=None)})
    with SimulatedNetwork(1, seed=4, plugins=[strict]) as net:
        session = net.session(name="t")
        session.connect()
        assert session.wait_for_node(net.node_ids[0], 30)
        pipe = session.create_pipeline(e2id=net.node_ids[0], name="strict", wait=True)
        got: list[Any] = []
        pipe.start_custom_plugin(instance_id="loop", plain_code="for i in range(200):\n  pass\n_result = 1",
                                 on_data=lambda _pipe, data: got.append(data))
        pipe.start_custom_plugin(instance_id="fine", plain_code="_result = 7", on_data=lambda _p, d: got.append(d))
        net.advance(2)
        assert 7 in got and 1 not in got
        session.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the memory window is RLIMIT_AS on Linux")
def test_memory_window_is_restored_and_bounds_growth() -> None:
    before = resource.getrlimit(resource.RLIMIT_AS)
    _, err = run_code("a = []\nwhile True:\n  a.append(bytearray(10 ** 6))")
    assert isinstance(err, PluginProcessError)
    assert "MemoryError" in err.payload["EXEC_ERRORS"]  # type: ignore[index]
    _, err = run_code("result = len(bytearray(10 ** 10))")
    assert "MemoryError" in err.payload["EXEC_ERRORS"]  # type: ignore[index]
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_long_error_chains_are_reported_bounded() -> None:
    _, err = run_code("raise ValueError('x' * 10 ** 6)")
    text = err.payload["EXEC_ERRORS"]  # type: ignore[index]
    assert len(text) < 25_000 and "characters cut" in text and text.endswith("\n")


def test_facade_exposes_exactly_the_documented_api() -> None:
    with SimulatedNetwork(1, seed=5) as net:
        node = net.nodes[net.node_ids[0]]
        ctx = PluginContext(node=node, pipeline="p", signature="CUSTOM_EXEC_01", instance_id="i",
                            pipeline_config={}, config={"MAX_TRIES": [1, 2]})
        api = PluginApi(ctx)
        facade = plugin_facade(api)
        assert sorted(dir(facade)) == sorted({*CUSTOM_CODE_METHODS, *CUSTOM_CODE_VALUES, "np", "json", "re",
                                              "deepcopy"})
        public = {name for name in dir(api) if not name.startswith("_")}
        assert public - set(dir(facade)) == {"set_inputs"}  # internal to the plugin
        for name in ("_ctx", "_inputs", "_np", "__dict__", "api", "node", "identity", "transport"):
            with pytest.raises(AttributeError):
                getattr(facade, name)
        assert not hasattr(facade, "__dict__") or not vars(facade)  # nothing hangs off the instance
        facade.cfg_max_tries.append(3)  # a copy: the node's instance config is untouched
        assert ctx.config["MAX_TRIES"] == [1, 2]
        with pytest.raises(AttributeError):
            facade.cfg_max_tries = 1


def test_failed_lookups_do_not_carry_the_objects_behind_the_facade() -> None:
    with SimulatedNetwork(1, seed=5) as net:
        node = net.nodes[net.node_ids[0]]
        ctx = PluginContext(node=node, pipeline="p", signature="CUSTOM_EXEC_01", instance_id="i",
                            pipeline_config={}, config={})
        facade = plugin_facade(PluginApi(ctx))
        for path in ("cfg_nope", "nope", "np.nope", "np.random.nope", "np.linalg.nope", "json.codecs", "re.enum"):
            *parents, last = path.split(".")
            target = facade
            for part in parents:
                target = getattr(target, part)
            with pytest.raises(AttributeError) as info:
                getattr(target, last)
            assert getattr(info.value, "obj", None) in (None, target), path  # never the module or the API
            assert info.value.__context__ is None


def test_images_handed_to_the_code_are_copies() -> None:
    numpy = pytest.importorskip("numpy")
    plugin, out = run_code("img = plugin.dataapi_image()\nif img is not None:\n  img[0, 0, 0] = 255\n"
                           "  result = int(img[0, 0, 0])")
    assert out is None  # no input yet: nothing to do
    item = InputItem(type="IMG", img=numpy.zeros((2, 2, 3), dtype="uint8"))
    assert plugin.process([item])["EXEC_RESULT"] == 255
    assert item.img[0, 0, 0] == 0  # inputs are shared between nodes: the code got a copy
