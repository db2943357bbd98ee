"""CUSTOM_EXEC_01 / REST_CUSTOM_EXEC_01 on a fake node: the README tutorial, the checker, errors.

The node side is a small real object implementing ``NodeApi`` (no mocks): it
records commands and log lines and has a clock the test moves.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pye2.domain.codecs.code import code_to_base64
from pye2.errors import ConfigError, PluginError
from pye2_transport_memory.node.plugin_base import InputItem, PluginContext, SimPlugin
from pye2_transport_memory.node.plugins.catalog import SimpleCounter, SimpleEcho
from pye2_transport_memory.node.plugins.custom_exec import (
    BAD_BASE64,
    CustomExec01,
    PluginProcessError,
    RestCustomExec01,
    prepare_code,
)

# The two code snippets of the README's "advanced quick-start", as shipped in examples/
# (test_snippets_are_verbatim checks them against the requirements document).
TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "distributed_primes"
WORKER_CODE = (TUTORIAL / "chain_dist_example_worker.py").read_text("utf-8")
INITIATOR_CODE = (TUTORIAL / "chain_dist_example_initiator.py").read_text("utf-8")

T0 = 1_700_000_000.0


class FakeNode:
    """A NodeApi: fixed identity, settable clock, recorded commands and log."""

    def __init__(self, alias: str = "init-node", address: str = "aixp_INIT", peers: list[dict[str, Any]] | None = None,
                 seed: int = 7) -> None:
        self._alias, self._address = alias, address
        self._rng = random.Random(seed)
        self.now = T0
        self.logs: list[str] = []
        self.commands: list[tuple[str, str, Any]] = []
        self.published: list[dict[str, Any]] = []
        self._peers = peers or []

    @property
    def alias(self) -> str:
        return self._alias

    @property
    def address(self) -> str:
        return self._address

    @property
    def rng(self) -> random.Random:
        return self._rng

    def time(self) -> float:
        return self.now

    def log(self, message: str) -> None:
        self.logs.append(message)

    def peers(self) -> list[Mapping[str, Any]]:
        return [dict(p) for p in self._peers]

    def send_command(self, target: str, action: str, payload: Any) -> None:
        self.commands.append((target, action, payload))

    def subscribe(self, address: str, handler: Callable[[str, bytes], None]) -> Callable[[], None]:
        return lambda: None

    def publish_payload(self, body: Mapping[str, Any], *, pipeline: str, signature: str, instance_id: str) -> None:
        self.published.append(dict(body))


def make(cls: type[SimPlugin], node: FakeNode, params: dict[str, Any], *, pipeline: str = "test_dist_jobs",
         instance_id: str = "inst02") -> Any:
    """Instantiate a plugin the way the node does: DEFAULTS overlaid by the client's params."""
    config = {**cls.DEFAULTS, **params}
    ctx = PluginContext(node=node, pipeline=pipeline, signature=cls.SIGNATURE, instance_id=instance_id,
                        pipeline_config={"NAME": pipeline, "TYPE": "Void"}, config=config)
    return cls(ctx)


def run_code(code: str, node: FakeNode | None = None, **params: Any) -> tuple[Any, Any]:
    """(plugin, payload or PluginProcessError) after one process() call."""
    plugin = make(CustomExec01, node or FakeNode(), {"CODE": code_to_base64(code), **params})
    try:
        return plugin, plugin.process([])
    except PluginProcessError as exc:
        return plugin, exc


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def peer(alias: str, address: str, node: FakeNode, age: float = 5.0, status: str = "ONLINE") -> dict[str, Any]:
    return {"alias": alias, "address": address, "last_seen": node.now - age, "heartbeat": {"DEVICE_STATUS": status}}


# -- the README tutorial --------------------------------------------------------------------------

def test_snippets_are_verbatim(spec_samples: Path) -> None:
    spec = spec_samples.parent / "requirements.md"
    if not spec.exists():
        pytest.skip(f"{spec} not available")
    blocks = re.findall(r"```python\n(.*?)```", spec.read_text("utf-8"), re.DOTALL)
    assert WORKER_CODE in blocks
    assert INITIATOR_CODE in blocks


