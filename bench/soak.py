"""``python -m bench.soak``: a session under hostile traffic for minutes, beside a genuine node.

Three kinds of process share the local Mosquitto under a private root topic:

* the **session** under test (``python -m bench.soak session``): a pye2
  ``Session`` (RATIO1, ``verify="strict"``) logging to a file; it reports its
  peak RSS, the bytes of its log, what reached its payload callback and its
  ``stats`` at the end;
* a **genuine node** (``python -m bench.soak node``): a fixed key, a signed v2
  heartbeat every 2 s and numbered payloads (``SOAK_N``, ``SOAK_SENT_AT``) at
  ``--node-rate`` per second;
* an **attacker** (``python -m bench.soak attack``) with keys of its own, at
  ``--rate`` messages per second: payloads, heartbeats and notifications
  claiming the genuine node (payloads marked ``SOAK_FORGED``), replays of the
  node's own payloads captured from the broker, unsigned messages with a
  unique 1 MB ``EE_SENDER`` full of line breaks and terminal escapes, heartbeats
  from fresh keys with a 6 MB incompressible status, and 4 MB payloads (the
  large ones a few per second).

The orchestrator (``python -m bench.soak``) runs them for ``--seconds`` and
prints a table and one JSON line: peak RSS of the session, log bytes,
genuine payloads sent / delivered / lost, their delivery latency (median,
p99, max), forged payloads delivered and payloads delivered twice, and the
session's counters. PASS/FAIL lines check peak RSS < 200 MB, nothing genuine
lost, nothing forged or replayed delivered. Talks only to 127.0.0.1; every
loop is bounded in time. Not part of CI (minutes); ``--smoke`` is a seconds-long
run with small hostile sizes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NODE = "soak-node"
PIPE = "soak-pipe"
RSS_LIMIT_MB = 200.0


def _client(host: str, port: int, name: str) -> Any:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:8]}")
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client


def _node_key() -> Any:
    from pye2.wire import Identity

    return Identity.from_private_bytes(bytes.fromhex("11" * 32))


def _heartbeat(identity: Any, name: str, seq: int, status: dict[str, Any] | None = None) -> bytes:
    from pye2.wire import RATIO1, encode_heartbeat, sign_message

    status = status or {"CPU": "soak", "DEVICE_STATUS": "ONLINE", "SECURED": True, "EE_WHITELIST": [],
                        "CONFIG_STREAMS": [{"NAME": PIPE, "TYPE": "Void", "PLUGINS": []}]}
    body = {"EE_ID": name, "EE_EVENT_TYPE": "HEARTBEAT", "EE_MESSAGE_SEQ": seq, **encode_heartbeat(status)}
    return json.dumps(sign_message(body, identity, profile=RATIO1)).encode()


def _payload(identity: Any, seq: int, **extra: Any) -> bytes:
    from pye2.wire import RATIO1, sign_message

    body = {"EE_ID": NODE, "EE_EVENT_TYPE": "PAYLOAD", "EE_MESSAGE_SEQ": seq, "STREAM": PIPE,
            "SIGNATURE": "SOAK_SIG", "INSTANCE_ID": "inst", "EE_PAYLOAD_PATH": [NODE, PIPE, "SOAK_SIG", "inst"],
            **extra}
    return json.dumps(sign_message(body, identity, profile=RATIO1)).encode()


# -- the genuine node ----------------------------------------------------------------------------------
def run_node(a: argparse.Namespace) -> None:
    identity = _node_key()
    client = _client(a.host, a.port, "soak-node")
    end = time.time() + a.seconds
    n = hb = 0
    next_hb = 0.0
    gap = 1.0 / a.node_rate
    next_pl = time.time()
    while time.time() < end:
        now = time.time()
        if now >= next_hb:
            hb += 1
            client.publish(f"{a.root}/ctrl", _heartbeat(identity, NODE, hb))
            next_hb = now + 2.0
        if now >= next_pl:
            n += 1
            client.publish(f"{a.root}/payloads", _payload(identity, n, SOAK_N=n, SOAK_SENT_AT=now))
            next_pl += gap
        time.sleep(max(0.0, min(next_pl, next_hb) - time.time()))
    time.sleep(0.5)
    client.loop_stop()
    print(json.dumps({"node_sent": n, "heartbeats": hb}), flush=True)


# -- the attacker --------------------------------------------------------------------------------------
def run_attack(a: argparse.Namespace) -> None:
    from pye2.wire import RATIO1, Identity, sign_message

    rnd = random.Random(7)
    evil = Identity.generate()
    client = _client(a.host, a.port, "soak-attacker")
    captured: list[bytes] = []
    client.on_message = lambda _c, _u, msg: captured.append(bytes(msg.payload)) if len(captured) < 5000 else None
    client.subscribe(f"{a.root}/payloads")
    big = 64 * 1024 if a.smoke else 4 * 1024 * 1024
    sender_size = 16 * 1024 if a.smoke else 1024 * 1024
    status_size = 256 * 1024 if a.smoke else 3 * 1024 * 1024
    counts: dict[str, int] = {}
    end = time.time() + a.seconds
    gap = 1.0 / a.rate
    slow_every = max(1, int(a.rate / 2))  # the large kinds: about 2 per second each
    i = 0
    t_next = time.time()
    while time.time() < end:
        i += 1
        kind = rnd.choices(["payload", "heartbeat", "notification", "replay"], [5, 2, 2, 3])[0]
        if i % slow_every == 0:
            kind = ("unsigned_huge_sender", "fresh_key_big_status", "big_payload")[(i // slow_every) % 3]
        if kind == "payload":
            body = _payload(evil, 10**9 + i, SOAK_FORGED=True)
            topic = "payloads"
        elif kind == "heartbeat":
            body = _heartbeat(evil, NODE, 10**9 + i)
            topic = "ctrl"
        elif kind == "notification":
            msg = {"EE_ID": NODE, "EE_EVENT_TYPE": "NOTIFICATION", "NOTIFICATION_CODE": 4, "STREAM_NAME": PIPE,
                   "NOTIFICATION": "archived", "EE_PAYLOAD_PATH": [NODE, PIPE, None, None], "SOAK_I": i}
            body = json.dumps(sign_message(msg, evil, profile=RATIO1)).encode()
            topic = "notif"
        elif kind == "replay":
            if not captured:
                continue
            body = rnd.choice(captured)
            topic = "payloads"
        elif kind == "unsigned_huge_sender":
            sender = f"0xai_{i}\n2026-01-01 ERROR forged log line \x1b[31m" + "A" * sender_size
            body = json.dumps({"EE_ID": f"x{i}", "EE_EVENT_TYPE": "PAYLOAD", "EE_SENDER": sender, "EE_SIGN": "x",
                               "EE_HASH": "y", "STREAM": PIPE}).encode()
            topic = "payloads"
        elif kind == "fresh_key_big_status":
            body = _heartbeat(Identity.generate(), f"bloat-{i}", 1,
                              {"CPU": "x", "NOISE": os.urandom(status_size).hex()})
            topic = "ctrl"
        else:
            body = _payload(evil, 2 * 10**9 + i, SOAK_FORGED=True, BLOB="B" * big)
            topic = "payloads"
        client.publish(f"{a.root}/{topic}", body)
        counts[kind] = counts.get(kind, 0) + 1
        t_next += gap
        delay = t_next - time.time()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:
            t_next = time.time()  # cannot keep up: do not burst to catch up
    time.sleep(0.5)
    client.loop_stop()
    print(json.dumps({"attack_sent": counts}), flush=True)


# -- the session under test ---------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_session(a: argparse.Namespace) -> None:
    from pye2 import Identity, Session

    log_path = Path(a.log)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    seen: dict[int, float] = {}
    latencies: list[float] = []
    forged = [0]
    twice = [0]
    lock = threading.Lock()

    def on_payload(_s: Any, e2id: str, _pipe: Any, _sig: Any, _inst: Any, data: Any) -> None:
        now = time.time()
        with lock:
            if data.get("SOAK_FORGED"):
                forged[0] += 1
                return
            n = data.get("SOAK_N")
            if not isinstance(n, int):
                return
            if n in seen:
                twice[0] += 1
                return
            seen[n] = now
            latencies.append(now - float(data["SOAK_SENT_AT"]))

    session = Session(profile="RATIO1", transport=f"mqtt://{a.host}:{a.port}", root_topic=a.root,
                      identity=Identity.generate(), name="soak", verify="strict", silent=False,
                      on_payload=on_payload)
    session.connect()
    print(json.dumps({"ready": True}), flush=True)
    time.sleep(a.seconds)
    stats = session.stats.as_dict()
    session.close()
    handler.flush()
    lat = sorted(latencies)
    out = {
        "peak_rss_mb": round(_peak_rss_mb(), 1), "log_bytes": log_path.stat().st_size,
        "genuine_delivered": len(seen), "forged_delivered": forged[0], "delivered_twice": twice[0],
        "latency_ms": {"median": round(1000 * statistics.median(lat), 2) if lat else None,
                       "p99": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2) if lat else None,
                       "max": round(1000 * lat[-1], 2) if lat else None},
        "stats": stats,
    }
    print(json.dumps(out), flush=True)


# -- the orchestrator ---------------------------------------------------------------------------------
def _spawn(role: str, a: argparse.Namespace, seconds: float, extra: list[str] | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.soak", role, "--host", a.host, "--port", str(a.port), "--root", a.root,
           "--seconds", str(seconds), "--rate", str(a.rate), "--node-rate", str(a.node_rate),
           *(["--smoke"] if a.smoke else []), *(extra or [])]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)


def _last_json(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": f"exit {proc.returncode}, no result"}


def orchestrate(a: argparse.Namespace) -> int:
    log_file = Path(a.log or f"/tmp/pye2-soak-{os.getpid()}.log")
    session = _spawn("session", a, a.seconds + 6, ["--log", str(log_file)])
    assert session.stdout is not None
    ready = session.stdout.readline()
    if "ready" not in ready:
        print("soak: the session did not start", file=sys.stderr)
        return 1
    node = _spawn("node", a, a.seconds)
    time.sleep(1.0)  # the node's first heartbeat binds its name before the attacker speaks
    attacker = _spawn("attack", a, a.seconds - 1)
    node_res = _last_json(node, a.seconds + 60)
    attack_res = _last_json(attacker, a.seconds + 60)
    res = _last_json(session, a.seconds + 90)
    res.update(node_res)
    res.update(attack_res)
    res["genuine_lost"] = res.get("node_sent", 0) - res.get("genuine_delivered", 0)
    res["seconds"] = a.seconds
    res["rate"] = a.rate
    _report(res)
    return 0


def _report(res: dict[str, Any]) -> None:
    lat = res.get("latency_ms", {})
    stats = res.get("stats", {})
    rows = [
        ("duration / hostile rate", f"{res['seconds']} s / {res['rate']} msg/s"),
        ("hostile messages sent", json.dumps(res.get("attack_sent", {}))),
        ("peak RSS of the session", f"{res.get('peak_rss_mb')} MB"),
        ("log bytes written", f"{res.get('log_bytes')}"),
        ("genuine sent / delivered / lost",
         f"{res.get('node_sent')} / {res.get('genuine_delivered')} / {res.get('genuine_lost')}"),
        ("genuine latency median / p99 / max", f"{lat.get('median')} / {lat.get('p99')} / {lat.get('max')} ms"),
        ("forged delivered / delivered twice", f"{res.get('forged_delivered')} / {res.get('delivered_twice')}"),
        ("rejected", json.dumps(stats.get("rejected", {}))),
        ("received / dropped / in flight",
         f"{stats.get('received')} / {stats.get('dropped')} / {stats.get('in_flight')}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    checks = [("peak RSS < 200 MB", (res.get("peak_rss_mb") or 1e9) < RSS_LIMIT_MB),
              ("no genuine payload lost", res.get("genuine_lost") == 0),
              ("nothing forged delivered", res.get("forged_delivered") == 0),
              ("nothing delivered twice", res.get("delivered_twice") == 0)]
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(json.dumps(res), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    ap.add_argument("role", nargs="?", default="run", choices=["run", "session", "node", "attack"])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--rate", type=float, default=3000.0, help="hostile messages per second")
    ap.add_argument("--node-rate", type=float, default=200.0, dest="node_rate", help="genuine payloads per second")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--root", default=None, help="topic root (default: a fresh one)")
    ap.add_argument("--log", default=None, help="the session's log file")
    ap.add_argument("--smoke", action="store_true", help="small hostile sizes (a quick check of the harness)")
    a = ap.parse_args(argv)
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("the soak only talks to a loopback broker")
    a.root = a.root or f"soak{uuid.uuid4().hex[:8]}"
    if a.role == "session":
        run_session(a)
    elif a.role == "node":
        run_node(a)
    elif a.role == "attack":
        run_attack(a)
    else:
        return orchestrate(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
