"""The replayed corpus: N simulated nodes' signed v2 heartbeats and payloads.

Every node gets its own secp256k1 key (derived from the seed and its index)
and one heartbeat plus ``payloads`` payloads, signed with pye2's RATIO1 wire
format (``SIGN_CANON_V: v2``, ``0xai_`` addresses, root ``naeural``): the
format ratio1 3.5.60 and pye2 both accept on the same topics. Sizes follow a
real node (spec/samples): the heartbeat status is ~12 KB of JSON before
zlib+base64 (~3.2 KB in ``ENCODED_DATA``, ~3.9 KB signed), a payload ~2.1 KB
signed. A few *tampered* messages (a field changed after signing) prove that
a consumer really verifies signatures.

Everything is signed once, before any timed window, and cached in
``bench/.cache/corpus_<nodes>[x<rounds>]_<seed>.jsonl``: a header line, then one
``{"k": "hb"|"pl"|"bad", "a": address, "t": topic, "m": message text}`` per line.
The ingest figures replay a one-round corpus in a loop (each node's payload
then repeats its ``EE_MESSAGE_SEQ``); the loss figure sends a many-round
corpus exactly once, so payload numbers only go up (see :func:`ensure_corpus`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CORPUS_VERSION",
    "KINDS",
    "corpus_path",
    "ensure_corpus",
    "heartbeat_body",
    "node_status",
    "payload_body",
    "read_corpus",
]

log = logging.getLogger(__name__)

CORPUS_VERSION = 2
KINDS = ("hb", "pl", "bad")
#: tampered messages appended to every corpus (half heartbeats, half payloads)
TAMPERED = 20

_BASE_TIME = _dt.datetime(2026, 11, 25, 15, 0, 0)
_SIGNATURES = ("NET_MON_01", "UPDATE_MONITOR_01", "NET_CONFIG_MONITOR", "CHAIN_STORE_BASE", "CUSTOM_EXEC_01",
               "REST_CUSTOM_EXEC_01", "OBJECT_TRACKING_01", "VIEW_SCENE_01")
_SOURCES = ("NetworkListener", "Void", "VideoStream", "IotQueueListener")


def _stamp(rnd: random.Random, spread_s: float = 3600.0) -> str:
    return (_BASE_TIME + _dt.timedelta(seconds=rnd.uniform(0, spread_s))).strftime("%Y-%m-%d %H:%M:%S.%f")


def _uuid(rnd: random.Random) -> str:
    h = f"{rnd.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def node_status(rnd: random.Random, node_id: str, address: str, *, plugins: int = 12,
                streams: int = 6) -> dict[str, Any]:
    """A node's heartbeat status (the JSON a v2 heartbeat compresses), ~12 KB."""
    pipes = [f"pipeline_{k}" for k in range(streams)]
    active = [{
        "STREAM_ID": pipes[i % streams],
        "SIGNATURE": _SIGNATURES[i % len(_SIGNATURES)],
        "INSTANCE_ID": f"inst_{rnd.getrandbits(24):06x}",
        "PROCESS_DELAY": rnd.choice((0.5, 1, 3, 10)),
        "FREQUENCY": round(rnd.uniform(0.1, 30), 1),
        "INIT_TIMESTAMP": _stamp(rnd),
        "EXEC_TIMESTAMP": _stamp(rnd),
        "LAST_CONFIG_TIMESTAMP": _stamp(rnd),
        "FIRST_ERROR_TIME": None,
        "LAST_ERROR_TIME": None,
        "OUTSIDE_WORKING_HOURS": False,
        "CURRENT_PROCESS_ITERATION": rnd.randint(0, 10**5),
        "CURRENT_EXEC_ITERATION": rnd.randint(0, 10**5),
        "LAST_PAYLOAD_TIME": _stamp(rnd),
        "TOTAL_PAYLOAD_COUNT": rnd.randint(0, 10**4),
        "INFO": None,
    } for i in range(plugins)]
    config_streams = [{
        "NAME": name,
        "TYPE": _SOURCES[k % len(_SOURCES)],
        "URL": None if k % 2 else f"rtsp://10.0.{k}.{rnd.randint(2, 250)}/stream",
        "LIVE_FEED": bool(k % 2),
        "RECONNECTABLE": "KEEPALIVE",
        "INITIATOR_ADDR": address,
        "INITIATOR_ID": "bench-client",
        "SESSION_ID": f"s_{rnd.getrandbits(32):08x}",
        "LAST_UPDATE_TIME": _stamp(rnd),
        "PLUGINS": [{"SIGNATURE": p["SIGNATURE"], "INSTANCES": [{"INSTANCE_ID": p["INSTANCE_ID"]}]}
                    for p in active if p["STREAM_ID"] == name][:2],
    } for k, name in enumerate(pipes)]
    comm = {channel: {
        "SVR": True, "RCV": True, "RCV_DISABLED": False, "SND": True,
        "ACT": round(rnd.uniform(1.7e9, 1.8e9), 4), "ADDR": "127.0.0.1:1883", "FAILS": 0, "ERROR": None,
        "ERRTM": None, "IN_KB": round(rnd.uniform(0, 1e5), 2), "OUT_KB": round(rnd.uniform(0, 1e5), 2),
        "IN_MSG": rnd.randint(0, 10**6), "OUT_MSG": rnd.randint(0, 10**6),
    } for channel in ("COMMANDCONTROL", "DEFAULT", "HEARTBEATS", "NOTIFICATIONS")}
    return {
        "CURRENT_TIME": _stamp(rnd),
        "EE_WHITELIST": [],
        "EE_IS_SUPER": False,
        "IS_ALERT_RAM": False,
        "PY_VER": "3.11.7",
        "SECURED": True,
        "EE_HB_TIME": 10,
        "DEVICE_STATUS": "ONLINE",
        "MACHINE_IP": f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        "MACHINE_MEMORY": 62.7,
        "AVAILABLE_MEMORY": round(rnd.uniform(1, 60), 3),
        "PROCESS_MEMORY": round(rnd.uniform(0.5, 8), 3),
        "CPU_USED": round(rnd.uniform(0, 100), 1),
        "CPU_NR_CORES": 16,
        "GPUS": [{"NAME": "NVIDIA RTX A4000", "TOTAL_MEM": 15.99, "ALLOCATED_MEM": round(rnd.uniform(0, 15), 3),
                  "GPU_USED": rnd.randint(0, 100), "GPU_TEMP": rnd.randint(30, 90)}],
        "DEFAULT_CUDA": "cuda:0",
        "CPU": "AMD EPYC 7R13 Processor",
        "TIMESTAMP": f"{rnd.getrandbits(60):020d}",
        "UPTIME": round(rnd.uniform(100, 1e6), 3),
        "VERSION": "7.7.336 | 3.5.60 L-6.18.44-x86_64-with-glibc2.36",
        "LOGGER_VERSION": "3.5.60",
        "TOTAL_DISK": 484.3,
        "AVAILABLE_DISK": round(rnd.uniform(10, 400), 3),
        "ACTIVE_PLUGINS": active,
        "STOP_LOG": [],
        "DID": False,
        "COMM_RELAY": "127.0.0.1",
        "R1FS_ID": None,
        "R1FS_ONLINE": False,
        "GIT_BRANCH": None,
        "CONDA_ENV": None,
        "CONFIG_STREAMS": config_streams,
        "DCT_STATS": {name: {"TYPE": _SOURCES[k % len(_SOURCES)], "FLOW": "buff", "IDLE": round(rnd.uniform(0, 60), 1),
                             "DPS": round(rnd.uniform(0, 50), 3), "CFG_DPS": 50, "TGT_DPS": 50,
                             "RUNSTATS": rnd.randint(0, 10**6)} for k, name in enumerate(pipes)},
        "COMM_STATS": comm,
        "IN_KB": round(rnd.uniform(0, 10), 2),
        "OUT_KB": round(rnd.uniform(0, 100), 2),
        "LOOPS_TIMINGS": {f"loop_{k}": round(rnd.random() * 0.05, 6) for k in range(12)},
        "NR_INFERENCES": 0,
        "NR_PAYLOADS": rnd.randint(0, 10**5),
        "NR_STREAMS_DATA": 0,
        "EE_ID": node_id,
    }


