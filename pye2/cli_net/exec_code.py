"""``pye2 exec NODE FILE.py [--param K=V]``: run custom code on a node once and print its result.

The code is checked locally first: code the checker refuses is reported (with its
lines) before anything is sent. Then a pipeline of its own is made on the node,
the code runs once there (the SDK's ``wait_exec``), and the pipeline is archived.
``--param K=V`` (repeatable) adds instance parameters the code reads as
``plugin.cfg_<k>``; ``V`` is JSON when it parses as JSON, else a string.
Exit 1 when the code failed on the node (its error on stderr).
``--json``: one object ``node``, ``result``, ``error``, ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from pye2.cli_net._common import check_allowed, command, connect, wait_for_heartbeat
from pye2.cli_net._options import CliFailure, Connection, add_connection_options
from pye2.cli_net._output import Output, safe, safe_lines
from pye2.errors import CodeCheckError, Pye2Error

__all__ = ["add_arguments", "parse_param", "run"]

HELP = "run a Python file on a node once and print its result (code checked before sending)"
_CODE_LINE = re.compile(r'File "<string>", line (\d+)')
#: source files larger than this are refused (a node takes its code in one message)
MAX_CODE_BYTES = 1024 * 1024


def parse_param(text: str) -> tuple[str, Any]:
    """``K=V`` -> ``(K upper-cased, V as JSON or text)``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not key.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"--param wants KEY=VALUE with a name as KEY, not {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key.upper(), parsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="node name or address")
    parser.add_argument("file", type=Path, help="Python file to run (its _result, or a top-level return, is the result)")
    parser.add_argument("--param", type=parse_param, action="append", default=[], metavar="K=V",
                        help="instance parameter the code reads as plugin.cfg_<k> (repeatable)")
    add_connection_options(parser, timeout=60.0, timeout_help="seconds to wait for the node and the result")


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_CODE_BYTES:
            raise CliFailure(f"{path} is larger than {MAX_CODE_BYTES // 1024} KiB")
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliFailure(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def failure_line(error: Any, filename: str) -> str:
    """A node's error (often a traceback) as one line: its last line, and the line of the file it points at."""
    text = error if isinstance(error, str) else json.dumps(error, default=str)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no error text)"
    where = [m.group(1) for m in (_CODE_LINE.search(line) for line in lines) if m]
    return safe(lines[-1], 300) + (f" ({filename} line {where[-1]})" if where else "")


@command
def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    from pye2.domain.codecs.code import code_to_base64

    code = _read(args.file)
    try:
        code_to_base64(code, check=True)
    except CodeCheckError as exc:
        raise CliFailure(f"{args.file}: {exc} (nothing was sent)") from None
    session = conn.session()
    try:
        connect(session, conn, out)
        started = time.monotonic()
        record = wait_for_heartbeat(session, args.node, args.timeout, out, conn)
        check_allowed(session, args.node)
        name = f"pye2_exec_{uuid.uuid4().hex[:8]}"
        with out.progress(f"running {args.file.name} on {args.node}"):
            pipe = session.create_pipeline(e2id=args.node, name=name, data_source="Void", wait=args.timeout)
            try:
                result, error = pipe.wait_exec(plain_code=code, params=dict(args.param),
                                               timeout=max(1.0, args.timeout - (time.monotonic() - started)))
            finally:
                try:
                    pipe.close().wait(min(10.0, args.timeout))
                except Pye2Error:
                    pass  # the result matters more than the clean-up
        took = time.monotonic() - started
        node = record.alias
        if out.json:
            out.record({"node": node, "result": result, "error": error, "seconds": round(took, 3)})
        elif error is None:
            out.line(safe_lines(result) if isinstance(result, str) else json.dumps(result, default=str, indent=2))
        if error is not None:
            if not out.json:
                out.error(f"the code failed on {safe(node, 60)}: {failure_line(error, args.file.name)}")
            return 1
        return 0
    finally:
        session.close()
