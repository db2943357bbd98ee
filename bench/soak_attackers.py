"""The soak's publishers: the genuine node and the attackers (one process each, raw-socket MQTT).

Every role publishes under the run's own topic root (``<root>/ctrl``,
``<root>/notif``, ``<root>/payloads``: RATIO1's topics, see
``pye2/domain/profiles.py``) with the bench's raw QoS 0 publisher
(:mod:`bench.mqttwire`), signs with ``pye2.wire.sign_message(msg, identity,
profile=RATIO1)`` and builds its bodies from :mod:`bench.corpus`
(``heartbeat_body``, ``payload_body``, ``node_status``).

Roles (``python -m bench.soak_attackers ROLE ...``; ``python -m bench.soak`` starts them):

``node``
    the genuine node: a fixed key, a signed v2 heartbeat every 2 s (``EE_ID``
    ``soak-node``, ``CONFIG_STREAMS`` listing ``soak-pipe``) and signed payloads
    of ``soak-pipe`` at ``--node-rate`` per second, numbered ``SOAK_N`` (and
    ``EE_MESSAGE_SEQ``) and stamped ``SOAK_SENT_AT`` (``time.time()``).
``flood``
    one key of its own: (a) payloads, (b) heartbeats and (c) notifications
    (``NOTIFICATION_CODE`` 4, pipeline archived) claiming ``soak-node``, every
    one marked ``SOAK_FORGED: true``; half of them signed by the attacker under
    its own address (an impostor of the name), half carrying the genuine
    node's address in ``EE_SENDER`` (a signature that cannot match).
``replay``
    (d) genuine messages captured by its own subscriptions to ``<root>/payloads``
    and ``<root>/ctrl``, published again byte for byte: half from the most recent
    ones, half from a sample of everything captured since the start.
``bulk``
    (e) unsigned messages with a unique ~1 MB ``EE_SENDER`` full of line breaks,
    fake log lines (``SOAK-INJECTED``) and terminal escapes; (f) heartbeats from a
    fresh key each (``EE_ID`` ``soak-bloat-<hex>``) with ~8 MB of incompressible
    ``ENCODED_DATA``; (g) 4 MB payloads signed by the attacker under its own name
    (``soak-bulk``, marked ``SOAK_BULK``). A few per second each, under a byte
    budget (``--max-bytes-per-s``).

Protocol with the orchestrator: a role prints ``{"ready": true, ...}`` once
its connection and precomputed material are ready, waits for ``go SECONDS``
on stdin (at most ``--ready-timeout`` s), publishes for that many seconds,
then prints ``{"done": true, "sent": {kind: n}, "bytes": n, ...}`` and exits.
Every loop is bounded by that deadline; only loopback brokers are accepted.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import hashlib
import json
import random
import socket
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any

from bench.mqttwire import PUBLISH, PacketReader, connect, publish_packet, publish_topic_and_body, subscribe
from bench.procstat import cpu_seconds

__all__ = ["BIG_KINDS", "FLOOD_KINDS", "NODE", "PIPE", "SMALL_KINDS", "main", "node_address", "node_identity"]

NODE = "soak-node"
PIPE = "soak-pipe"
SIGNATURE = "SOAK_SIG"
INSTANCE = "inst"
#: the hostile kinds sent at a share of ``--rate`` (weights) and those sent a few per second
FLOOD_KINDS = ("forged_payload", "forged_heartbeat", "forged_notification")
SMALL_KINDS = (*FLOOD_KINDS, "replay")
BIG_KINDS = ("huge_sender", "big_status", "big_payload")
#: what the replayer keeps (genuine messages are a few KB; anything larger is someone's flood)
_CAPTURE_MAX_BYTES = 64 * 1024
_RECENT = 2000
_RESERVOIR = 5000


# ----------------------------------------------------------------------------------------------- helpers
def node_identity() -> Any:
    """The genuine node's fixed key (derived from a constant: the attackers only ever use its address)."""
    from pye2.wire import Identity

    return Identity.from_private_bytes(hashlib.sha256(b"pye2-bench-soak-genuine-node").digest())