def _envelope(rnd: random.Random, node_id: str, event: str, path: list[str | None], seq: int) -> dict[str, Any]:
    return {
        "EE_ID": node_id,
        "EE_EVENT_TYPE": event,
        "EE_PAYLOAD_PATH": path,
        "EE_FORMATTER": None,
        "EE_TIMESTAMP": _stamp(rnd),
        "EE_TIMEZONE": "UTC+0",
        "EE_TZ": "Etc/UTC",
        "EE_MESSAGE_ID": _uuid(rnd),
        "EE_MESSAGE_SEQ": seq,
        "EE_TOTAL_MESSAGES": seq,
        "EE_VERSION": "7.7.336",
        "EE_IS_ENCRYPTED": False,
        "INITIATOR_ID": None,
        "INITIATOR_ADDR": None,
        "MODIFIED_BY_ID": None,
        "MODIFIED_BY_ADDR": None,
        "SESSION_ID": None,
        "SB_IMPLEMENTATION": None,
    }


def heartbeat_body(rnd: random.Random, node_id: str, address: str, seq: int = 1) -> dict[str, Any]:
    """An unsigned v2 heartbeat: envelope + ``ENCODED_DATA`` (zlib 9 + base64) + clear counters."""
    from pye2.wire import encode_heartbeat

    msg = _envelope(rnd, node_id, "HEARTBEAT", [node_id, None, None, None], seq)
    msg.update(encode_heartbeat(node_status(rnd, node_id, address)))
    return msg


