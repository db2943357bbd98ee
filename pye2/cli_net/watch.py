"""``pye2 watch``: a live, filtered tail of what arrives, each message marked verified or rejected.

``--node N`` (name or address), ``--pipeline P``, ``--type heartbeat|notification|payload``
(repeatable) filter; a rejected message is shown when its sender and type pass the
filters (its pipeline is not trusted, so ``--pipeline`` does not hide it).
``--save-images DIR`` writes the images of payloads (``IMG``, base64 JPEG/PNG) there.
``--count N`` / ``--seconds S`` stop after that many lines / seconds; Ctrl-C stops too (exit 0).
``--json``: one object per message (``time``, ``status``, ``type``, ``node``,
``address``, ``pipeline``, ``signature``, ``instance``, ``summary``, ``reason``, ``detail``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import threading
import time
from pathlib import Path
from typing import Any

from pye2.cli_net._common import command, connect, sigterm_stops
from pye2.cli_net._options import CliFailure, Connection, add_connection_options, positive_float
from pye2.cli_net._output import Output, safe
from pye2.domain.keys import same_address
from pye2.domain.messages import Rejected

__all__ = ["add_arguments", "run"]

HELP = "a live tail of heartbeats, notifications and payloads, each marked verified or rejected"
TYPES = ("heartbeat", "notification", "payload")
#: an image larger than this (decoded) is not saved
MAX_IMAGE_BYTES = 32 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", help="only this node (name or address)")
    parser.add_argument("--pipeline", help="only this pipeline (hides heartbeats)")
    parser.add_argument("--type", action="append", choices=TYPES, dest="types",
                        help="only these kinds (repeatable; default all)")
    parser.add_argument("--save-images", type=Path, default=None, metavar="DIR", dest="save_images",
                        help="save payload images (IMG) to this folder")
    parser.add_argument("--count", type=int, default=None, metavar="N", help="stop after N lines")
    parser.add_argument("--seconds", type=positive_float, default=None, metavar="S", help="stop after S seconds")
    add_connection_options(parser)


class Tail:
    """Turns session callbacks and rejections into filtered lines (called on the session's dispatcher thread)."""

    def __init__(self, args: argparse.Namespace, out: Output) -> None:
        self.args = args
        self.session: Any = None
        self.out = out
        self.types = set(args.types or TYPES)
        self.lines = 0
        self.images = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    # -- filters -----------------------------------------------------------------------------
    def _node_matches(self, alias: str | None, address: str | None) -> bool:
        wanted = self.args.node
        if not wanted:
            return True
        if alias is not None and alias == wanted:
            return True
        if address is None:
            return False
        if address == wanted or same_address(address, wanted):
            return True
        bound: str | None = self.session.get_node_address(wanted)
        return bound is not None and same_address(bound, address)

    def _wanted(self, kind: str, alias: str | None, address: str | None, pipeline: str | None,
                rejected: bool = False) -> bool:
        if kind not in self.types or not self._node_matches(alias, address):
            return False
        wanted: str | None = self.args.pipeline
        return rejected or not wanted or pipeline == wanted

    # -- callbacks -----------------------------------------------------------------------------
    def heartbeat(self, _session: Any, e2id: str, data: Any) -> None:
        alias, address = self._who(e2id, data)
        if not self._wanted("heartbeat", alias, address, None):
            return
        streams = data.get("CONFIG_STREAMS", data.get("PIPELINES"))
        parts = [f"{len(streams)} pipeline(s)" if isinstance(streams, list) else "no pipeline list"]
        if isinstance(data.get("CPU_USED"), (int, float)):
            parts.append(f"cpu {data['CPU_USED']:.0f}%")
        if isinstance(data.get("DEVICE_STATUS"), str):
            parts.append(safe(data["DEVICE_STATUS"], 30))
        self._emit("verified", "heartbeat", alias, address, None, None, None, ", ".join(parts))

    def notification(self, _session: Any, e2id: str, data: Any) -> None:
        alias, address = self._who(e2id, data)
        pipeline = _text(data.get("STREAM_NAME", data.get("STREAM")))
        if not self._wanted("notification", alias, address, pipeline):
            return
        code, kind = data.get("NOTIFICATION_CODE"), data.get("NOTIFICATION_TYPE")
        text = data.get("NOTIFICATION", data.get("INFO", ""))
        summary = f"{safe(kind or 'NOTIFICATION', 20)} code {safe(code)}: {safe(text, 100)}"
        self._emit("verified", "notification", alias, address, pipeline, _text(data.get("SIGNATURE")),
                   _text(data.get("INSTANCE_ID")), summary)

    def payload(self, _session: Any, e2id: str, pipeline: str | None, signature: str | None,
                instance: str | None, data: Any) -> None:
        alias, address = self._who(e2id, data)
        if not self._wanted("payload", alias, address, pipeline):
            return
        status = data.get("STATUS")
        summary = (f"{safe(status, 60)}; " if isinstance(status, str) and status else "") + f"{len(data)} keys"
        if data.get("IMG") is not None:
            summary += ", with image"
        saved = self._save_images(alias, pipeline, signature, instance, data)
        if saved:
            summary += f"; saved {', '.join(saved)}"
        self._emit("verified", "payload", alias, address, pipeline, signature, instance, summary)

    def rejected(self, note: Rejected) -> None:
        kind = note.kind or "message"
        if kind in TYPES and not self._wanted(kind, None, note.sender, None, rejected=True):
            return
        if kind not in TYPES and self.args.node:
            return
        self._emit("rejected", kind, None, note.sender, None, None, None, safe(note.detail, 160),
                   reason=note.reason)

    # -- output ----------------------------------------------------------------------------------
    def _who(self, e2id: str, data: Any) -> tuple[str, str | None]:
        sender = data.get("EE_SENDER")
        alias = data.get("EE_ID")
        return (alias if isinstance(alias, str) else e2id), (sender if isinstance(sender, str) else None)

    def _emit(self, status: str, kind: str, alias: str | None, address: str | None, pipeline: str | None,
              signature: str | None, instance: str | None, summary: str, reason: str | None = None) -> None:
        with self._lock:
            if self.done.is_set():
                return
            self.lines += 1
            if self.out.json:
                self.out.record({"time": round(time.time(), 3), "status": status, "type": kind, "node": alias,
                                 "address": address, "pipeline": pipeline, "signature": signature,
                                 "instance": instance, "summary": summary, "reason": reason})
            else:
                stamp = time.strftime("%H:%M:%S")
                who = safe(alias, 40) if alias else safe(address or "unknown sender", 60)
                where = "/".join(safe(p, 40) for p in (pipeline, signature, instance) if p)
                mark = "verified" if status == "verified" else f"REJECTED ({reason})"
                text = f"{stamp} {mark:<10} {kind:<12} {who}{' ' + where if where else ''}: {summary}"
                self.out.line(text, style=None if status == "verified" else "red")
            if self.args.count is not None and self.lines >= self.args.count:
                self.done.set()

    def _save_images(self, alias: str, pipeline: str | None, signature: str | None, instance: str | None,
                     data: Any) -> list[str]:
        folder: Path | None = self.args.save_images
        value = data.get("IMG")
        if folder is None or value is None:
            return []
        items = value if isinstance(value, list) else [value]
        saved = []
        for item in items:
            raw = _image_bytes(item)
            if raw is None:
                continue
            ext = "png" if raw.startswith(b"\x89PNG") else "jpg"
            self.images += 1
            stem = "_".join(_UNSAFE.sub("-", str(p))[:40] for p in (alias, pipeline, signature, instance) if p)
            path = folder / f"{stem}_{self.images:05d}.{ext}"
            try:
                path.write_bytes(raw)
            except OSError as exc:
                saved.append(f"nothing ({path.name}: {exc.strerror or exc})")
                continue
            saved.append(path.name)
        return saved


def _image_bytes(item: Any) -> bytes | None:
    """The bytes of a base64 JPEG or PNG (None for anything else)."""
    if not isinstance(item, str) or len(item) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode(item, validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith((b"\xff\xd8", b"\x89PNG")) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@command
def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    if args.count is not None and args.count < 1:
        raise CliFailure("--count must be at least 1", 2)
    if args.save_images is not None:
        try:
            args.save_images.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliFailure(f"--save-images {args.save_images}: {exc.strerror or exc}", 2) from None
    tail = Tail(args, out)
    session = conn.session(on_heartbeat=tail.heartbeat, on_notification=tail.notification, on_payload=tail.payload)
    tail.session = session
    session.stats.on_rejected = tail.rejected
    try:
        connect(session, conn, out)
        if not out.json:
            filters = ", ".join(f"{k} {v}" for k, v in (("node", args.node), ("pipeline", args.pipeline),
                                                         ("type", ",".join(args.types or []))) if v)
            out.line(f"watching {conn.broker} root {session.profile.root!r} as {session.address}"
                     + (f" ({filters})" if filters else "") + "; Ctrl-C stops", style="dim")
        with sigterm_stops():
            try:
                session.wait(tail.done.is_set, args.seconds)
            except KeyboardInterrupt:
                pass
        tail.done.set()
        return 0
    finally:
        session.stats.on_rejected = None
        session.close()