def node_address() -> str:
    """The genuine node's RATIO1 address (public: the attackers know it as anyone on the network does)."""
    from pye2.wire import RATIO1

    return str(node_identity().address(RATIO1))


def _emit(obj: dict[str, Any]) -> None:
    if obj.get("done"):
        obj["cpu_s"] = round(cpu_seconds(), 1)
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _now_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _wait_go(timeout: float) -> float:
    """Block until the orchestrator writes ``go SECONDS`` (bounded); the seconds to publish for."""
    box: list[float] = []
    done = threading.Event()

    def read() -> None:
        for raw in sys.stdin:
            parts = raw.split()
            if parts and parts[0] == "go":
                box.append(float(parts[1]) if len(parts) > 1 else 0.0)
                break
            if parts and parts[0] == "stop":
                break
        done.set()

    threading.Thread(target=read, name="soak-go", daemon=True).start()
    done.wait(timeout)
    if not box:
        raise SystemExit("soak publisher: no 'go' from the orchestrator")
    return box[0]


class _Publisher:
    """A raw QoS 0 publisher on one socket, counting messages and bytes by kind."""

    def __init__(self, host: str, port: int, name: str, root: str) -> None:
        self.sock = connect(host, port, f"{name}-{uuid.uuid4().hex[:8]}", sndbuf=4 << 20)
        self.root = root
        self.sent: dict[str, int] = {}
        self.bytes = 0

    def publish(self, kind: str, channel: str, body: bytes) -> None:
        packet = publish_packet(f"{self.root}/{channel}", body)
        self.sock.sendall(packet)
        self.sent[kind] = self.sent.get(kind, 0) + 1
        self.bytes += len(packet)

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
            self.sock.close()
        except OSError:
            pass


def _paced(until: float, rate: float, step: Callable[[int], None]) -> int:
    """Call ``step(i)`` ``rate`` times a second until ``until``; a late schedule is reset, never caught up."""
    if rate <= 0:
        time.sleep(max(0.0, until - time.time()))
        return 0
    start = time.time()
    done = 0
    max_batch = max(1, int(rate * 0.05))
    while True:
        now = time.time()
        if now >= until:
            return done
        due = int((now - start) * rate) - done
        if due > rate:  # more than a second behind: drop the backlog instead of bursting
            start = now - done / rate
            due = 0
        for _ in range(min(due, max_batch)):
            step(done)
            done += 1
        if due <= max_batch:
            time.sleep(min(0.002, max(0.0, until - time.time())))


def _signed(body: dict[str, Any], identity: Any) -> dict[str, Any]:
    from pye2.wire import RATIO1, sign_message

    return sign_message(body, identity, profile=RATIO1)


def _dumps(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg).encode()


def _genuine_status(rnd: random.Random, address: str) -> dict[str, Any]:
    """A realistic status (bench.corpus) whose CONFIG_STREAMS also lists ``soak-pipe``."""
    from bench.corpus import node_status

    status = node_status(rnd, NODE, address, plugins=4, streams=2)
    status["CONFIG_STREAMS"].append({
        "NAME": PIPE, "TYPE": "Void", "URL": None, "LIVE_FEED": False, "RECONNECTABLE": "KEEPALIVE",
        "INITIATOR_ADDR": None, "INITIATOR_ID": "soak", "SESSION_ID": "soak", "LAST_UPDATE_TIME": _now_stamp(),
        "PLUGINS": [{"SIGNATURE": SIGNATURE, "INSTANCES": [{"INSTANCE_ID": INSTANCE}]}],
    })
    return status


