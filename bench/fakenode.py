"""A fake node for the command-latency figure (its own process, raw sockets).

It publishes a signed v2 heartbeat every 0.5 s on ``naeural/ctrl`` (so the
SDK under test sees it online) and listens on its command topic
``naeural/<address>/config`` with a raw-socket QoS 0 subscriber, printing
``{"arr": time.time(), "bytes": n}`` the moment each command arrives (same
host clock as the SDK's call stamps). On stdin EOF it checks every received
command's signature with pye2's RATIO1 verifier (outside any timed window)
and prints ``{"done": true, "received", "valid", "invalid_reason"}``.

usage: python -m bench.fakenode [--host 127.0.0.1] [--port 1883] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from typing import Any

from bench.corpus import heartbeat_body
from bench.mqttwire import PUBLISH, PacketReader, connect, publish_packet, publish_topic_and_body, subscribe

__all__ = ["main"]


def _emit(obj: dict[str, Any], lock: threading.Lock) -> None:
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    """Run the fake node until stdin closes."""
    ap = argparse.ArgumentParser(prog="python -m bench.fakenode")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--interval", type=float, default=0.5)
    a = ap.parse_args(argv)

    from pye2.errors import Pye2Error
    from pye2.wire import RATIO1, sign_message, verify_message
    from pye2_transport_memory.node._signing import derive_secret, identity_from_secret, make_signer

    secret = derive_secret(f"bench-fake-node-{a.seed}", "fake-node")
    signer = make_signer(secret, identity_from_secret(secret))
    address = identity_from_secret(secret).address(RATIO1)
    out = threading.Lock()
    stop = threading.Event()
    bodies: list[bytes] = []

    sub = connect(a.host, a.port, f"bench-fake-node-sub-{a.seed}", rcvbuf=1 << 20)
    subscribe(sub, RATIO1.config(address))
    pub = connect(a.host, a.port, f"bench-fake-node-pub-{a.seed}")

    def listen() -> None:
        reader = PacketReader()
        while True:
            try:
                chunk = sub.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            now = time.time()
            for ptype, body in reader.feed(chunk):
                if ptype == PUBLISH:
                    _topic, payload = publish_topic_and_body(body)
                    bodies.append(payload)
                    _emit({"arr": now, "bytes": len(payload)}, out)

    def beat() -> None:
        rnd = random.Random(a.seed)
        seq = 0
        while not stop.is_set():
            seq += 1
            hb = sign_message(heartbeat_body(rnd, "bench-fake-node", address, seq), signer, profile=RATIO1)
            pub.sendall(publish_packet(RATIO1.ctrl, json.dumps(hb)))
            stop.wait(a.interval)

    threading.Thread(target=listen, name="fake-node-listen", daemon=True).start()
    threading.Thread(target=beat, name="fake-node-beat", daemon=True).start()
    _emit({"ready": True, "address": address}, out)
    sys.stdin.read()  # until the orchestrator closes our stdin
    stop.set()
    valid, reason = 0, None
    for raw in bodies:
        try:
            verify_message(json.loads(raw), profile=RATIO1)
            valid += 1
        except (Pye2Error, ValueError) as exc:
            reason = reason or f"{type(exc).__name__}: {exc}"
    _emit({"done": True, "received": len(bodies), "valid": valid, "invalid_reason": reason}, out)
    for sock in (sub, pub):
        sock.close()


if __name__ == "__main__":
    main()