def test_worker_finds_real_primes() -> None:
    node = FakeNode()
    worker = make(CustomExec01, node, {"CODE": code_to_base64(WORKER_CODE), "MAX_TRIES": 10},
                  pipeline="a1b2c3d4", instance_id="SIMPLE_C_EXEC")
    found = []
    for _ in range(300):
        payload = worker.process([])
        if payload is not None:
            assert payload["EXEC_ERRORS"] is None and payload["EXEC_WARNING"] == []
            assert payload["EXEC_ITER"] == worker.iteration
            found.append(payload["EXEC_RESULT"])
    assert len(found) >= 10, "the worker should find primes in a fair share of its calls"
    assert all(isinstance(n, int) and is_prime(n) for n in found), found


def test_worker_is_reproducible_per_node_seed() -> None:
    def primes(seed: int) -> list[Any]:
        w = make(CustomExec01, FakeNode(seed=seed), {"CODE": code_to_base64(WORKER_CODE), "MAX_TRIES": 10})
        return [p["EXEC_RESULT"] if p else None for p in (w.process([]) for _ in range(50))]

    assert primes(3) == primes(3)
    assert primes(3) != primes(4)


@pytest.mark.parametrize("prefix", ["aixp_", "0xai_"], ids=["AIXP", "RATIO1"])
def test_initiator_runs_the_distributed_job(prefix: str) -> None:
    node = FakeNode(alias="init-node", address=prefix + "INIT")
    node._peers = [
        peer("worker-a", prefix + "AAA", node),
        peer("worker-b", prefix + "BBB", node),
        peer("stale", prefix + "OLD", node, age=600),          # not heard for 10 minutes
        peer("broken", prefix + "BRK", node, status="EXCEPTION"),
        peer("init-node", prefix + "INIT", node),              # the node sees itself too
    ]
    worker_b64 = code_to_base64(WORKER_CODE)
    params = {"CODE": code_to_base64(INITIATOR_CODE), "MAX_TRIES": 10, "MAX_RUN_TIME": 60, "N_WORKERS": 2,
              "WORKER_CODE": worker_b64, "PROCESS_DELAY": 0.2}
    initiator = make(CustomExec01, node, params)

    # 1. setup: one UPDATE_CONFIG per worker, nothing emitted yet
    assert initiator.process([]) is None
    assert [(t, a) for t, a, _ in node.commands] == [("worker-a", "UPDATE_CONFIG"), ("worker-b", "UPDATE_CONFIG")]
    names = {}
    for target, _, pipe in node.commands:
        assert set(pipe) == {"NAME", "TYPE", "LIVE_FEED", "PLUGINS", "TIME"}
        assert pipe["TYPE"] == "Void" and pipe["LIVE_FEED"] is False
        assert re.fullmatch(r"[0-9a-f]{8}", pipe["NAME"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", pipe["TIME"])
        assert pipe["PLUGINS"] == [{"SIGNATURE": "CUSTOM_EXEC_01", "INSTANCES": [
            {"INSTANCE_ID": "SIMPLE_C_EXEC", "CODE": worker_b64, "MAX_TRIES": 10}]}]
        names[target] = pipe["NAME"]
    assert len(set(names.values())) == 2
    assert any("['worker-a', 'worker-b']" in line for line in node.logs)  # plugin.P(lst_workers)
    node.commands.clear()

    # 2. run each worker pipeline as its node would, and feed its payloads back as struct data
    expected: dict[str, list[int]] = {"worker-a": [], "worker-b": []}
    last = None
    for alias, name in names.items():
        wnode = FakeNode(alias=alias, seed=len(alias) + ord(alias[-1]))
        worker = make(CustomExec01, wnode, {"CODE": worker_b64, "MAX_TRIES": 10}, pipeline=name,
                      instance_id="SIMPLE_C_EXEC")
        sent = 0
        while sent < 3:
            out = worker.process([])
            if out is None:
                continue
            sent += 1
            expected[alias].append(out["EXEC_RESULT"])
            payload = {"EE_ID": alias, "STREAM_NAME": name, "SIGNATURE": "CUSTOM_EXEC_01", **out}
            node.now += 0.2
            last = initiator.process([InputItem(type="STRUCT_DATA", struct_data=payload)])
            assert last is not None and last["EXEC_RESULT"]["STATUS"] == "IN_PROGRESS"
    assert last is not None
    assert last["EXEC_RESULT"]["RESULTS"] == expected
    assert all(is_prime(n) for nums in expected.values() for n in nums)

    # payloads of other pipelines or nodes, and empty iterations, change nothing
    for foreign in ({"EE_ID": "worker-a", "STREAM_NAME": "other", "EXEC_RESULT": 4},
                    {"EE_ID": "init-node", "STREAM_NAME": "test_dist_jobs", "EXEC_RESULT": {"x": 1}},
                    {"SB_ID": "worker-b", "STREAM_NAME": names["worker-b"], "EXEC_RESULT": None}):
        assert initiator.process([InputItem(type="STRUCT_DATA", struct_data=foreign)]) is None
    node.now = T0 + 60.5
    assert initiator.process([]) is None
    assert node.commands == []

    # 3. after MAX_RUN_TIME on the node's clock: archive the workers' pipelines and its own
    node.now = T0 + 61.5
    done = initiator.process([])
    assert done is not None
    assert done["EXEC_RESULT"] == {"STATUS": "DONE", "RESULTS": expected}
    assert node.commands == [
        ("worker-a", "ARCHIVE_CONFIG", names["worker-a"]),
        ("worker-b", "ARCHIVE_CONFIG", names["worker-b"]),
        (prefix + "INIT", "ARCHIVE_CONFIG", "test_dist_jobs"),
    ]


def test_get_workers_includes_itself_last_and_returns_fewer_when_short() -> None:
    node = FakeNode()
    node._peers = [peer("zeta", "aixp_Z", node), peer("alpha", "aixp_A", node)]
    plugin = make(CustomExec01, node, {})
    assert plugin.api.deapi_get_wokers(2) == ["alpha", "zeta"]
    assert plugin.api.deapi_get_wokers(3) == ["alpha", "zeta", "init-node"]
    assert plugin.api.deapi_get_wokers(5) == ["alpha", "zeta", "init-node"]
    assert plugin.api.deapi_get_workers(0) == []
    with pytest.raises(ConfigError):
        plugin.api.deapi_get_wokers(-1)


def test_cmdapi_targets_and_defaults() -> None:
    node = FakeNode()
    api = make(CustomExec01, node, {}, pipeline="mine").api
    name = api.cmdapi_start_simple_custom_pipeline(base64code="eJwDAAAAAAE=", node_address="aixp_X", name="fixed",
                                                   instance_config={"A": 1}, B=2)
    assert name == "fixed"
    target, action, payload = node.commands[-1]
    assert (target, action) == ("aixp_X", "UPDATE_CONFIG")
    assert payload["PLUGINS"][0]["INSTANCES"][0] == {"INSTANCE_ID": "SIMPLE_C_EXEC", "CODE": "eJwDAAAAAAE=",
                                                     "A": 1, "B": 2}
    api.cmdapi_start_simple_custom_pipeline(base64code="eJwDAAAAAAE=")
    assert node.commands[-1][0] == node.address  # default target: the node itself
    api.cmdapi_archive_pipeline()
    assert node.commands[-1] == (node.address, "ARCHIVE_CONFIG", "mine")
    api.cmdapi_archive_pipeline(node_address="aixp_Y", name="p")
    assert node.commands[-1] == ("aixp_Y", "ARCHIVE_CONFIG", "p")
    api.cmdapi_send_instance_command("p", "S", "I", {"GO": 1}, dest="peer")
    target, action, payload = node.commands[-1]
    assert (target, action) == ("peer", "UPDATE_PIPELINE_INSTANCE")
    assert payload["INSTANCE_CONFIG"] == {"INSTANCE_COMMAND": {"GO": 1}}
    with pytest.raises(ConfigError):
        api.cmdapi_archive_pipeline(dest="a", node_address="b")
    with pytest.raises(ConfigError):
        api.cmdapi_start_simple_custom_pipeline(base64code="")


# -- checker, decoding, errors --------------------------------------------------------------------

def test_checker_rejections_match_the_nodes(vectors: Callable[[str], Any]) -> None:
    cases = [c for c in vectors("code_b64.json")["cases"] if c["kind"] == "encode_reject"]
    assert cases
    for case in cases:
        _, err = run_code(case["code"])
        assert isinstance(err, PluginProcessError), case["id"]
        assert err.payload is not None
        assert err.payload["EXEC_ERRORS"] == case["checker_errors"], case["id"]
        assert err.payload["EXEC_RESULT"] is None and err.payload["EXEC_ITER"] == 1


def test_rejected_code_is_not_run() -> None:
    plugin, err = run_code("plugin.int_cache['ran'] = 1\nimport os\n")
    assert isinstance(err, PluginProcessError)
    assert err.payload == {"EXEC_RESULT": None, "EXEC_ERRORS": {"Import forbidden for os ": [2]},
                           "EXEC_WARNING": [], "EXEC_ITER": 1}
    assert plugin.api.int_cache["ran"] == 0


@pytest.mark.parametrize("code", ["not base64 !!", "aGVsbG8=", 12345])
def test_undecodable_code(code: Any) -> None:
    plugin = make(CustomExec01, FakeNode(), {"CODE": code})
    with pytest.raises(PluginProcessError) as info:
        plugin.process([])
    assert info.value.payload is not None
    assert info.value.payload["EXEC_ERRORS"] == BAD_BASE64 == "Provided ascii data is not a valid base64 object"


def test_exception_gives_traceback_payload_and_notification_info() -> None:
    _, err = run_code("x = 1\nfor i in range(3):\n  x = x / (2 - i)\n_result = x\n")
    assert isinstance(err, PluginProcessError) and isinstance(err, PluginError)
    assert str(err) == "Exception in <stream='test_dist_jobs' sign='CUSTOM_EXEC_01' inst='inst02'>"
    trace = err.payload["EXEC_ERRORS"]  # type: ignore[index]
    assert trace.startswith("Traceback (most recent call last):\n")
    assert 'File "<string>", line 3, in <module>' in trace  # line numbers survive the rewriting
    assert trace.endswith("ZeroDivisionError: float division by zero\n")
    assert err.payload["EXEC_RESULT"] is None  # type: ignore[index]
    assert err.backoff == 10
    assert err.info.startswith("Reset/sleep plugin for 10s. Error in custom code execution: Traceback")
    assert "x = x / (2 - i)" in err.info  # the notification INFO carries the code
    _, err = run_code("raise SystemExit(3)\n")  # must not stop the simulated node
    assert isinstance(err, PluginProcessError) and "SystemExit: 3" in err.payload["EXEC_ERRORS"]  # type: ignore[index]


def test_attribute_errors_for_unknown_cfg_and_read_only_cfg() -> None:
    _, err = run_code("result = plugin.cfg_nope\n", MAX_TRIES=3)
    assert isinstance(err, PluginProcessError)
    assert "AttributeError" in err.payload["EXEC_ERRORS"]  # type: ignore[index]
    plugin, out = run_code("result = [plugin.cfg_max_tries, plugin.cfg_code[:4], plugin.cfg_process_delay]\n",
                           MAX_TRIES=3)
    assert out["EXEC_RESULT"] == [3, "eNor", 0.05]
    with pytest.raises(AttributeError):
        plugin.api.cfg_max_tries = 4


# -- execution model ------------------------------------------------------------------------------

def test_top_level_return_is_wrapped_in_a_function() -> None:
    _, out = run_code("x = 2\nif x:\n  return x * 21\nresult = 0\n")
    assert out["EXEC_RESULT"] == 42
    _, out = run_code("def f():\n  return 5\nresult = f()\n")  # a nested return does not wrap
    assert out["EXEC_RESULT"] == 5
    _, out = run_code("return None\n")
    assert out is None


def test_result_names_and_their_priority() -> None:
    assert run_code("result = 3\n_result = 2\n__result = 1\n")[1]["EXEC_RESULT"] == 1
    assert run_code("result = 3\n_result = 2\n")[1]["EXEC_RESULT"] == 2
    assert run_code("result = 3\n")[1]["EXEC_RESULT"] == 3
    assert run_code("x = 3\n")[1] is None


def test_fresh_namespace_per_call_but_caches_persist() -> None:
    node = FakeNode()
    code = ("try:\n  prev_defined = leftover\nexcept NameError:\n  prev_defined = False\nleftover = 1\n"
            "plugin.int_cache['n'] += 1\n"
            "result = [plugin.int_cache['n'], plugin.obj_cache['missing'], plugin.str_cache['s'], "
            "plugin.float_cache['f'], prev_defined]\n")
    plugin = make(CustomExec01, node, {"CODE": code_to_base64(code)})
    assert plugin.process([])["EXEC_RESULT"] == [1, None, "", 0.0, False]
    assert plugin.process([])["EXEC_RESULT"] == [2, None, "", 0.0, False]


def test_print_and_P_go_to_the_node_log() -> None:
    node = FakeNode()
    run_code("print('hello', 42)\nplugin.P({'a': 1}, color='g')\n", node)
    assert "hello 42" in node.logs
    assert "[test_dist_jobs:CUSTOM_EXEC_01:inst02] {'a': 1}" in node.logs


def test_helpers_follow_the_node_clock() -> None:
    node = FakeNode()
    code = ("if plugin.obj_cache['t0'] is None:\n  plugin.obj_cache['t0'] = plugin.datetime.now()\n"
            "plugin.sleep(30)\n"
            "result = [(plugin.datetime.now() - plugin.obj_cache['t0']).seconds, plugin.time(), "
            "isinstance(plugin.datetime.now(), plugin.datetime), plugin.timedelta(seconds=1).seconds, "
            "plugin.json.dumps([1]), len(plugin.uuid(8)), plugin.np.sqrt(16.0), plugin.ee_id, plugin.node_addr]\n")
    plugin = make(CustomExec01, node, {"CODE": code_to_base64(code)})
    assert plugin.process([])["EXEC_RESULT"] == [0, T0, True, 1, "[1]", 8, 4.0, "init-node", "aixp_INIT"]
    node.now += 75
    assert plugin.process([])["EXEC_RESULT"][:2] == [75, T0 + 75]


def test_idle_payload_after_send_manifest_each() -> None:
    node = FakeNode()
    plugin = make(CustomExec01, node, {"CODE": code_to_base64("x = 1\n"), "SEND_MANIFEST_EACH": 30})
    assert plugin.process([]) is None
    node.now += 29
    assert plugin.process([]) is None
    node.now += 2
    idle = plugin.process([])
    assert idle is not None
    assert idle["EXEC_RESULT"] is None and idle["EXEC_WARNING"] is None and idle["EXEC_ITER"] == 3
    assert idle["EXEC_ERRORS"] == ("Custom plugin test_dist_jobs:CUSTOM_EXEC_01:inst02 was idle past 31.0s "
                                   "(code available)")
    assert plugin.process([]) is None  # the idle timer restarted
    empty = make(CustomExec01, node, {"SEND_MANIFEST_EACH": 5})
    node.now += 6
    assert "(IDLE DUE TO NO CODE PROVIDED)" in empty.process([])["EXEC_ERRORS"]


def test_custom_result_keys() -> None:
    _, out = run_code("result = 1\n", RESULT_KEY="my_res", ERROR_KEY="my_err", WARNING_KEY="my_warn")
    assert out == {"MY_RES": 1, "MY_ERR": None, "MY_WARN": [], "EXEC_ITER": 1}


def test_dataapi_reads_the_current_inputs() -> None:
    code = "result = [plugin.dataapi_struct_data(), len(plugin.dataapi_struct_datas()), plugin.dataapi_image()]\n"
    plugin = make(CustomExec01, FakeNode(), {"CODE": code_to_base64(code)})
    items = [InputItem(type="STRUCT_DATA", struct_data={"A": 1}), InputItem(type="STRUCT_DATA", struct_data={"B": 2})]
    assert plugin.process(items)["EXEC_RESULT"] == [{"A": 1}, 2, None]
    assert plugin.process([])["EXEC_RESULT"] == [None, 0, None]


# -- REST_CUSTOM_EXEC_01 --------------------------------------------------------------------------

def test_rest_exec_runs_once_per_request_and_lifts_root_payload_data() -> None:
    node = FakeNode()
    code = "plugin.int_cache['runs'] += 1\nresult = {'value': plugin.int_cache['runs'], " \
           "'ROOT_PAYLOAD_DATA': {'extra': 'yes'}}\n"
    request = {"DATA": {"CODE": code_to_base64(code)}, "TIMESTAMP": T0}
    plugin = make(RestCustomExec01, node, {"REQUEST": request, "RESULT_KEY": "REST_EXECUTION_RESULT",
                                           "ERROR_KEY": "REST_EXECUTION_ERROR"},
                  instance_id="p_rest_custom_exec_synchronous_0")
    assert RestCustomExec01.DEFAULTS["ALLOW_EMPTY_INPUTS"] is False
    out = plugin.process([InputItem(type="IMG")])
    assert out == {"EXTRA": "yes", "REST_EXECUTION_RESULT": {"value": 1, "ROOT_PAYLOAD_DATA": {"extra": "yes"}},
                   "REST_EXECUTION_ERROR": None, "EXEC_WARNING": []}
    assert plugin.process([InputItem(type="IMG")]) is None  # same request: not run again
    plugin.on_config({**plugin.config, "REQUEST": {**request, "TIMESTAMP": T0 + 1}})
    assert plugin.process([InputItem(type="IMG")])["REST_EXECUTION_RESULT"]["value"] == 2


@pytest.mark.parametrize("request_, error", [
    ({"DATA": "x"}, "Request does not comply with the given manifest"),
    ({"DATA": {"CODE": ""}}, "Received empty CODE"),
    ({"DATA": {"CODE": "%%%"}}, BAD_BASE64),
])
def test_rest_exec_errors(request_: Any, error: str) -> None:
    plugin = make(RestCustomExec01, FakeNode(), {"REQUEST": request_})
    with pytest.raises(PluginProcessError) as info:
        plugin.process([])
    assert info.value.payload == {"EXEC_RESULT": None, "EXEC_ERRORS": error, "EXEC_WARNING": []}


def test_loops_get_a_cooperative_sleep() -> None:
    assert "sleep" in prepare_code("for i in range(2):\n  x = i\n").co_names
    assert "sleep" in prepare_code("while False:\n  pass\n").co_names
    assert "sleep" not in prepare_code("x = [i for i in range(3)]\n").co_names


# -- the small test plugins of the catalog -------------------------------------------------------

def test_simple_counter_and_echo() -> None:
    node = FakeNode()
    counter = make(SimpleCounter, node, {})
    assert SimpleCounter.DEFAULTS["ALLOW_EMPTY_INPUTS"] is True
    assert [counter.process([])["COUNTER"] for _ in range(3)] == [1, 2, 3]
    assert counter.on_command("RESET") == 3
    assert counter.process([InputItem(type="STRUCT_DATA", struct_data={})]) == {"COUNTER": 1, "NR_INPUTS": 1}
    echo = make(SimpleEcho, node, {})
    assert echo.process([]) is None
    assert echo.process([InputItem(type="STRUCT_DATA", struct_data={"A": 1})]) == [{"ECHO": {"A": 1}}]
