"""pye2's public API against a real naeural-core 7.7.336 node, in both signing modes.

The requirements document's tutorials, step by step: heartbeats, create a
pipeline, custom code and its results, instance config update, instance
command, ``wait_exec``, archive; and the refusals: forbidden custom code
(client check, then the node's own), a session the node does not allow-list
(``NotAllowed``), a command on a pipeline the node does not have, a command
signed for the other signing mode. Every confirmation is timed (summary at the
end of the run). Fixtures: ``conftest.py`` (opt-in: ``PYE2_INTEROP=1`` or ``-m interop``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import pytest
from node_oracle import same_body

from pye2 import Identity
from pye2.errors import CodeCheckError, CommandFailed, CommandTimeout, NotAllowed, Pye2Error

pytestmark = pytest.mark.interop

CUSTOM = "CUSTOM_EXEC_01"
COUNTER_CODE = """
plugin.int_cache['n'] += 1
result = {'n': plugin.int_cache['n'], 'greeting': plugin.cfg_greeting}
"""
FORBIDDEN_CODE = "import os\nresult = os.getcwd()\n"


def _name(tag: str) -> str:
    return f"it_{tag}_{uuid.uuid4().hex[:6]}"


def _archive_quietly(pipe: Any) -> None:
    if pipe is not None and not pipe.closed:
        with contextlib.suppress(Pye2Error):  # cleanup only: the node is killed at the end anyway
            pipe.close().wait(15)


def _wait(client: Any, pred: Any, timeout: float) -> bool:
    return bool(client.session.wait(pred, timeout))


def _start_counter(client: Any, latency: Any, tag: str, results: list[tuple[float, Any]]) -> tuple[Any, Any]:
    """A Void pipeline running the counter code (1 result/s); its results go to ``results``."""
    sess, node = client.session, client.node
    pipe = sess.create_pipeline(e2id=node.address, name=_name(tag), data_source="Void", wait=True)

    def on_data(_pipe: Any, result: Any) -> None:
        results.append((time.monotonic(), result))

    with latency("start_custom_plugin confirmed"):
        inst = pipe.start_custom_plugin(instance_id="counter", plain_code=COUNTER_CODE,
                                        params={"GREETING": "hello", "PROCESS_DELAY": 1}, on_data=on_data)
        inst.confirmation.result(30)
    return pipe, inst


# --------------------------------------------------------------------------- hello world
def test_heartbeats_arrive_and_node_is_online(node: Any, session_factory: Any, latency: Any) -> None:
    seen: list[Any] = []
    sess = session_factory(node.client_identity, heartbeats=seen)
    sess.connect()
    with latency("first heartbeat (node online in a new session)"):
        assert sess.wait_for_node(node.address, 3 * node.hb_seconds + 5), sess.stats.as_dict()
    assert node.address in sess.get_active_nodes()
    assert sess.check_node_online(node.address)
    assert sess.get_node_alias(node.address) == node.alias
    assert sess.get_node_address(node.alias) == node.address
    assert sess.address == node.client_identity.address(sess.profile)
    assert sess.wait(lambda: bool(seen), 2 * node.hb_seconds + 5), "no heartbeat reached on_heartbeat"
    hb = seen[-1]
    assert hb.e2id == node.address  # RATIO1: callbacks get the address
    assert hb.status == "ONLINE"
    assert hb.secured is True
    assert "admin_pipeline" in hb.pipelines
    assert any(same_body(a, sess.address) for a in hb.whitelist), hb.whitelist
    assert "admin_pipeline" in (sess.get_active_pipelines(node.address) or {})
    # eth="auto": the session learned the node's signing mode from its messages
    assert sess.signing_mode(node.address) is node.eth
    stats = sess.stats.as_dict()
    assert stats["rejected"] == {}, stats  # every message of the node verified, in either mode
    assert stats["delivered"].get("heartbeat", 0) >= 1


# --------------------------------------------------------------------------- pipelines
def test_create_pipeline_confirmed(client: Any, latency: Any) -> None:
    sess, node = client.session, client.node
    name, pipe = _name("create"), None
    try:
        with latency("create_pipeline(Void) confirmed"):
            pipe = sess.create_pipeline(e2id=node.address, name=name, data_source="Void", wait=True)
        assert pipe.confirmation.ok is True
        hb = client.next_heartbeat(time.monotonic(), 2 * node.hb_seconds + 5)
        assert hb is not None and name in hb.pipelines, hb
        assert name in (sess.get_active_pipelines(node.address) or {})
    finally:
        _archive_quietly(pipe)


def test_custom_code_results(client: Any, latency: Any) -> None:
    results: list[tuple[float, Any]] = []
    t0 = time.monotonic()
    pipe, _inst = _start_counter(client, latency, "custom", results)
    try:
        with latency("first custom-code result after start"):
            assert _wait(client, lambda: bool(results), 20), "no result from the custom code"
        assert _wait(client, lambda: len(results) >= 3, 10)
        values = [r for _, r in results]
        assert values[0] == {"n": 1, "greeting": "hello"}, values
        assert [v["n"] for v in values[:3]] == [1, 2, 3]  # state lives in plugin.int_cache
        assert results[0][0] > t0
    finally:
        _archive_quietly(pipe)


def test_update_instance_config_confirmed(client: Any, latency: Any) -> None:
    results: list[tuple[float, Any]] = []
    pipe, inst = _start_counter(client, latency, "update", results)
    try:
        assert _wait(client, lambda: len(results) >= 2, 20), "no result from the custom code"
        with latency("update_instance_config confirmed"):
            pipe.update_instance_config(CUSTOM, "counter", {"GREETING": "bye"}).result(30)
        assert inst.config.get("GREETING") == "bye"
        assert _wait(client, lambda: any(r["greeting"] == "bye" for _, r in results), 15), results[-3:]
        last_hello = max(r["n"] for _, r in results if r["greeting"] == "hello")
        first_bye = next(r for _, r in results if r["greeting"] == "bye")
        assert first_bye["n"] > last_hello  # reconfigured in place: plugin.int_cache survived
    finally:
        _archive_quietly(pipe)


def test_command_pending_across_heartbeats_is_confirmed(client: Any, latency: Any) -> None:
    """An allow-listed session's command still pending when heartbeats arrive is not failed as NotAllowed.

    The code naps longer than a heartbeat period, so the node confirms the
    update (code 100, after the instance's next run) only after at least one
    heartbeat went by; that heartbeat lists the session in ``EE_WHITELIST``.
    """
    sess, node = client.session, client.node
    pipe = sess.create_pipeline(e2id=node.address, name=_name("slow"), data_source="Void", wait=True)
    nap = node.hb_seconds + 1
    try:
        inst = pipe.start_custom_plugin(instance_id="sleeper", params={"NAP": nap, "PROCESS_DELAY": 0},
                                        plain_code="plugin.sleep(plugin.cfg_nap)\nresult = plugin.cfg_nap\n")
        inst.confirmation.result(30)
        time.sleep(1)  # the instance is inside its nap now
        t0 = time.monotonic()
        with latency(f"update_instance_config while the instance naps {nap} s (pending across heartbeats)"):
            conf = pipe.update_instance_config(CUSTOM, "sleeper", {"NAP": 1})
            ok = conf.wait(3 * nap + 10)
        t1 = time.monotonic()
        crossed = [h for h in node.heartbeats(t0) if h.at <= t1]
        assert crossed, "no heartbeat while the command was pending: the scenario was not exercised"
        assert all(any(same_body(a, sess.address) for a in h.body.get("EE_WHITELIST") or []) for h in crossed)
        assert ok, f"{conf.error!r} (the heartbeats in between listed the session: {crossed[0].body['EE_WHITELIST']})"
    finally:
        _archive_quietly(pipe)


def test_instance_command_confirmed(client: Any, latency: Any) -> None:
    results: list[tuple[float, Any]] = []
    pipe, inst = _start_counter(client, latency, "command", results)
    try:
        with latency("send_instance_command confirmed"):
            inst.send_instance_command("PING").result(30)
        with latency("send_instance_command with params confirmed"):
            pipe.send_instance_command(CUSTOM, "counter", {"OP": "RESET"}, reason="interop").result(30)
    finally:
        _archive_quietly(pipe)


def test_wait_exec_twice(client: Any, latency: Any) -> None:
    sess, node = client.session, client.node
    pipe = sess.create_pipeline(e2id=node.address, name=_name("exec"), data_source="Void", wait=True)
    try:
        with latency("wait_exec #1"):
            first = pipe.wait_exec(plain_code="result = 6 * 7", timeout=30)
        with latency("wait_exec #2 (same pipeline)"):
            second = pipe.wait_exec(plain_code="result = {'again': plugin.np.sum([1, 2, 3]).item()}", timeout=30)
        assert first == (42, None)
        assert second == ({"again": 6}, None)
    finally:
        _archive_quietly(pipe)


def test_archive_confirmed_and_gone_from_heartbeat(client: Any, latency: Any) -> None:
    results: list[tuple[float, Any]] = []
    pipe, _inst = _start_counter(client, latency, "archive", results)
    assert _wait(client, lambda: bool(results), 20)
    assert pipe.name in (client.session.get_active_pipelines(client.node.address) or {}) or \
        client.next_heartbeat(time.monotonic(), 2 * client.node.hb_seconds + 5) is not None
    with latency("close (ARCHIVE_CONFIG) confirmed"):
        pipe.close().result(30)
    done = time.monotonic()
    assert pipe.closed
    hb = client.next_heartbeat(done, 2 * client.node.hb_seconds + 5)
    assert hb is not None, "no heartbeat after the archive"
    assert pipe.name not in hb.pipelines, hb.pipelines
    assert pipe.name not in (client.session.get_active_pipelines(client.node.address) or {})
    # and the node really stopped it: nothing from it on the wire after the next heartbeat
    late = client.node.sniffer.select(lambda w: w.kind == "PAYLOAD" and w.body.get("STREAM_NAME") == pipe.name,
                                      since=hb.at + 1)
    assert late == []


# --------------------------------------------------------------------------- refusals
def test_forbidden_code_refused_before_sending(client: Any) -> None:
    sess, node = client.session, client.node
    pipe = sess.create_pipeline(e2id=node.address, name=_name("forbid"), data_source="Void", wait=True)
    try:
        sent = sess.stats.as_dict()["commands_sent"]
        t0 = time.monotonic()
        with pytest.raises(CodeCheckError) as err:
            pipe.start_custom_plugin(instance_id="bad", plain_code=FORBIDDEN_CODE)
        assert any("os" in msg for msg in err.value.errors), err.value.errors
        assert sess.stats.as_dict()["commands_sent"] == sent
        assert pipe.config.get_instance(CUSTOM, "bad") is None
        time.sleep(1.0)
        to_node = node.sniffer.select(lambda w: w.topic == f"{node.root}/{node.address}/config", since=t0)
        assert to_node == [], "a command left for the node"
    finally:
        _archive_quietly(pipe)


def test_forbidden_code_unchecked_node_answers_exec_errors(client: Any, latency: Any) -> None:
    sess, node = client.session, client.node
    pipe = sess.create_pipeline(e2id=node.address, name=_name("forbid2"), data_source="Void", wait=True)
    got: list[tuple[Any, Any]] = []
    try:
        with latency("start_custom_plugin(check=False) confirmed"):
            inst = pipe.start_custom_plugin(
                instance_id="bad", plain_code=FORBIDDEN_CODE, check=False, params={"PROCESS_DELAY": 1},
                on_data=lambda _p, result, payload: got.append((result, payload)))
            inst.confirmation.result(30)
        with latency("node's EXEC_ERRORS for forbidden code"):
            assert _wait(client, lambda: any(p.get("EXEC_ERRORS") for _, p in got), 20), got
        result, payload = next((r, p) for r, p in got if p.get("EXEC_ERRORS"))
        assert result is None
        assert "os" in str(payload["EXEC_ERRORS"]) and "mport" in str(payload["EXEC_ERRORS"]), payload["EXEC_ERRORS"]
    finally:
        _archive_quietly(pipe)


def test_not_allowed_session_gets_notallowed(node: Any, session_factory: Any, latency: Any) -> None:
    stranger = session_factory(Identity.generate(), name="pye2-stranger")
    stranger.connect()
    assert stranger.wait_for_node(node.address, 3 * node.hb_seconds + 5)
    name = _name("stranger")
    t0 = time.monotonic()
    with latency("NotAllowed raised (from the send)"):
        pipe = stranger.create_pipeline(e2id=node.address, name=name, data_source="Void")
        with pytest.raises(NotAllowed) as err:
            pipe.confirmation.result(3 * node.hb_seconds + 10)
    dt = time.monotonic() - t0
    assert isinstance(err.value, CommandFailed)
    assert err.value.address == stranger.address
    assert stranger.address in str(err.value)
    assert dt <= node.hb_seconds + 3, f"NotAllowed took {dt:.1f} s, more than one heartbeat period"
    stats = stranger.stats.as_dict()
    assert stats["commands_failed"] == 1 and stats["commands_timed_out"] == 0, stats
    hb = node.sniffer.wait_for(lambda w: w.kind == "HEARTBEAT" and w.topic == f"{node.root}/ctrl",
                               2 * node.hb_seconds + 5, since=time.monotonic())
    assert hb is not None
    assert name not in [p.get("NAME") for p in hb.body.get("CONFIG_STREAMS") or []]


def test_command_on_unknown_pipeline_fails_with_node_text(client: Any, latency: Any) -> None:
    results: list[tuple[float, Any]] = []
    pipe, _inst = _start_counter(client, latency, "gone", results)
    sess, node = client.session, client.node
    try:
        t0 = time.monotonic()
        sess.send_command(node.address, "DELETE_CONFIG", pipe.name)  # removed behind the handle's back
        gone = node.sniffer.wait_for(lambda w: w.kind == "NOTIFICATION" and pipe.name in str(w.body.get(
            "NOTIFICATION")) and "deleted" in str(w.body.get("NOTIFICATION")), 15, since=t0)
        assert gone is not None, "the node did not report the deletion"
        assert not pipe.closed
        with pytest.raises(CommandFailed) as err, latency("command on a pipeline the node lacks -> CommandFailed"):
            pipe.update_instance_config(CUSTOM, "counter", {"GREETING": "x"}).result(30)
        assert not isinstance(err.value, (NotAllowed, CommandTimeout))
        assert err.value.code == -1, err.value
        assert err.value.node_text and "Non existant stream" in err.value.node_text, err.value.node_text
        assert pipe.name in str(err.value)
    finally:
        _archive_quietly(pipe)


def test_other_signing_mode(node: Any, session_factory: Any, latency: Any) -> None:
    """A command signed for the other mode: an ETH-off node refuses it (-5000, at once); an ETH node takes both."""
    other = Identity.generate()
    sess = session_factory(other, name="pye2-othermode", eth=not node.eth)
    node.allow(sess.address)
    t_allow = time.monotonic()
    listed = node.sniffer.wait_for(
        lambda w: w.kind == "HEARTBEAT" and any(same_body(a, sess.address) for a in w.body.get("EE_WHITELIST") or []),
        4 * node.hb_seconds + 5, since=t_allow)
    assert listed is not None, "the node's heartbeat never listed the new address"
    sess.connect()
    assert sess.wait_for_node(node.address, 3 * node.hb_seconds + 5)
    pipe = sess.create_pipeline(e2id=node.address, name=_name("mode"), data_source="Void")
    try:
        if node.eth:
            with latency("plain-signed command to an ETH node confirmed"):
                pipe.confirmation.result(30)
        else:
            with pytest.raises(CommandFailed) as err, latency("ETH-signed command to an ETH-off node -> -5000"):
                pipe.confirmation.result(30)
            assert not isinstance(err.value, NotAllowed)
            assert err.value.code == -5000, err.value
            assert "invalid command" in (err.value.node_text or ""), err.value.node_text
    finally:
        _archive_quietly(pipe)


def test_command_stats(client: Any) -> None:
    """Last: the allow-listed session's counters over the whole run on this node."""
    stats = client.session.stats.as_dict()
    print(f"[interop] {client.node.mode}: client stats {stats}")
    assert stats["commands_sent"] > 0
    assert stats["commands_confirmed"] > 0
    assert stats["commands_timed_out"] == 0, stats
    assert stats["rejected"] == {}, stats
