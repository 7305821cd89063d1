"""The accounting drainer's database work, in a process of its own.

``aaa serve`` acknowledges an Accounting-Request once its record is in the journal (fsync'd); what
applies the journal to ``sessions`` is background work. In a thread of the server it costs the
reactor twice: its Python (reading segments, folding records, the database client's encoding)
takes the GIL from the reactor, and it runs at the reactor's priority. Here it runs in a child
process (``python -m aaa.apply_process``) at a lower priority (``[accounting] apply_nice``): the
reactor keeps the GIL to itself, and when both want the same core the scheduler favours the
reactor; the child catches up as soon as the burst ends (docs/performance.md, "Accounting in a
process of its own").

The protocol is a socket pair carrying pickled messages (:mod:`multiprocessing.connection`):

* parent → child, first: ``{"url": ..., "batch_size": ..., "dead_letters": path or None, "nice": n}``
  (the URL, which may hold a password, never goes on a command line);
* parent → child: a list of segment paths (oldest first) to apply, or ``None`` to exit;
* child → parent, per list: ``(ApplyResult, error or None, log lines)``, where the error is the
  one-line description of a database failure part way (the segments not applied stay in place)
  and the log lines are what the child logged meanwhile, which the parent logs as its own.

The same program, started with ``"role": "auth_log"`` in its configuration, writes the auth log
(:class:`AuthLogProcess`): parent → child, ``(path of an auth log spool file, may pause)``
(:mod:`aaa.auth_log_spool`); child → parent, ``(rows written, rows dropped, error or None, paused,
log lines)``. It runs at the lowest CPU priority there is (``SCHED_IDLE`` on Linux, else nice 19):
when it shares a core with the reactor, the scheduler lets it run only when the reactor does not
want to, but for its fair share of a core that never goes idle (a scheduler tick now and then).
So, when it may, it also pauses: before each group of rows it looks at how busy the parent's
reactor (its main thread) has been (:class:`ReactorLoad`), and when that is at least
:attr:`aaa.background.AuthLogWriter.BUSY_SHARE` of a core it leaves the rest of the file for
later and says so; the rows wait on disk, in the spool, meanwhile.

The child ignores SIGINT and SIGTERM (the parent drains the journal a last time when stopping,
and needs the child for that); it exits on ``None`` or when the parent's end closes, and on Linux
the kernel kills it when the parent dies (``PR_SET_PDEATHSIG``), so that a restarted server never
replays the journal while an orphan of the old one is still applying it. If the child dies, the
next apply starts a new one: applying is idempotent and a segment is deleted only after its
records are committed, so nothing is lost or counted twice.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from twisted.logger import Logger, LogLevel, formatEvent, globalLogPublisher

from aaa import acct_writer
from aaa.journal import DeadLetterFile

log = Logger()


class ApplyProcessError(Exception):
    """The child could not apply (the database failed part way, or the child died)."""


class ApplyProcessEnded(ApplyProcessError):
    """The child died during an apply: what it committed of that batch was never reported."""


class _Child:
    """The parent's handle on one child process; :meth:`_call` blocks (call it from a pool thread),
    one call at a time."""

    name = "child"

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.starts = 0
        """Children started so far (more than one: a child died and was replaced)."""

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start the child now (it imports and connects while the server starts up)."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> Connection:
        # A replacement is started from the pool thread that found the child gone; the kernel's
        # parent-death signal follows the thread that started the child, and the pool's threads
        # live as long as the server.
        if self._conn is not None and self._child is not None and self._child.poll() is None:
            return self._conn
        self._discard()
        ours, theirs = socket.socketpair()
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "aaa.apply_process", str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send(self._config)
        self.starts += 1
        return self._conn

    def _discard(self) -> int | None:
        """Close our end and reap the child (killing it if it still runs); its exit code."""
        code = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            code = self._child.wait()
            self._child = None
        return code

    def _call(self, message: Any) -> Any:
        """Send ``message``, return the reply with the child's log lines logged here; a child that
        ended meanwhile raises :class:`ApplyProcessEnded` (the next call starts a new one)."""
        with self._lock:
            try:
                conn = self._ensure()
                conn.send(message)
                *reply, lines = conn.recv()
            except (OSError, EOFError):
                code = self._discard()
                raise ApplyProcessEnded(f"the {self.name} process ended (exit code {code})") from None
        for level, text in lines:
            log.emit(LogLevel.levelWithName(level), "{text}", text=text)
        return reply

    def close(self, timeout: float = 10.0) -> None:
        """Ask the child to exit after its current work; kill it if it has not within ``timeout``."""
        with self._lock:
            if self._conn is not None and self._child is not None:
                try:
                    self._conn.send(None)
                    self._child.wait(timeout)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._discard()


class ApplyProcess(_Child):
    """Applies journal segments to the database in the child (at nice +19 by default: see ``[accounting] apply_nice``)."""

    name = "accounting apply"

    def __init__(self, url: str, *, batch_size: int, dead_letters: Path | None, nice: int = 19) -> None:
        super().__init__({"role": "apply", "url": url, "batch_size": batch_size,
                          "dead_letters": str(dead_letters) if dead_letters else None, "nice": nice})  # fmt: skip

    def apply(self, segments: list[Path]) -> tuple[acct_writer.ApplyResult, BaseException | None]:
        """Apply ``segments`` in the child: what was committed, and the error when the database (or
        the child) failed part way."""
        try:
            result, error = self._call([str(p) for p in segments])
        except ApplyProcessEnded as ended:
            return acct_writer.ApplyResult(), ended
        return result, None if error is None else ApplyProcessError(error)


class AuthLogProcess(_Child):
    """Writes the auth log spool's files (:mod:`aaa.auth_log_spool`) in the child, at the lowest CPU
    priority (see the module docstring)."""

    name = "auth log"

    def __init__(self, url: str) -> None:
        super().__init__({"role": "auth_log", "url": url, "nice": 19, "idle": True})

    def write_file(self, path: Path, *, may_pause: bool = False) -> tuple[int, int, BaseException | None, bool]:
        """Write ``path``'s rows in the child (see :func:`aaa.auth_log_spool.write_file`): rows
        written, rows dropped (unreadable), the database's error, if any (the rows not written
        stay in the file), and whether the child paused because the reactor was busy (only when
        ``may_pause``; the rest stays in the file). Raises :class:`ApplyProcessEnded` when the
        child ended meanwhile (what it committed of the file before is not known: those rows may
        be written again)."""
        written, dropped, error, paused = self._call((str(path), may_pause))
        return int(written), int(dropped), None if error is None else ApplyProcessError(error), bool(paused)


# --- the child --------------------------------------------------------------------------------------


def _lower_priority(config: dict[str, Any]) -> None:
    """SCHED_IDLE when asked and the platform has it (Linux), else the configured nice levels."""
    if config.get("idle") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    if config["nice"]:
        os.nice(config["nice"])


def _serve(conn: Connection, parent: int) -> None:
    from aaa.db.engine import make_engine

    config: dict[str, Any] = conn.recv()
    _lower_priority(config)
    lines: list[tuple[str, str]] = []
    observer: Any = lambda event: lines.append((event["log_level"].name, formatEvent(event)))  # noqa: E731
    globalLogPublisher.addObserver(observer)
    engine = make_engine(config["url"], pool_size=1)
    work = _auth_log_work(engine, parent) if config.get("role") == "auth_log" else _apply_work(engine, config)
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            conn.send((*work(message), lines[:]))
            lines.clear()
    finally:
        engine.dispose()


def _apply_work(engine: Any, config: dict[str, Any]) -> Any:
    from aaa.background import apply_segments
    from aaa.journal import describe_error

    dead_letters = DeadLetterFile(Path(config["dead_letters"])) if config["dead_letters"] else None

    def work(segments: list[str]) -> tuple[Any, str | None]:
        result, error = apply_segments(engine, [Path(p) for p in segments], batch_size=config["batch_size"], dead_letters=dead_letters)
        return result, None if error is None else describe_error(error)

    return work


def _auth_log_work(engine: Any, parent: int) -> Any:
    from aaa.auth_log_spool import write_file
    from aaa.background import AuthLogTable
    from aaa.journal import describe_error

    table = AuthLogTable(engine)
    load = ReactorLoad(parent)

    def work(message: tuple[str, bool]) -> tuple[int, int, str | None, bool]:
        path, may_pause = Path(message[0]), message[1]
        load.forget()  # measured afresh: what the parent did while this child waited says nothing now
        written, dropped, error = write_file(path, table.write, pause=load.busy if may_pause else None)
        paused = error is None and path.exists()
        return written, dropped, None if error is None else describe_error(error), paused

    return work


class ReactorLoad:
    """How busy a process's main thread (``aaa serve``'s reactor) has been lately, from its CPU time
    in ``/proc/<pid>/task/<pid>/schedstat`` (Linux; elsewhere never busy).

    :meth:`busy` measures over the time since its last measure when that is at least :attr:`WINDOW`
    and recent (the groups of rows just written), repeats its last answer when that is shorter, and
    otherwise (and after :meth:`forget`) sleeps a fresh :attr:`WINDOW`. The kernel brings a running
    thread's time up to date at each scheduler tick (4 ms at 250 Hz), hence a window of several.
    """

    WINDOW = 0.02
    """The shortest span measured over, in seconds."""
    STALE = 0.2

    def __init__(self, pid: int) -> None:
        from aaa.background import AuthLogWriter

        self._path = f"/proc/{pid}/task/{pid}/schedstat"
        self._share = AuthLogWriter.BUSY_SHARE
        self._mark: tuple[float, float] | None = None
        self._busy = False

    def forget(self) -> None:
        self._mark = None
        self._busy = False

    def _read(self) -> tuple[float, float]:
        with open(self._path, "rb") as f:
            return time.monotonic(), int(f.read().split()[0]) / 1e9

    def busy(self) -> bool:
        try:
            now, cpu = self._read()
            if self._mark is None or now - self._mark[0] > self.STALE:
                self._mark = (now, cpu)
                time.sleep(self.WINDOW)
                now, cpu = self._read()
            elif now - self._mark[0] < self.WINDOW:
                return self._busy
        except (OSError, ValueError, IndexError):
            return False
        then, cpu_then = self._mark
        self._mark = (now, cpu)
        self._busy = (cpu - cpu_then) / (now - then) >= self._share
        return self._busy


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when the thread that started it ends (its parent dying)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(int(argv[1]))
    conn = Connection(int(argv[0]))
    try:
        _serve(conn, int(argv[1]))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    finally:
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1:])