def payload_body(rnd: random.Random, node_id: str, seq: int = 1, *, pipeline: str = "pipeline_0",
                 signature: str = "CUSTOM_EXEC_01", instance: str = "inst_0") -> dict[str, Any]:
    """An unsigned payload of a custom-code plugin instance (~1.8 KB before signing)."""
    msg = _envelope(rnd, node_id, "PAYLOAD", [node_id, pipeline, signature, instance], seq)
    msg.update({
        "STREAM_NAME": pipeline, "STREAM": pipeline, "PIPELINE": pipeline, "SIGNATURE": signature,
        "INSTANCE_ID": instance, "PLUGIN_CATEGORY": "general", "STATUS": "N/A", "TAGS": "", "ID": seq,
        "ID_TAGS": [], "COLLECTED": False, "IMG_IN_PAYLOAD": False, "USE_LOCAL_COMMS_ONLY": False,
        "TIMESTAMP_EXECUTION": _stamp(rnd), "EXEC_ITER": seq, "EXEC_ERRORS": None, "EXEC_WARNING": [],
        "EXEC_RESULT": {"values": [rnd.randint(1, 10_000) for _ in range(20)],
                        "metrics": {f"metric_{k}": round(rnd.uniform(-1000, 1000), 6) for k in range(10)}},
        "IS_ALERT": False, "IS_NEW_RAISE": False, "IS_NEW_LOWER": False, "IS_ALERT_STATUS_CHANGED": False,
        "IS_ALERT_NEW_RAISE": False, "IS_ALERT_NEW_LOWER": False, "LAST_ALERT_DURATION": None,
        "_P_ALERT_HELPER": "A=0, N=0, CT=NA, E=A[]=0.00 vs >=0.50 ", "_P_ALIVE_TIME_MINS": round(rnd.random() * 60, 2),
        "_P_DATASET_BUILDER_USED": False, "_P_DEBUG_SAVE_PAYLOAD": False, "_P_DEMO_MODE": False,
        "_P_GRAPH_TYPE": [], "_P_PLUGIN_LOOP_RESOLUTION": 20, "_P_PLUGIN_REAL_RESOLUTION": None,
        "_P_PROCESS_DELAY": 3, "_P_VERSION": "2.1.0", "debug_payload_saved": False,
    })
    return msg


def _node_signer(seed: int, index: int) -> tuple[Any, str]:
    """A fast deterministic signer for node ``index`` and its RATIO1 address."""
    from pye2.wire import RATIO1
    from pye2_transport_memory.node._signing import identity_from_secret, make_signer

    secret = hashlib.sha256(f"pye2-bench:{seed}:{index}".encode()).digest()
    identity = identity_from_secret(secret)
    return make_signer(secret, identity), identity.address(RATIO1)


