"""VerifyPool: check the signatures of received messages in worker processes.

Checking a signature (parse, canonical text, SHA-256, libsecp256k1) is about
two thirds of what a wall-clock session spends on a received message, and
threads cannot spread it over cores (the GIL hand-offs cost more than they
save). A :class:`VerifyPool` runs that check in ``workers`` processes: the
dispatcher :meth:`~VerifyPool.submit`\\ s a batch of raw bodies (one pickle per
batch) and, while the processes verify it, parses and applies the previous
batch; :meth:`VerifyHandle.result` gives one :class:`Verdict` per body, in
order, exactly what :func:`pye2.domain.signing.verify_fields` says in-process
(same verdict, same reason, same sender). The engine then skips its own check
(:meth:`pye2.service.engine.ProtocolEngine.receive`, ``verdict=``).

Features:

* each process is a fresh interpreter (``sys.executable -c ...``, as
  ``multiprocessing``'s ``spawn`` makes, safe in a process that runs threads;
  ``fork`` is not), started lazily on the first :meth:`~VerifyPool.submit`
  with :mod:`subprocess` and talking over a socket pair with
  :class:`multiprocessing.connection.Connection` framing. Unlike ``spawn`` and
  ``forkserver`` it does not re-import the parent's ``__main__`` script, so an
  unguarded script (the original SDK's examples have no
  ``if __name__ == "__main__":``) does not run again in every worker. Each
  builds the engine's verification from a :class:`VerifySpec`: the
  profile, the session's serializer and the ``PYE2_VERIFIER`` / ``PYE2_JSON``
  choices read in the parent (:func:`pye2.adapters.select.best_verifier`,
  :func:`~pye2.adapters.select.best_parser`,
  :func:`~pye2.adapters.select.best_sorted_text`);
* until a process has reported that it is ready, batches are verified in the
  parent (nothing waits for start-up); a batch of at least ``2 * min_part``
  bodies is split into contiguous parts, one per ready process, so they
  verify it together; parts go to the processes with the fewest outstanding
  parts first (ties in turn);
* a process that dies, stops answering (``answer_timeout``) or answers
  nonsense is killed and reaped, its outstanding batches are verified in the
  parent (nothing lost, nothing waits forever; logged), and it is restarted
  after a back-off (0.5 s doubling to 30 s) at most ``max_restarts`` times in
  a row; a process that cannot build the verification is not restarted;
* :meth:`~VerifyPool.close` terminates and reaps every process, also with
  batches outstanding (those are then verified in the parent); a worker also
  leaves by itself when the parent's end of its socket closes (the parent
  exited without closing), so none outlives its session; workers ignore
  SIGINT (Ctrl-C in a terminal reaches the whole process group; the parent
  handles it and closes them);
* nothing happens at import time.

POSIX only (the socket is passed with ``pass_fds``); elsewhere the pool
verifies in the parent and says so once.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, NamedTuple

from pye2.domain.canonical import SortedTextFn
from pye2.domain.profiles import WireProfile
from pye2.domain.signing import VerifyFn, verify_fields
from pye2.errors import ConfigError, DecodeError, SignatureInvalid
from pye2.ports.serializer import Serializer
from pye2.service.settings import env_count

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = [
    "INVALID",
    "MALFORMED",
    "MAX_DEFAULT_WORKERS",
    "OK",
    "VERIFY_WORKERS_ENV",
    "Verdict",
    "Verification",
    "VerifyHandle",
    "VerifyPool",
    "VerifySpec",
    "default_verify_workers",
    "machine_verify_workers",
    "usable_cores",
]

log = logging.getLogger(__name__)

#: Environment variable giving the number of verify worker processes (a Session's ``verify_workers`` wins).
VERIFY_WORKERS_ENV = "PYE2_VERIFY_WORKERS"

#: :attr:`Verdict.status` values.
OK = "ok"
INVALID = "invalid"
MALFORMED = "malformed"

_READY = ("ready",)
_ERROR = "error"
_PICKLE = pickle.HIGHEST_PROTOCOL
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
#: What a worker interpreter runs: take the parent's import path, then serve on the inherited socket.
_BOOT = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"  # Ctrl-C reaches the process group: the parent handles it
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "sys.path[:] = conn.recv()\n"
    "from pye2.service.verify_workers import _worker_main\n"
    "_worker_main(conn)\n"
)


#: the most worker processes the machine-based default starts (more cores than this gain little:
#: the dispatcher thread, which parses and delivers, becomes the bound)
MAX_DEFAULT_WORKERS = 3


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def machine_verify_workers(cores: int | None = None) -> int:
    """The default number of verify workers for a machine with ``cores`` usable cores.

    One core: 0 (a worker would only take time from the dispatcher). Otherwise
    one worker per core beyond the first, at most :data:`MAX_DEFAULT_WORKERS`:
    the session's own process keeps a core for receiving, parsing and delivering
    while the workers check signatures on the others.
    """
    n = usable_cores() if cores is None else cores
    return max(0, min(n - 1, MAX_DEFAULT_WORKERS))


def default_verify_workers() -> int:
    """``$PYE2_VERIFY_WORKERS`` if set (a non-negative integer), else :func:`machine_verify_workers`.

    Workers start only when a large batch is waiting (see :class:`VerifyPool`):
    a session that keeps up never starts one.

    Raises:
        ConfigError: the variable is not a non-negative integer.
    """
    return env_count(VERIFY_WORKERS_ENV, machine_verify_workers(), minimum=0)


class Verdict(NamedTuple):
    """What the signature check said about one received body.

    Attributes:
        status: :data:`OK`, :data:`INVALID` (``reason`` is the
            :class:`~pye2.errors.SignatureInvalid` reason) or :data:`MALFORMED`
            (not checked: the bytes do not parse, are too large, or the check
            itself failed; ``reason`` says which, and the receiver decides).
        reason: empty when ``ok``.
        sender: what ``verify_fields`` returned (ok), else the message's
            ``EE_SENDER`` when it is a string.
    """

    status: str
    reason: str = ""
    sender: str | None = None

    @property
    def ok(self) -> bool:
        """The signature verified."""
        return self.status == OK

    @property
    def checked(self) -> bool:
        """The signature was checked (ok or invalid), so the receiver need not check it again."""
        return self.status != MALFORMED


@dataclass(frozen=True)
class VerifySpec:
    """Everything a process needs to build the engine's verification (pickled once per process).

    Attributes:
        profile: the session's wire profile.
        serializer: the session's serializer (the parser is chosen from it).
        verifier: the ``PYE2_VERIFIER`` choice ("" = auto).
        json: the ``PYE2_JSON`` choice ("" = auto).
        max_message_bytes: larger bodies are not parsed (the engine rejects them).
    """

    profile: WireProfile
    serializer: Serializer
    verifier: str = ""
    json: str = ""
    max_message_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_environment(cls, profile: WireProfile, serializer: Serializer, *,
                         max_message_bytes: int = 16 * 1024 * 1024) -> VerifySpec:
        """A spec with this process's ``PYE2_VERIFIER`` / ``PYE2_JSON`` choices."""
        from pye2.adapters.select import JSON_ENV, VERIFIER_ENV

        return cls(profile, serializer, os.environ.get(VERIFIER_ENV, ""), os.environ.get(JSON_ENV, ""),
                   max_message_bytes)