# ----------------------------------------------------------------------------------------- genuine node
def run_node(a: argparse.Namespace) -> None:
    """The genuine node (see the module docstring)."""
    from bench.corpus import heartbeat_body, payload_body
    from pye2.wire import RATIO1, encode_heartbeat

    identity = node_identity()
    address = identity.address(RATIO1)
    rnd = random.Random(11)
    encoded = encode_heartbeat(_genuine_status(rnd, address))
    template = payload_body(rnd, NODE, 1, pipeline=PIPE, signature=SIGNATURE, instance=INSTANCE)
    pub = _Publisher(a.host, a.port, "soak-node", a.root)
    _emit({"ready": True, "role": "node", "address": address})
    until = time.time() + _wait_go(a.ready_timeout)
    hb_seq = [0]
    next_hb = [0.0]

    def heartbeat() -> None:
        hb_seq[0] += 1
        body = heartbeat_body(rnd, NODE, address, hb_seq[0])
        body.update(encoded, EE_TIMESTAMP=_now_stamp())
        pub.publish("heartbeat", "ctrl", _dumps(_signed(body, identity)))

    def step(i: int) -> None:
        now = time.time()
        if now >= next_hb[0]:
            heartbeat()
            next_hb[0] = now + 2.0
        n = i + 1
        body = dict(template, EE_MESSAGE_SEQ=n, EE_TOTAL_MESSAGES=n, EE_MESSAGE_ID=str(uuid.uuid4()),
                    EE_TIMESTAMP=_now_stamp(), ID=n, EXEC_ITER=n, SOAK_N=n, SOAK_SENT_AT=time.time())
        pub.publish("payload", "payloads", _dumps(_signed(body, identity)))

    heartbeat()  # the first heartbeat goes out before any payload: the session hears the node first
    next_hb[0] = time.time() + 2.0
    _paced(until, a.node_rate, step)
    pub.close()
    _emit({"done": True, "role": "node", "sent": pub.sent, "bytes": pub.bytes,
           "payloads": pub.sent.get("payload", 0), "heartbeats": pub.sent.get("heartbeat", 0)})


# ------------------------------------------------------------------------------------------------- flood
def run_flood(a: argparse.Namespace) -> None:
    """(a) forged payloads, (b) forged heartbeats, (c) forged notifications claiming the genuine node."""
    from bench.corpus import heartbeat_body, payload_body
    from pye2.wire import RATIO1, Identity

    rates = {k: float(getattr(a, k)) for k in FLOOD_KINDS}
    total = sum(rates.values())
    evil = Identity.generate()
    evil_address = evil.address(RATIO1)
    genuine = node_address()
    rnd = random.Random(a.seed)
    # templates built before the timed window; each message is numbered, stamped and signed anew (no two alike)
    payloads = [payload_body(rnd, NODE, 1, pipeline=PIPE, signature=SIGNATURE, instance=INSTANCE) for _ in range(16)]
    beats = []
    for k in range(8):
        body = heartbeat_body(rnd, NODE, evil_address, k + 1)
        beats.append(body)
    pub = _Publisher(a.host, a.port, "soak-flood", a.root)
    _emit({"ready": True, "role": "flood", "address": evil_address})
    until = time.time() + _wait_go(a.ready_timeout)
    kinds = [k for k in FLOOD_KINDS if rates[k] > 0]
    weights = [rates[k] for k in kinds]

    def forged_payload(i: int) -> tuple[str, dict[str, Any]]:
        seq = rnd.randint(1, 10**7)
        return "payloads", dict(payloads[i % len(payloads)], EE_MESSAGE_SEQ=seq, EE_TOTAL_MESSAGES=seq,
                                EE_MESSAGE_ID=str(uuid.uuid4()), EE_TIMESTAMP=_now_stamp(), SOAK_FORGED=True,
                                SOAK_I=i)

    def forged_heartbeat(i: int) -> tuple[str, dict[str, Any]]:
        return "ctrl", dict(beats[i % len(beats)], EE_MESSAGE_SEQ=i + 1, EE_MESSAGE_ID=str(uuid.uuid4()),
                            EE_TIMESTAMP=_now_stamp(), SOAK_FORGED=True, SOAK_I=i)

    def forged_notification(i: int) -> tuple[str, dict[str, Any]]:
        return "notif", {
            "EE_ID": NODE, "EE_EVENT_TYPE": "NOTIFICATION", "EE_PAYLOAD_PATH": [NODE, PIPE, None, None],
            "EE_TIMESTAMP": _now_stamp(), "EE_TIMEZONE": "UTC+0", "EE_MESSAGE_ID": str(uuid.uuid4()),
            "EE_MESSAGE_SEQ": i + 1, "EE_VERSION": "7.7.336", "EE_IS_ENCRYPTED": False,
            "NOTIFICATION_TYPE": "NORMAL", "NOTIFICATION_CODE": 4, "STREAM_NAME": PIPE, "PIPELINE": PIPE,
            "NOTIFICATION": f"Pipeline {PIPE} archived", "INITIATOR_ID": None, "SESSION_ID": None,
            "SOAK_FORGED": True, "SOAK_I": i,
        }

    build = {"forged_payload": forged_payload, "forged_heartbeat": forged_heartbeat,
             "forged_notification": forged_notification}
    picks = rnd.choices(kinds, weights, k=4096) if kinds else []

    def step(i: int) -> None:
        kind = picks[i % len(picks)]
        channel, body = build[kind](i)
        msg = _signed(body, evil)
        if i % 2:
            msg["EE_SENDER"] = genuine  # the genuine node's address over the attacker's signature
        pub.publish(kind, channel, _dumps(msg))

    _paced(until, total, step)
    pub.close()
    _emit({"done": True, "role": "flood", "sent": pub.sent, "bytes": pub.bytes})


