"""``pye2 capture`` and ``pye2 replay``: record what goes over the wire, play it back.

::

    pye2 capture FILE [--seconds N] [--url URL] [--root-topic R] [--profile P] [--max-bytes N] [--json]
    pye2 replay FILE [--speed X] [--to URL | --sim] [--root-topic R] [--profile P] [--key PATH] [--json]

The broker URL defaults to the one a ``Session`` would use (``PYE2_TRANSPORT``,
``PYE2_HOST`` ... from the environment or ``.env``); the root topic to the
profile's (capture) or the capture's own (replay). Status lines go to stderr,
the summary to stdout (one JSON object with ``--json``). Exit codes: 0 done,
1 failure (broker unreachable, unreadable file, malformed capture lines),
2 usage error, 130 interrupted replay. The file format is described in
:mod:`pye2.capture`; the replay in :mod:`pye2.capture.replay`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pye2.capture import DEFAULT_MAX_BYTES, CaptureHeader, CaptureReader, CaptureWriter, MalformedLine
from pye2.capture.replay import Replayer, ReplayReport, WallPacer, replay_into_session
from pye2.cli_signals import sigterm_stops
from pye2.domain.logtext import clip
from pye2.domain.profiles import AIXP, WireProfile, get_profile
from pye2.domain.urls import mask_url
from pye2.errors import ConfigError, Pye2Error, TransportError
from pye2.ports.transport import Delivery

__all__ = ["add_commands", "cmd_capture", "cmd_replay"]

log = logging.getLogger(__name__)

#: malformed lines printed one by one (all are counted)
SHOWN_PROBLEMS = 10


# -- connection options (self-contained: broker URL, root topic, profile) -------------------


def _add_connection_options(parser: argparse.ArgumentParser, *, url_flags: tuple[str, ...], url_help: str,
                            url_group: Any = None, from_capture: bool = False) -> None:
    # the same spellings as the other network commands (--broker, --root), and the older ones
    (url_group or parser).add_argument(*url_flags, dest="url", default=None, metavar="URL", help=url_help)
    root_default = "the capture's" if from_capture else "the profile's"
    profile_default = "the capture's, else $PYE2_PROFILE" if from_capture else "$PYE2_PROFILE"
    parser.add_argument("--root", "--root-topic", dest="root_topic", default=None, metavar="ROOT",
                        help=f"topic root (default: {root_default}; use a private one on a shared broker)")
    parser.add_argument("--profile", type=str.lower, choices=("aixp", "ratio1"), default=None,
                        help=f"wire profile (default: {profile_default}, else aixp)")
    parser.add_argument("--connect-timeout", dest="connect_timeout", type=_positive, default=None,
                        metavar="SECONDS", help="give up connecting after this long (default: the transport's)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return value


def _byte_count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a count of bytes: {text!r}")
    return int(text)


def _settings() -> Any:
    from pye2.service.settings import resolve_settings

    return resolve_settings(host=None, port=None, user=None, pwd=None, transport=None, profile=None)


def _broker_url(url: str | None) -> str:
    if url:
        return url
    found = _settings().transport_url()
    if found is None:
        raise ConfigError("no broker: pass the URL (mqtt://host:1883, amqp://user:pwd@host/) "
                          "or set PYE2_TRANSPORT / PYE2_HOST")
    return str(found)


def _profile(name: str | None, fallback: str | None = None) -> WireProfile:
    chosen = name or fallback or _settings().profile
    return get_profile(chosen.upper()) if chosen else AIXP


def _connect(url: str, connect_timeout: float | None) -> Any:
    """A connected transport for ``url``; one clear line (exit 1) if that fails."""
    from pye2.plugins.host import default_host

    options = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    transport = default_host().make_transport(url, **options)
    try:
        transport.connect()
    except TransportError as exc:
        _close_quietly(transport)
        raise TransportError(f"cannot connect to {mask_url(url)}: {exc}") from None
    return transport


def _close_quietly(transport: Any) -> None:
    try:
        transport.close()
    except Pye2Error as exc:
        log.warning("closing the transport failed: %s", exc)


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- capture -----------------------------------------------------------------------------------


def cmd_capture(args: argparse.Namespace) -> int:
    """Record every message under the root topic to FILE until Ctrl-C, SIGTERM or ``--seconds``."""
    url = _broker_url(args.url)
    profile = _profile(args.profile)
    root = args.root_topic or profile.root
    profile = profile.with_root(root)
    path = Path(args.file)
    transport = _connect(url, args.connect_timeout)
    started, began = time.time(), time.monotonic()
    interrupted = False
    try:
        writer = CaptureWriter.open(path, max_bytes=args.max_bytes)
        writer.write_header(CaptureHeader(root=root, profile=profile.name, started=round(started, 6),
                                          source=mask_url(url)))
    except OSError as exc:
        _close_quietly(transport)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with sigterm_stops():
            try:
                subscription = transport.subscribe(f"{root}/#", _echoing(writer) if args.echo else writer.handler())
                _status(f"capturing {root}/# on {mask_url(url)} to {path}"
                        + (f" for {args.seconds:g} s" if args.seconds else "") + " (Ctrl-C stops)")
                _wait(writer, args.seconds, progress=not args.echo and sys.stderr.isatty())
                subscription.cancel()
            except KeyboardInterrupt:
                interrupted = True
    finally:
        _close_quietly(transport)
        writer.close()
    _print_capture_summary(args, writer, path, root, time.monotonic() - began, interrupted)
    if writer.write_errors:
        print(f"error: {path}: {writer.write_errors} write(s) failed; the capture is incomplete", file=sys.stderr)
        return 1
    return 0


def _echoing(writer: CaptureWriter) -> Callable[[Delivery], None]:
    """A handler that records each message and prints a line for it on stderr: time, topic, size."""
    lock = threading.Lock()

    def on_delivery(delivery: Delivery) -> None:
        when = time.time()
        kept = writer.record(delivery.address, delivery.body, when)
        stamp = time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"
        with lock:
            omitted = not kept and len(delivery.body) > writer.max_bytes
            print(f"{stamp} {clip(delivery.address, 200)} {len(delivery.body)} bytes"
                  + (" (omitted)" if omitted else ""), file=sys.stderr, flush=True)

    return on_delivery


def _wait(writer: CaptureWriter, seconds: float | None, progress: bool) -> None:
    """Wait for ``seconds`` (or forever); with ``progress``, show the running count once a second."""
    deadline = None if seconds is None else time.monotonic() + seconds
    forever = threading.Event()  # never set: Event.wait is the interruptible wait
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        forever.wait(1.0 if left is None else min(1.0, left))
        if progress:
            print(f"\r  {writer.messages} message(s)", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)


def _print_capture_summary(args: argparse.Namespace, writer: CaptureWriter, path: Path, root: str, elapsed: float,
                           interrupted: bool) -> None:
    summary = {"file": str(path), "root": root, "messages": writer.messages, "written": writer.written,
               "omitted": writer.omitted, "write_errors": writer.write_errors, "max_bytes": writer.max_bytes,
               "bytes": writer.bytes, "by_kind": dict(sorted(writer.by_kind.items())), "seconds": round(elapsed, 3),
               "stopped_by": "interrupt" if interrupted else "time"}
    if args.json:
        print(json.dumps(summary))
        return
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(writer.by_kind.items())) or "nothing"
    print(f"captured {writer.messages} message(s) under {root}/# in {elapsed:.1f} s to {path}: {kinds}")
    print(f"  {writer.bytes} body bytes; {writer.omitted} omitted (over {writer.max_bytes} bytes: skipped, "
          "kept as 'omitted' lines)")


# -- replay ------------------------------------------------------------------------------------


class _ProblemPrinter:
    """Prints the first malformed lines of a capture as they are found."""

    def __init__(self, path: Path, out: TextIO) -> None:
        self.path, self.out, self.count = path, out, 0

    def __call__(self, problem: MalformedLine) -> None:
        self.count += 1
        if self.count <= SHOWN_PROBLEMS:
            print(f"error: {self.path} {problem}", file=self.out, flush=True)
        elif self.count == SHOWN_PROBLEMS + 1:
            print(f"error: {self.path}: more malformed lines (counted in the summary)", file=self.out, flush=True)


def cmd_replay(args: argparse.Namespace) -> int:
    """Play FILE back onto a broker (``--to``) or into a simulated network with a session (``--sim``)."""
    path = Path(args.file)
    try:
        handle = open(path, encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        problems = _ProblemPrinter(path, sys.stderr)
        reader = CaptureReader(handle, on_malformed=problems)
        header = reader.read_header()
        first = reader.peek()
        captured_root = header.root if header is not None else first.topic.split("/")[0] if first else None
        profile = _profile(args.profile, header.profile if header is not None else None)
        root = args.root_topic or captured_root or profile.root
        profile = profile.with_root(root)
        report = ReplayReport()
        if args.sim:
            identity = _identity(args)
            report, counters = replay_into_session(reader, profile=profile, identity=identity, verify=args.verify,
                                                   report=report, root=(captured_root, root))
            _print_sim_summary(args, path, report, counters, reader.malformed_count, root)
            return 1 if reader.malformed_count else 0
        url = _broker_url(args.url)
        transport = _connect(url, args.connect_timeout)
        try:
            with sigterm_stops():
                try:
                    _status(f"replaying {path} onto {mask_url(url)} under {root}/"
                            + (f" at {args.speed:g}x" if args.speed else " as fast as possible") + " (Ctrl-C stops)")
                    Replayer(transport.publish, WallPacer(args.speed), root=(captured_root, root)).play(reader, report)
                except KeyboardInterrupt:
                    report.interrupted = True
        finally:
            _close_quietly(transport)
        _print_broker_summary(args, path, report, reader.malformed_count, root, mask_url(url))
    if report.interrupted:
        return 130
    return 1 if reader.malformed_count else 0


def _identity(args: argparse.Namespace) -> Any:
    if args.key is None:
        return None
    import os

    from pye2.wire import Identity

    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise ConfigError(f"environment variable {args.password_env} (from --password-env) is not set")
    return Identity.load(args.key, password)


def _replay_line(path: Path, report: ReplayReport, malformed: int, where: str) -> str:
    failed = sum(report.failed.values())
    text = (f"replayed {report.published} message(s) from {path} {where} "
            f"(captured over {report.captured_span:.1f} s, took {report.elapsed:.1f} s); "
            f"{report.omitted} omitted at capture, {failed} refused, {malformed} malformed line(s)")
    return text + (" -- interrupted" if report.interrupted else "")


def _print_broker_summary(args: argparse.Namespace, path: Path, report: ReplayReport, malformed: int, root: str,
                          url: str) -> None:
    if args.json:
        print(json.dumps({"file": str(path), "to": url, "root": root, "replay": report.as_dict(),
                          "malformed_lines": malformed}))
        return
    print(_replay_line(path, report, malformed, f"onto {url} under {root}/"))


def _print_sim_summary(args: argparse.Namespace, path: Path, report: ReplayReport, counters: dict[str, Any],
                       malformed: int, root: str) -> None:
    if args.json:
        print(json.dumps({"file": str(path), "to": "sim", "root": root, "replay": report.as_dict(),
                          "malformed_lines": malformed, "counters": counters}))
        return
    print(_replay_line(path, report, malformed, "into a simulated network"))
    print("session counters (a fresh session, virtual clock at the captured times):")
    for key, value in counters.items():
        if isinstance(value, dict):
            value = ", ".join(f"{clip(str(k), 40)} {n}" for k, n in sorted(value.items())) or "none"
        print(f"  {key:<19} {value}")


# -- parser ------------------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """Add ``capture`` and ``replay`` to the CLI's subparsers."""
    capture = commands.add_parser("capture", help="record every message under the root topic to a file "
                                                  "(one JSON object a line)")
    capture.add_argument("file", help="capture file to write (replaced if it exists)")
    capture.add_argument("--seconds", type=_positive, default=None, help="stop after this long (default: Ctrl-C)")
    capture.add_argument("--echo", action="store_true",
                         help="also print a line per message on stderr (time, topic, size)")
    capture.add_argument("--max-bytes", dest="max_bytes", type=_byte_count, default=DEFAULT_MAX_BYTES,
                         help=f"bodies above this are skipped and counted (default {DEFAULT_MAX_BYTES})")
    _add_connection_options(capture, url_flags=("--broker", "--url"),
                            url_help="broker URL (default: $PYE2_TRANSPORT / $PYE2_HOST ..., as a Session)")
    capture.set_defaults(func=cmd_capture)

    replay = commands.add_parser("replay", help="play a capture back onto a broker, or into a simulated "
                                                "network and print a session's counters")
    replay.add_argument("file", help="capture file (from pye2 capture)")
    replay.add_argument("--speed", type=_non_negative, default=1.0,
                        help="time scale: 2 = twice as fast, 0 = as fast as possible (default 1; --sim runs "
                             "on virtual time)")
    where = replay.add_mutually_exclusive_group()
    where.add_argument("--sim", action="store_true",
                       help="into an in-process simulated network where a fresh session consumes it")
    _add_connection_options(replay, url_flags=("--to", "--broker"), url_group=where, from_capture=True,
                            url_help="broker URL to publish to (default: $PYE2_TRANSPORT / $PYE2_HOST ...)")
    replay.add_argument("--key", type=Path, default=None,
                        help="--sim: the session's key file (the live session's, to get what was sent to it)")
    replay.add_argument("--password-env", dest="password_env", metavar="VAR", default=None,
                        help="password of an encrypted --key, from $VAR")
    replay.add_argument("--verify", choices=("strict", "warn", "off"), default="strict",
                        help="--sim: the session's signature checking (default strict)")
    replay.set_defaults(func=cmd_replay)