class Verification:
    """The engine's signature check on raw bodies (in a worker, or in the parent as the fallback).

    Raises (on construction):
        ExtraMissing, PluginNotFound, ConfigError, SerializerUnavailable: as the
        :mod:`pye2.adapters.select` functions do for the spec's choices.
    """

    def __init__(self, spec: VerifySpec) -> None:
        from pye2.adapters.select import best_parser, best_sorted_text, best_verifier

        self.spec = spec
        self._parse: Callable[[bytes], dict[str, Any]] = best_parser(spec.serializer, spec.json)
        self._sorted_text: SortedTextFn | None = best_sorted_text(spec.json)
        self._verify: VerifyFn = best_verifier(spec.verifier).verify

    def verdict(self, body: bytes) -> Verdict:
        """The verdict on one body (never raises)."""
        if len(body) > self.spec.max_message_bytes:
            return Verdict(MALFORMED, f"{len(body)} bytes > {self.spec.max_message_bytes}")
        try:
            message = self._parse(body)
        except DecodeError as exc:
            return Verdict(MALFORMED, str(exc))
        except Exception as exc:  # noqa: BLE001 - a parser bug must not end the batch: the receiver re-parses
            return Verdict(MALFORMED, f"parser error {type(exc).__name__}: {exc}")
        raw_sender = message.get("EE_SENDER") if isinstance(message, dict) else None
        sender = raw_sender if isinstance(raw_sender, str) else None
        try:
            checked = verify_fields(message, profile=self.spec.profile, verify=self._verify, json_native=True,
                                    sorted_text=self._sorted_text)
        except SignatureInvalid as exc:
            return Verdict(INVALID, exc.reason, sender)
        except Exception as exc:  # noqa: BLE001 - unchecked: the receiver checks again and reports it
            return Verdict(MALFORMED, f"check failed {type(exc).__name__}: {exc}", sender)
        return Verdict(OK, "", checked)

    def verdicts(self, bodies: Sequence[bytes]) -> list[Verdict]:
        """One verdict per body, in order."""
        verdict = self.verdict
        return [verdict(body) for body in bodies]