def corpus_path(cache: Path, nodes: int, seed: int = 0, rounds: int = 1) -> Path:
    """Where the corpus of ``nodes`` nodes (and ``rounds`` payloads each) is cached."""
    return cache / (f"corpus_{nodes}_{seed}.jsonl" if rounds == 1 else f"corpus_{nodes}x{rounds}_{seed}.jsonl")


def _header(nodes: int, seed: int, rounds: int) -> dict[str, Any]:
    # the templates' source is part of the key: editing them regenerates cached corpora
    templates = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return {"corpus": CORPUS_VERSION, "templates": templates, "nodes": nodes, "seed": seed, "rounds": rounds,
            "profile": "RATIO1"}


def _is_current(path: Path, header: dict[str, Any]) -> bool:
    if not path.exists():
        return False
    with path.open(encoding="utf-8") as f:
        try:
            return bool(json.loads(f.readline()) == header)
        except ValueError:
            return False


def ensure_corpus(cache: Path, nodes: int, *, seed: int = 0, rounds: int = 1) -> Path:
    """The corpus file for ``nodes`` nodes, generated (and signed) if missing or stale.

    ``rounds`` > 1 gives every node that many payloads numbered ``EE_MESSAGE_SEQ``
    1..rounds, in round order (round 1 of every node, then round 2...), each
    round with the node's heartbeat again (the same status, numbered with the
    round and signed again, so no two messages of a corpus are the same: pye2
    refuses a copy of a message it accepted as a replay): replayed once in file order, each
    node's payload numbers only go up, as a real node's do, so a consumer that
    detects sequence gaps sees exactly the payloads lost on the way.
    """
    from pye2.wire import RATIO1, sign_message, verify_message

    path = corpus_path(cache, nodes, seed, rounds)
    header = _header(nodes, seed, rounds)
    if _is_current(path, header):
        return path
    cache.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    root = RATIO1.root
    known: list[tuple[str, Any, str, dict[str, Any]]] = []
    with tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for seq in range(1, rounds + 1):
            for i in range(nodes):
                if seq == 1:
                    node_id = f"bench-node-{i:05d}"
                    signer, address = _node_signer(seed, i)
                    body_hb = heartbeat_body(rnd, node_id, address)
                    hb = sign_message(body_hb, signer, profile=RATIO1)
                    known.append((node_id, signer, address, body_hb if rounds > 1 else {}))  # reused by later rounds
                else:
                    # the same status, numbered and signed again: a consumer that refuses replays takes it
                    node_id, signer, address, body_hb = known[i]
                    hb = sign_message(dict(body_hb, EE_MESSAGE_SEQ=seq), signer, profile=RATIO1)
                body = payload_body(rnd, node_id, seq)
                msgs = [("hb", hb), ("pl", sign_message(body, signer, profile=RATIO1))]
                if seq == 1 and i < TAMPERED:
                    # changed after signing: EE_HASH no longer matches, a verifying consumer must reject it
                    kind, original = msgs[i % 2]
                    msgs.append(("bad-" + kind, dict(original, EE_MESSAGE_SEQ=original["EE_MESSAGE_SEQ"] + 1000)))
                for kind, msg in msgs:
                    if seq == 1 and i % 101 == 0 and not kind.startswith("bad"):
                        verify_message(msg, profile=RATIO1)  # raises if our own corpus were wrong
                    topic = f"{root}/ctrl" if kind.endswith("hb") else f"{root}/payloads"
                    f.write(json.dumps({"k": "bad" if kind.startswith("bad") else kind, "a": address, "t": topic,
                                        "m": json.dumps(msg)}) + "\n")
    tmp.replace(path)
    log.info("wrote corpus %s (%d nodes, %d round(s))", path, nodes, rounds)
    return path


def read_corpus(path: Path, kinds: tuple[str, ...] = KINDS) -> Iterator[dict[str, str]]:
    """The corpus records of the given kinds, in file order (header skipped)."""
    with path.open(encoding="utf-8") as f:
        f.readline()
        for line in f:
            rec: dict[str, str] = json.loads(line)
            if rec["k"] in kinds:
                yield rec
