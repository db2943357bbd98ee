"""Micro-benchmark: signature verification and JSON parsing, default path vs fast path.

Standalone (not run by the tests)::

    python bench/micro_verify.py [--seconds 1.0] [--json]

On one signed message of about 1.9 KB (RATIO1, as a node publishes it) it
measures, single-threaded, operations per second of:

* ECDSA verify alone: ``CryptographyVerifier`` vs ``CoincurveVerifier``, for a
  low-S signature (what pye2 and libsecp256k1 write) and its high-S twin
  (what OpenSSL-based senders write half of the time; coincurve normalises it);
* ``verify_message`` end to end (canonical JSON + SHA-256 + ECDSA) with each verifier;
* parsing the wire bytes: ``JsonSerializer.loads`` vs ``OrjsonSerializer.loads``;
* parse + verify together, i.e. what a client does per received message.

Each figure is the best of three timed runs of about ``--seconds`` each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pye2.adapters.coincurve_backend import CoincurveVerifier
from pye2.adapters.json_serializer import JsonSerializer
from pye2.adapters.orjson_serializer import OrjsonSerializer
from pye2.adapters.secp256k1 import CryptographyVerifier, Identity
from pye2.wire import RATIO1, sign_message, verify_message

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TARGET_BYTES = 1900


def signed_payload(identity: Identity) -> dict[str, Any]:
    """A RATIO1-signed payload message whose wire JSON is about 1.9 KB."""
    message: dict[str, Any] = {
        "EE_ID": "bench-node-01", "EE_PAYLOAD_PATH": ["bench-node-01", "pipe", "SIGNATURE", "inst-1"],
        "STREAM_NAME": "pipe", "SIGNATURE": "CUSTOM_EXEC_01", "INSTANCE_ID": "inst-1",
        "EE_MESSAGE_ID": 123456, "EE_TIMESTAMP": "2024-05-01 12:00:00.123456", "EE_TIMEZONE": "UTC+0",
        "EE_EVENT_TYPE": "PAYLOAD", "EE_VERSION": "3.5.60", "IS_ALERT": False, "STATUS": "ok",
        "DATA": {"values": [round(i * 0.37, 3) for i in range(60)], "labels": [f"obj-{i}" for i in range(25)]},
        "PAD": "",
    }
    signed = sign_message(message, identity, profile=RATIO1)
    message["PAD"] = "x" * max(0, TARGET_BYTES - len(json.dumps(signed)))
    return sign_message(message, identity, profile=RATIO1)


def high_s_twin(signed: dict[str, Any]) -> dict[str, Any]:
    """The same message with S replaced by n - S (equally valid ECDSA)."""
    r, s = decode_dss_signature(base64.urlsafe_b64decode(signed["EE_SIGN"]))
    twin = dict(signed)
    twin["EE_SIGN"] = base64.urlsafe_b64encode(encode_dss_signature(r, ORDER - s)).decode("ascii")
    return twin


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Best-of-three operations per second of ``operation``."""
    batch = 1
    while True:  # size a batch to about a tenth of the budget
        start = time.perf_counter()
        for _ in range(batch):
            operation()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10:
            break
        batch *= 2
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(batch):
                operation()
            count += batch
        best = max(best, count / elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print a table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each timed run (default 1.0)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)

    identity = Identity.from_private_bytes(hashlib.sha256(b"pye2 micro bench").digest())
    signed = signed_payload(identity)
    high = high_s_twin(signed)
    wire = json.dumps(signed).encode("utf-8")  # the original SDK's wire text
    digest = bytes.fromhex(signed["EE_HASH"])
    low_sig = base64.urlsafe_b64decode(signed["EE_SIGN"])
    high_sig = base64.urlsafe_b64decode(high["EE_SIGN"])
    key = identity.public_key
    crypto, fast = CryptographyVerifier(), CoincurveVerifier()
    stdlib, orjson_ser = JsonSerializer(), OrjsonSerializer()
    for verifier in (crypto, fast):  # the benchmark is worthless if a path is broken
        verifier.verify(key, digest, low_sig)
        verifier.verify(key, digest, high_sig)
        verify_message(stdlib.loads(wire), profile=RATIO1, verifier=verifier, json_native=True)
    assert orjson_ser.loads(wire) == stdlib.loads(wire)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("ecdsa verify, low-S   cryptography", lambda: crypto.verify(key, digest, low_sig)),
        ("ecdsa verify, low-S   coincurve", lambda: fast.verify(key, digest, low_sig)),
        ("ecdsa verify, high-S  cryptography", lambda: crypto.verify(key, digest, high_sig)),
        ("ecdsa verify, high-S  coincurve", lambda: fast.verify(key, digest, high_sig)),
        ("verify_message        cryptography",
         lambda: verify_message(signed, profile=RATIO1, verifier=crypto, json_native=True)),
        ("verify_message        coincurve",
         lambda: verify_message(signed, profile=RATIO1, verifier=fast, json_native=True)),
        ("loads                 json", lambda: stdlib.loads(wire)),
        ("loads                 orjson", lambda: orjson_ser.loads(wire)),
        ("loads+verify_message  json+cryptography",
         lambda: verify_message(stdlib.loads(wire), profile=RATIO1, verifier=crypto, json_native=True)),
        ("loads+verify_message  orjson+coincurve",
         lambda: verify_message(orjson_ser.loads(wire), profile=RATIO1, verifier=fast, json_native=True)),
    ]
    results = {name: rate(operation, args.seconds) for name, operation in cases}
    if args.json:
        print(json.dumps({"payload_bytes": len(wire), "ops_per_second": results}, indent=2))
    else:
        print(f"signed payload: {len(wire)} bytes of wire JSON (RATIO1); single thread; best of 3 x {args.seconds}s")
        for name, value in results.items():
            print(f"{name:40s} {value:12,.0f} /s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