# -- the worker process -----------------------------------------------------------------

def _worker_main(conn: Connection) -> None:
    """A worker process: build the verification, then answer each batch with its verdicts until EOF."""
    try:
        check = Verification(pickle.loads(conn.recv_bytes()))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops restarting us
        conn.send_bytes(pickle.dumps((_ERROR, f"{type(exc).__name__}: {exc}"), _PICKLE))
        return
    conn.send_bytes(pickle.dumps(_READY, _PICKLE))
    # A reader thread keeps our input drained, so the parent's send never waits on our answer (no deadlock
    # however large the batches and answers are).
    batches: SimpleQueue[bytes | None] = SimpleQueue()
    threading.Thread(target=_read_batches, args=(conn, batches), name="pye2-verify-reader", daemon=True).start()
    try:
        while (raw := batches.get()) is not None:
            conn.send_bytes(pickle.dumps(check.verdicts(pickle.loads(raw)), _PICKLE))
    except OSError:
        pass  # the parent is gone


def _read_batches(conn: Connection, out: SimpleQueue[bytes | None]) -> None:
    try:
        while True:
            out.put(conn.recv_bytes())
    except (EOFError, OSError):
        out.put(None)


# -- the parent side --------------------------------------------------------------------

class _Child:
    """A worker interpreter started with :mod:`subprocess`: exit status, signals, reaping, a sentinel."""

    __slots__ = ("_pidfd", "_popen", "pid")

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        try:  # readable once the process exits (Linux 5.3+); without it, the socket's EOF says the same
            self._pidfd: int | None = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            self._pidfd = None

    @property
    def sentinel(self) -> int | None:
        return self._pidfd

    @property
    def exitcode(self) -> int | None:
        """The exit status once it has exited (and been reaped), else None."""
        return self._popen.poll()

    def terminate(self) -> None:
        self._popen.terminate()  # (no signal once it has been reaped)

    def kill(self) -> None:
        self._popen.kill()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for it to exit, reaping it (no zombie)."""
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def release(self) -> None:
        """Close the sentinel (``slot.io`` held: nobody is waiting on it)."""
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class _Slot:
    """One worker process and its pipe; ``io`` guards both and the slot's state."""

    __slots__ = ("conn", "failures", "index", "io", "outstanding", "process", "ready", "retired", "retry_at",
                 "started_at")

    def __init__(self, index: int) -> None:
        self.index = index
        self.io = threading.Lock()
        self.process: _Child | None = None
        self.conn: Connection | None = None
        self.ready = False
        self.outstanding: deque[_Part] = deque()
        self.failures = 0
        self.retired = False
        self.retry_at = 0.0
        self.started_at = 0.0


class _Part:
    """A contiguous part of a batch, sent to one process (or to none: then verified here)."""

    __slots__ = ("bodies", "slot", "verdicts")

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.slot: _Slot | None = None
        self.verdicts: list[Verdict] | None = None


class VerifyHandle:
    """The verdicts of one submitted batch, once :meth:`result` is called."""

    __slots__ = ("_parts", "_pool")

    def __init__(self, pool: VerifyPool, parts: list[_Part]) -> None:
        self._pool = pool
        self._parts = parts

    def done(self) -> bool:
        """The verdicts are here (result() will not wait)."""
        return all(part.verdicts is not None for part in self._parts)

    def result(self) -> list[Verdict]:
        """One verdict per body, in order: from the workers, or computed here if a worker failed or closed."""
        parts = self._parts
        collect = self._pool._collect
        if len(parts) == 1:
            verdicts = parts[0].verdicts
            return verdicts if verdicts is not None else collect(parts[0])
        out: list[Verdict] = []
        for part in parts:
            verdicts = part.verdicts
            out.extend(verdicts if verdicts is not None else collect(part))
        return out