# ------------------------------------------------------------------------------------------------ replay
class _Capture:
    """Genuine messages seen on the broker: the most recent ones and a uniform sample of all."""

    def __init__(self, genuine: str, rnd: random.Random) -> None:
        self.marker = genuine.encode()
        self.rnd = rnd
        self.recent: deque[tuple[str, bytes]] = deque(maxlen=_RECENT)
        self.sample: list[tuple[str, bytes]] = []
        self.seen: set[bytes] = set()
        self.captured = 0
        self.lock = threading.Lock()

    def offer(self, channel: str, body: bytes) -> None:
        if len(body) > _CAPTURE_MAX_BYTES or self.marker not in body or b"SOAK_FORGED" in body:
            return
        digest = hashlib.blake2b(body, digest_size=16).digest()
        with self.lock:
            if digest in self.seen:
                return  # our own replay coming back
            if len(self.seen) > 200_000:
                self.seen.clear()
            self.seen.add(digest)
            self.captured += 1
            item = (channel, body)
            self.recent.append(item)
            if len(self.sample) < _RESERVOIR:
                self.sample.append(item)
            else:
                j = self.rnd.randrange(self.captured)
                if j < _RESERVOIR:
                    self.sample[j] = item

    def pick(self, old: bool) -> tuple[str, bytes] | None:
        with self.lock:
            pool: Any = self.sample if old and self.sample else self.recent
            if not pool:
                return None
            return pool[self.rnd.randrange(len(pool))]  # type: ignore[no-any-return]


def _listen(sock: socket.socket, channel: str, capture: _Capture, until: float) -> None:
    reader = PacketReader()
    sock.settimeout(0.5)
    while time.time() < until + 1.0:
        try:
            chunk = sock.recv(1 << 18)
        except TimeoutError:
            continue
        except OSError:
            return
        if not chunk:
            return
        for ptype, body in reader.feed(chunk):
            if ptype == PUBLISH:
                capture.offer(channel, publish_topic_and_body(body)[1])


def run_replay(a: argparse.Namespace) -> None:
    """(d) genuine messages captured from the broker, published again verbatim."""
    rnd = random.Random(a.seed + 1)
    capture = _Capture(node_address(), rnd)
    subs = []
    for channel in ("payloads", "ctrl"):
        sock = connect(a.host, a.port, f"soak-replay-sub-{channel}-{uuid.uuid4().hex[:8]}", rcvbuf=4 << 20)
        subscribe(sock, f"{a.root}/{channel}")
        subs.append((sock, channel))
    pub = _Publisher(a.host, a.port, "soak-replay", a.root)
    _emit({"ready": True, "role": "replay"})
    until = time.time() + _wait_go(a.ready_timeout)
    threads = [threading.Thread(target=_listen, args=(sock, channel, capture, until), daemon=True,
                                name=f"soak-capture-{channel}") for sock, channel in subs]
    for t in threads:
        t.start()
    old = [0]

    def step(i: int) -> None:
        item = capture.pick(old=bool(i % 2))
        if item is None:
            return
        old[0] += i % 2
        pub.publish("replay", item[0], item[1])

    _paced(until, a.replay, step)
    pub.close()
    for sock, _channel in subs:
        try:
            sock.close()
        except OSError:
            pass
    for t in threads:
        t.join(3.0)
    _emit({"done": True, "role": "replay", "sent": pub.sent, "bytes": pub.bytes, "captured": capture.captured,
           "replayed_old": old[0]})