class VerifyPool:
    """``workers`` processes that verify batches of received bodies (see the module docstring).

    Args:
        spec: what to build in each process (and in the parent for the fallback).
        workers: number of processes (at least 1).
        name: used in the processes' command lines (``pye2-verify-NAME-I``).
        answer_timeout: seconds a process may take to answer before it is
            taken for hung, killed and restarted.
        start_timeout: seconds a process may take to report that it is ready.
        max_restarts: restarts of one process in a row (without an answer in
            between) before it is given up.
        min_part: smallest part a batch is split into (see :meth:`submit`).
    """

    def __init__(self, spec: VerifySpec, workers: int, *, name: str = "pye2", answer_timeout: float = 10.0,
                 start_timeout: float = 60.0, max_restarts: int = 5, min_part: int = 32) -> None:
        if workers < 1:
            raise ConfigError("a VerifyPool needs at least one worker process")
        self.spec = spec
        self.size = workers
        self.name = name
        self.answer_timeout = answer_timeout
        self.start_timeout = start_timeout
        self.max_restarts = max_restarts
        self.min_part = max(1, min_part)
        self._slots = [_Slot(i) for i in range(workers)]
        self._lock = threading.Lock()  # started/closed/disabled, the turn counter, (re)starts
        self._started = False
        self._closed = False
        self._disabled = False
        self._turn = 0
        self._local: Verification | _Unchecked | None = None
        self._local_lock = threading.Lock()
        self._wait: Callable[..., list[Any]] | None = None
        self._spec_bytes = b""
        #: parts of batches answered by the processes, batches (or parts) verified in this process
        #: instead (start-up, failures, close), processes restarted, and the pid of every process
        #: started (diagnostics)
        self.answered = 0
        self.local_batches = 0
        self.restarts = 0
        self.started: list[int] = []

    # -- public API ---------------------------------------------------------------------
    def submit(self, bodies: Sequence[bytes]) -> VerifyHandle:
        """Send a batch to the worker processes; the handle's ``result()`` gives its verdicts.

        A batch of at least ``2 * min_part`` bodies is split in contiguous parts, one
        per ready process, so they verify it together; a part no process can take
        now is verified here when the result is asked for.
        """
        bodies = list(bodies)
        if not bodies:
            empty = _Part(bodies)
            empty.verdicts = []
            return VerifyHandle(self, [empty])
        with self._lock:
            usable = not (self._closed or self._disabled)
            if usable and not self._started:
                self._start_all()
                usable = not self._disabled
            turn = self._turn
            self._turn += 1
        if not usable:
            return VerifyHandle(self, [_Part(bodies)])
        n = self.size
        candidates = [slot for slot in (self._slots[(turn + i) % n] for i in range(n))
                      if slot.ready or self._tend(slot)]
        candidates.sort(key=lambda s: len(s.outstanding))  # stable: ties keep their turn order
        count = max(1, min(len(candidates), len(bodies) // self.min_part))
        size = -(-len(bodies) // count)
        parts = [_Part(bodies[i:i + size]) for i in range(0, len(bodies), size)] if count > 1 else [_Part(bodies)]
        queue = iter(candidates)
        for part in parts:
            for slot in queue:
                if self._send(slot, part):
                    break
        return VerifyHandle(self, parts)

    def _send(self, slot: _Slot, part: _Part) -> bool:
        """Give the part to the slot's process; False if it cannot take it now."""
        if not slot.io.acquire(blocking=False):
            return False  # another thread is reading its answers
        try:
            if not slot.ready or slot.conn is None or self._closed:
                return False
            try:
                slot.conn.send_bytes(pickle.dumps(part.bodies, _PICKLE))
            except (OSError, ValueError):
                self._fail(slot, "could not take a batch")
                return False
            part.slot = slot
            slot.outstanding.append(part)
            return True
        finally:
            slot.io.release()

    def start(self, wait: float | None = None) -> int:
        """Start the processes now rather than on the first :meth:`submit`; returns how many are ready.

        Args:
            wait: seconds to wait for every process that can start to report ready
                (None: do not wait).
        """
        with self._lock:
            if self._closed or self._disabled:
                return 0
            if not self._started:
                self._start_all()
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            waiting = [s for s in self._slots if not s.ready and not s.retired]
            for slot in waiting:
                self._tend(slot)
            left = deadline - time.monotonic()
            waiting = [s for s in waiting if not s.ready and not s.retired]
            if not waiting or left <= 0 or self._closed:
                return self.ready
            # wake on start-up news, a process exiting, or a restart falling due
            handles: list[Any] = [h for s in waiting if s.process and s.conn
                                  for h in (s.conn, s.process.sentinel) if h is not None]
            due = min((s.retry_at for s in waiting if s.process is None), default=deadline)
            timeout = max(0.0, min(left, due - time.monotonic()))
            if handles and self._wait is not None:
                self._wait(handles, timeout)
            elif timeout > 0:
                threading.Event().wait(timeout)  # only a back-off to sit out: nothing to wait on

    def close(self) -> None:
        """Stop every process (outstanding batches are then verified by whoever asks for them). Idempotent."""
        with self._lock:
            self._closed = True
        processes = [p for p in (s.process for s in self._slots) if p is not None]
        for process in processes:
            if process.exitcode is None:
                process.terminate()
        deadline = time.monotonic() + 1.0
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:  # e.g. stopped (SIGSTOP): a stopped process only takes SIGKILL
                process.kill()
        for slot in self._slots:
            if slot.io.acquire(timeout=5):
                try:
                    if slot.process is not None:
                        self._fail(slot, "closed")
                finally:
                    slot.io.release()
            else:  # a reader is stuck (it cannot be: its process is gone); reap without its pipe
                stuck = slot.process
                if stuck is not None:
                    stuck.kill()
                    stuck.join(2)

    def pids(self) -> list[int]:
        """Process ids of the running workers (for diagnostics)."""
        return [p.pid for p in (s.process for s in self._slots) if p is not None and p.pid is not None]

    @property
    def ready(self) -> int:
        """How many processes are ready to take batches."""
        return sum(1 for s in self._slots if s.ready)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._started else "new")
        return f"<VerifyPool {self.name!r} {self.size} worker(s) {state}, {self.ready} ready>"

    # -- starting and tending processes -------------------------------------------------
    def _start_all(self) -> None:
        if os.name != "posix":
            log.warning("verify workers need a POSIX system: verifying in this process")
            self._disabled = True
            return
        try:
            self._spec_bytes = pickle.dumps(self.spec, _PICKLE)
        except Exception as exc:  # noqa: BLE001 - e.g. a third-party serializer that does not pickle
            log.warning("verify workers disabled, verifying in this process: the session's settings cannot be "
                        "sent to a process (%s: %s)", type(exc).__name__, exc)
            self._disabled = True
            return
        self._started = True
        for slot in self._slots:
            with slot.io:
                self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        """Start the slot's process (``slot.io`` held)."""
        import socket
        from multiprocessing.connection import Connection, wait

        self._wait = wait
        ours, theirs = socket.socketpair()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno()), f"pye2-verify-{self.name}-{slot.index}"],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        except Exception as exc:  # noqa: BLE001 - e.g. out of processes: verify here, retry later
            ours.close()
            theirs.close()
            slot.failures += 1
            slot.retired = slot.failures > self.max_restarts
            slot.retry_at = time.monotonic() + self._backoff(slot)
            log.warning("could not start verify worker %d (%s: %s)%s", slot.index, type(exc).__name__, exc,
                        "; it is given up" if slot.retired else "")
            return
        theirs.close()  # only the child's copy stays open, so its death reads as EOF here
        conn = Connection(ours.detach())
        slot.process, slot.conn = _Child(popen), conn
        self.started.append(popen.pid)
        slot.ready = False
        slot.started_at = time.monotonic()
        log.debug("verify worker %d started (pid %s)", slot.index, popen.pid)
        try:  # a few KB: they wait in the socket until the child reads them
            conn.send(list(sys.path))
            conn.send_bytes(self._spec_bytes)
        except OSError:
            self._fail(slot, "could not be given its settings")

    def _tend(self, slot: _Slot) -> bool:
        """Make progress on a slot that is not ready (start-up news, restart due); True once it is ready."""
        if slot.retired or self._closed or not slot.io.acquire(blocking=False):
            return False
        try:
            if self._closed:  # close() may have passed this slot while we waited for it
                return False
            if slot.process is None:
                if time.monotonic() >= slot.retry_at:
                    self.restarts += 1
                    self._spawn(slot)
                return False
            conn = slot.conn
            assert conn is not None
            try:
                news = pickle.loads(conn.recv_bytes()) if conn.poll() else None
            except (EOFError, OSError, pickle.UnpicklingError):
                self._fail(slot, "exited while starting")
                return False
            if news == _READY:
                slot.ready = True
                log.debug("verify worker %d ready after %.3f s", slot.index, time.monotonic() - slot.started_at)
                return True
            if isinstance(news, tuple) and news[:1] == (_ERROR,):
                self._fail(slot, f"could not build the verification: {news[1]}", retire=True)
            elif news is not None:
                self._fail(slot, "sent an unexpected message while starting")
            elif slot.process.exitcode is not None:
                self._fail(slot, "exited while starting")
            elif time.monotonic() - slot.started_at > self.start_timeout:
                self._fail(slot, f"did not start within {self.start_timeout:.0f} s")
            return False
        finally:
            slot.io.release()

    def _backoff(self, slot: _Slot) -> float:
        return float(min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** max(0, slot.failures - 1)))

    def _fail(self, slot: _Slot, why: str, *, retire: bool = False) -> None:
        """Kill and reap the slot's process; its batches go to the parent; maybe restart later (``slot.io`` held)."""
        process, conn = slot.process, slot.conn
        lost = list(slot.outstanding)
        slot.outstanding.clear()
        for part in lost:
            part.slot = None
        slot.process = slot.conn = None
        slot.ready = False
        if process is not None:
            if process.exitcode is None:
                process.kill()
            process.join(5)
            process.release()
        if conn is not None:
            conn.close()
        who = f"verify worker {slot.index}" + (
            f" (pid {process.pid}, exit code {process.exitcode})" if process is not None else "")
        if self._closed:
            log.debug("%s stopped; %d outstanding batch(es) verified in this process", who, len(lost))
            return
        slot.failures += 1
        if retire or slot.failures > self.max_restarts:
            slot.retired = True
            log.error("%s %s; %d outstanding batch(es) verified in this process; it is not restarted%s",
                      who, why, len(lost), "" if retire else f" after {self.max_restarts} restarts in a row")
            return
        delay = self._backoff(slot)
        slot.retry_at = time.monotonic() + delay
        log.warning("%s %s; %d outstanding batch(es) verified in this process; restarting it in %.1f s",
                    who, why, len(lost), delay)

    # -- answers --------------------------------------------------------------------------
    def _collect(self, part: _Part) -> list[Verdict]:
        slot = part.slot
        if slot is not None:
            with slot.io:
                while part.verdicts is None and part.slot is slot:
                    self._read_one(slot)
        verdicts = part.verdicts
        if verdicts is None:
            verdicts = part.verdicts = self._verify_here(part.bodies)
        return verdicts

    def _read_one(self, slot: _Slot) -> None:
        """Wait for the slot's next answer and hand it to its batch (``slot.io`` held)."""
        conn, process, wait = slot.conn, slot.process, self._wait
        assert conn is not None and process is not None and wait is not None
        try:
            sentinel = process.sentinel
            if not wait([conn] if sentinel is None else [conn, sentinel], self.answer_timeout):
                self._fail(slot, f"did not answer within {self.answer_timeout:.1f} s")
                return
            if not conn.poll():
                self._fail(slot, "died")
                return
            answer = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError):
            self._fail(slot, "died")
            return
        batch = slot.outstanding[0]
        if not isinstance(answer, list) or len(answer) != len(batch.bodies):
            self._fail(slot, "sent an answer that does not match its batch")
            return
        slot.outstanding.popleft()
        slot.failures = 0
        self.answered += 1
        batch.verdicts = answer

    def _verify_here(self, bodies: list[bytes]) -> list[Verdict]:
        """The verdicts computed in this process; unchecked ones if the verification cannot be built here."""
        local = self._local
        if local is None:
            with self._local_lock:
                if self._local is None:
                    try:
                        self._local = Verification(self.spec)
                    except Exception as exc:  # noqa: BLE001 - the receiver checks these itself
                        log.error("cannot verify in this process either (%s: %s): the receiver checks each message",
                                  type(exc).__name__, exc)
                        self._local = _Unchecked(f"{type(exc).__name__}: {exc}")
                local = self._local
        self.local_batches += 1
        return local.verdicts(bodies)


class _Unchecked:
    """Stands in for a :class:`Verification` that cannot be built: every body is left unchecked."""

    def __init__(self, why: str) -> None:
        self._verdict = Verdict(MALFORMED, f"not checked: {why}")

    def verdicts(self, bodies: Sequence[bytes]) -> list[Verdict]:
        return [self._verdict] * len(bodies)