# -------------------------------------------------------------------------------------------------- bulk
def _noise_status(rnd: random.Random, size: int) -> str:
    """An ``ENCODED_DATA`` of about ``size`` bytes whose status does not compress (random base64 inside)."""
    raw = rnd.randbytes(max(1, size * 3 // 4))
    status = {"EE_ID": "soak-bloat", "DEVICE_STATUS": "ONLINE", "NOISE": base64.b64encode(raw).decode()}
    # any zlib level is accepted by a receiver; level 1 keeps the attacker cheap
    return base64.b64encode(zlib.compress(json.dumps(status).encode(), 1)).decode()


def _huge_sender(i: int, size: int, rnd: random.Random) -> str:
    """A unique sender of about ``size`` characters: line breaks, fake log lines, terminal escapes."""
    head = (f"0xai_SOAK{i}_{rnd.getrandbits(64):016x}\nSOAK-INJECTED 2026-12-04 00:00:00 CRITICAL pye2 "
            f"node soak-node verified OK\r\x1b[2K\x1b[1A\x1b]0;pwned\x07\x1b[31m")
    chunk = "A" * 500 + "\n" + "SOAK-INJECTED fake line\x1b[0m\x1b[2J" + "\r\x1b[31m"
    return head + chunk * max(0, (size - len(head)) // len(chunk))


def run_bulk(a: argparse.Namespace) -> None:
    """(e) unsigned huge senders, (f) fresh keys with huge statuses, (g) huge payloads; under a byte budget."""
    from bench.corpus import payload_body
    from pye2.wire import RATIO1, Identity

    rnd = random.Random(a.seed + 2)
    rates = {k: float(getattr(a, k)) for k in BIG_KINDS}
    sizes = {"huge_sender": a.huge_sender_bytes, "big_status": a.big_status_bytes, "big_payload": a.big_payload_bytes}
    statuses = [_noise_status(rnd, sizes["big_status"]) for _ in range(3)] if rates["big_status"] > 0 else []
    blob = base64.b64encode(rnd.randbytes(sizes["big_payload"] * 3 // 4 + 16)).decode()
    owner = Identity.generate()
    template = payload_body(rnd, "soak-bulk", 1, pipeline="soak-bulk-pipe", signature=SIGNATURE, instance=INSTANCE)
    pub = _Publisher(a.host, a.port, "soak-bulk", a.root)
    _emit({"ready": True, "role": "bulk", "address": owner.address(RATIO1)})
    until = time.time() + _wait_go(a.ready_timeout)
    counter = [0]

    def huge_sender() -> tuple[str, bytes]:
        i = counter[0]
        msg = {"EE_ID": f"soak\x1b[31mevil-{i}\n", "EE_EVENT_TYPE": ("PAYLOAD", "HEARTBEAT", "NOTIFICATION")[i % 3],
               "EE_SENDER": _huge_sender(i, sizes["huge_sender"], rnd), "EE_PAYLOAD_PATH": [NODE, PIPE, None, None],
               "EE_MESSAGE_ID": str(uuid.uuid4()), "EE_TIMESTAMP": _now_stamp(), "STREAM": PIPE,
               "SOAK_UNSIGNED": True}
        if i % 2:  # half of them with signature fields that are junk rather than absent
            msg.update(EE_SIGN="MEUCIQ\x1b[31m\n" + "Z" * 90, EE_HASH="\n\x1b[2J" + "f" * 60)
        return ("payloads", "ctrl", "notif")[i % 3], json.dumps(msg).encode()

    def big_status() -> tuple[str, bytes]:
        key = Identity.generate()
        name = f"soak-bloat-{rnd.getrandbits(48):012x}"
        body = {"EE_ID": name, "EE_EVENT_TYPE": "HEARTBEAT", "EE_PAYLOAD_PATH": [name, None, None, None],
                "EE_TIMESTAMP": _now_stamp(), "EE_TIMEZONE": "UTC+0", "EE_MESSAGE_ID": str(uuid.uuid4()),
                "EE_MESSAGE_SEQ": 1, "EE_VERSION": "7.7.336", "EE_IS_ENCRYPTED": False,
                "ENCODED_DATA": statuses[counter[0] % len(statuses)], "HEARTBEAT_VERSION": "v2"}
        return "ctrl", _dumps(_signed(body, key))

    def big_payload() -> tuple[str, bytes]:
        i = counter[0]
        start = i % 1024
        body = dict(template, EE_MESSAGE_SEQ=i + 1, EE_TOTAL_MESSAGES=i + 1, EE_MESSAGE_ID=str(uuid.uuid4()),
                    EE_TIMESTAMP=_now_stamp(), SOAK_BULK=True, BLOB=blob[start:start + sizes["big_payload"]])
        return "payloads", _dumps(_signed(body, owner))

    build = {"huge_sender": huge_sender, "big_status": big_status, "big_payload": big_payload}
    active = [k for k in BIG_KINDS if rates[k] > 0]
    due = {k: time.time() + rnd.random() / rates[k] for k in active}
    budget = float(a.max_bytes_per_s)
    tokens, last = budget * 0.5, time.time()
    while active:
        kind = min(active, key=due.__getitem__)
        wait = due[kind] - time.time()
        if due[kind] >= until:
            break
        if wait > 0:
            time.sleep(wait)
        channel, body = build[kind]()
        counter[0] += 1
        # byte budget (token bucket): wait for the tokens of a message; give up at the deadline
        while True:
            now = time.time()
            tokens = min(max(budget * 0.5, len(body)), tokens + (now - last) * budget)
            last = now
            if tokens >= len(body) or now >= until:
                break
            time.sleep(min(0.05, (len(body) - tokens) / budget))
        if time.time() >= until:
            break
        tokens -= len(body)
        pub.publish(kind, channel, body)
        now = time.time()
        due[kind] = max(due[kind] + 1.0 / rates[kind], now - 1.0)  # late: skip, never burst
    time.sleep(max(0.0, until - time.time()))
    pub.close()
    _emit({"done": True, "role": "bulk", "sent": pub.sent, "bytes": pub.bytes})


# --------------------------------------------------------------------------------------------------- cli
ROLES: dict[str, Callable[[argparse.Namespace], None]] = {
    "node": run_node, "flood": run_flood, "replay": run_replay, "bulk": run_bulk,
}


def main(argv: list[str] | None = None) -> None:
    """Run one publisher role (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m bench.soak_attackers")
    ap.add_argument("role", choices=sorted(ROLES))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--root", required=True, help="the run's topic root")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument("--node-rate", type=float, default=200.0)
    for kind in (*SMALL_KINDS, *BIG_KINDS):
        ap.add_argument(f"--{kind.replace('_', '-')}", dest=kind, type=float, default=0.0, help="messages/s")
    ap.add_argument("--huge-sender-bytes", type=int, default=1 << 20)
    ap.add_argument("--big-status-bytes", type=int, default=8 << 20)
    ap.add_argument("--big-payload-bytes", type=int, default=4 << 20)
    ap.add_argument("--max-bytes-per-s", type=float, default=50e6)
    a = ap.parse_args(argv)
    from bench.config import parse_broker

    parse_broker(f"mqtt://{a.host}:{a.port}")  # raises unless loopback
    ROLES[a.role](a)


if __name__ == "__main__":
    main()
