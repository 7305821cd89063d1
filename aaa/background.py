"""Work that ``aaa serve`` does off the hot path, on the thread pool, on a timer.

- :class:`AccountingDrainer` seals the journal's current segment and applies sealed segments to
  ``sessions`` in batches (deleting each segment once committed); on a database error it keeps them
  and retries; records the database refuses for good go to a dead-letter file.
  :func:`replay_journals` applies every journal folder at start-up.
- :class:`AuthLogWriter` writes auth_log rows in batches (through a spool and a child process).
- :class:`JobRunner` runs the periodic jobs plugins register, under a database lease so one node of
  a cluster runs each job at a time.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from aaa import acct_writer
from aaa.apply_process import ApplyProcess, ApplyProcessEnded
from aaa.auth_log_spool import SpoolFull, SpoolWriteError
from aaa.db.models import JobLease, utcnow
from aaa.journal import (
    DeadLetterFile,
    Journal,
    describe_error,
    journal_folders,
    read_segment,
    segment_number,
    segments_in,
)

log = Logger()


BATCH_SIZE = 20_000
"""Records per transaction at most (``[accounting] batch_size``): large enough that a storm's
reboot-closes and inserts go in a few statements, small enough to bound a transaction's memory
and lock time (about a second on PostgreSQL, see docs/performance.md)."""


def apply_segments(
    engine: Engine, segments: list[Path], *, batch_size: int = BATCH_SIZE, dead_letters: DeadLetterFile | None = None
) -> tuple[acct_writer.ApplyResult, BaseException | None]:
    """Apply the records of ``segments`` (oldest first) in transactions of at most ``batch_size``
    records, deleting each segment once all its records are committed (a segment may span batches,
    a batch may span segments). Records the database refuses are isolated
    (:func:`aaa.acct_writer.apply_isolating`), kept in ``dead_letters`` and logged in one line per
    batch. Returns what was applied and, when the database failed part way, the error: the segments
    not yet applied stay for the next try. Blocking.
    """
    total = acct_writer.ApplyResult()
    batch: list[dict[str, Any]] = []
    consumed: list[Path] = []  # read whole into the batches so far

    def reject(records: list[dict[str, Any]], error: BaseException) -> None:
        rejected.append((records, error))

    def commit() -> None:
        nonlocal batch
        if batch:
            rejected.clear()
            total.add(acct_writer.apply_isolating(engine, batch, reject))
            if rejected:
                _set_aside(rejected, dead_letters)
            batch = []
        for path in consumed:
            path.unlink(missing_ok=True)
        consumed.clear()

    rejected: list[tuple[list[dict[str, Any]], BaseException]] = []
    try:
        for segment in segments:
            for record in read_segment(segment):
                batch.append(record)
                if len(batch) >= batch_size:
                    commit()
            consumed.append(segment)
        if batch or consumed:
            commit()
    except Exception as exc:
        return total, exc
    return total, None


def _set_aside(rejected: list[tuple[list[dict[str, Any]], BaseException]], dead_letters: DeadLetterFile | None) -> None:
    records = [r for group, _ in rejected for r in group]
    first, error = records[0], rejected[0][1]
    if dead_letters is not None:
        for group, exc in rejected:
            dead_letters.write(group, exc)
    log.warn(
        "accounting: {n} record(s) could not be applied ({error}); kept in {file} (first: NAS {nas}, type {kind}, "
        "Acct-Session-Id {sid})",
        n=len(records), error=describe_error(error), file=str(dead_letters.path) if dead_letters else "no dead-letter file",
        nas=first.get("nas") if isinstance(first, dict) else None, kind=first.get("t") if isinstance(first, dict) else None,
        sid=str(first.get("sid"))[:64] if isinstance(first, dict) else None,
    )  # fmt: skip


def replay_journals(engine: Engine, root: Path, *, batch_size: int = BATCH_SIZE, dead_letters: DeadLetterFile | None = None,
                    skip: Path | None = None) -> acct_writer.ApplyResult:  # fmt: skip
    """Apply every segment in ``root`` and its worker folders (start-up, before the online index is
    seeded), except ``skip`` (the segment this process appends to); raises if the database fails,
    leaving what is not applied in place. Blocking."""
    total = acct_writer.ApplyResult()
    for folder in journal_folders(root):
        segments = [p for p in segments_in(folder) if p != skip]
        result, error = apply_segments(engine, segments, batch_size=batch_size, dead_letters=dead_letters)
        total.add(result)
        if error is not None:
            raise error
    return total


class AccountingDrainer:
    """Seals the journal's current segment every ``interval`` and applies the sealed ones (one
    drain at a time, on the pool). After each drain ``on_result`` gets what was applied on the
    reactor, with :attr:`~aaa.acct_writer.ApplyResult.mark` set when ``mark`` is given: the value
    ``mark()`` had when the newest applied segment was sealed, i.e. every change the online index
    numbered up to it has its record in the database (:meth:`aaa.online.OnlineIndex.applied`).
    """

    def __init__(self, reactor: Any, pool: ThreadPool, journal: Journal, engine: Engine,
                 on_result: Callable[[acct_writer.ApplyResult], None], *, interval: float = 0.2,
                 batch_size: int = BATCH_SIZE, dead_letters: DeadLetterFile | None = None,
                 mark: Callable[[], int] | None = None, process: ApplyProcess | None = None,
                 on_unreported: Callable[[], Any] | None = None) -> None:  # fmt: skip
        self._reactor = reactor
        self._pool = pool
        self.journal = journal
        self._engine = engine
        self._on_result = on_result
        self._loop = LoopingCall(self.drain)
        self._loop.clock = reactor
        self._interval = interval
        self.batch_size = batch_size
        self.dead_letters = dead_letters
        self._mark = mark
        self.process = process
        self._on_unreported = on_unreported
        self._marks: list[tuple[int, int]] = []  # (sealed segment number, mark() when it was sealed)
        if mark is not None:
            journal.on_seal = self._sealed
        self._running: Deferred[Any] | None = None
        self._failing = False
        self.applied = 0
        self.fitted = 0
        self.rejected = 0

    def start(self) -> None:
        if self.process is not None:
            self.process.start()
        self._loop.start(self._interval, now=False)

    def stop(self) -> Deferred[Any]:
        """Stop the timer; fires after a last drain of everything sealed (the one running, then one
        more), and the apply process, if any, has exited."""
        if self._loop.running:
            self._loop.stop()
        d = self._running.addBoth(lambda _: self.drain()) if self._running is not None else self.drain()
        if self.process is not None:
            process = self.process
            d.addBoth(lambda outcome: deferToThreadPool(self._reactor, self._pool, process.close).addCallback(lambda _: outcome))
        return d

    def _sealed(self, number: int) -> None:
        assert self._mark is not None
        self._marks.append((number, self._mark()))

    def drain_blocking(self, segments: list[Path] | None = None) -> acct_writer.ApplyResult:
        """Apply ``segments`` (default: every sealed one) now, on this thread; raises if the database
        fails (start-up replay, tests)."""
        result, error = self._apply_here(self.journal.sealed() if segments is None else segments)
        if error is not None:
            raise error
        return result

    def _apply(self, segments: list[Path]) -> tuple[acct_writer.ApplyResult, BaseException | None]:
        if self.process is not None:
            return self._count(*self.process.apply(segments))
        return self._apply_here(segments)

    def _apply_here(self, segments: list[Path]) -> tuple[acct_writer.ApplyResult, BaseException | None]:
        """Apply in this process, on the calling thread."""
        return self._count(*apply_segments(self._engine, segments, batch_size=self.batch_size, dead_letters=self.dead_letters))

    def _count(self, result: acct_writer.ApplyResult, error: BaseException | None) -> tuple[acct_writer.ApplyResult, BaseException | None]:
        self.applied += result.applied
        self.fitted += result.fitted
        self.rejected += result.rejected
        return result, error

    def drain(self) -> Deferred[Any]:
        if self._running is not None:
            return self._running
        if self.journal.appended and self.journal.unsealed_bytes():
            self.journal.rotate()
        segments = self.journal.sealed()
        if not segments:
            if self._mark is not None and not self.journal.unsealed_bytes():
                # Every record acknowledged so far is applied: the whole log of the index is covered.
                self._marks.clear()
                self._on_result(acct_writer.ApplyResult(mark=self._mark()))
            else:
                self._claim(None)
            return succeed(None)
        newest = segment_number(segments[-1])
        d = deferToThreadPool(self._reactor, self._pool, self._apply, segments)
        d.addCallback(self._done, newest)
        d.addErrback(self._failed)
        self._running = d
        d.addBoth(self._idle)
        return d

    def _idle(self, _: Any) -> None:
        self._running = None

    def _claim(self, newest: int | None) -> int | None:
        """The mark covering every segment up to ``newest`` (None: everything sealed so far)."""
        claimed = None
        while self._marks and (newest is None or self._marks[0][0] <= newest):
            claimed = self._marks.pop(0)[1]
        if claimed is not None and newest is None:
            self._on_result(acct_writer.ApplyResult(mark=claimed))
        return claimed

    def _done(self, outcome: tuple[acct_writer.ApplyResult, BaseException | None], newest: int) -> None:
        result, error = outcome
        if error is None:
            result.mark = self._claim(newest)
            if self._failing:
                log.info("accounting: database reachable again; journal drained")
                self._failing = False
        elif not self._failing:
            log.warn("accounting: cannot write to the database ({error}); records stay in the journal and are retried",
                     error=describe_error(error))  # fmt: skip
            self._failing = True
        if isinstance(error, ApplyProcessEnded) and self._on_unreported is not None:
            self._on_unreported()  # the dead child may have committed part of the batch, unreported
        self._on_result(result)  # what was committed before a failure counts too

    def _failed(self, failure: Any) -> None:
        log.failure("accounting: the drainer failed; records stay in the journal and are retried", failure)


def lower_thread_priority(step: int = 5) -> None:
    """Let the calling thread run ``step`` nice levels below the rest of the process (Linux only).

    For a thread that does only background work (the auth log's): when it and the reactor thread
    both want the CPU, the scheduler gives the reactor about three quarters of it (five levels;
    at ten the writer's tenth of a saturated core would not keep up with 20,000 decisions a
    second). Linux applies ``setpriority`` to one thread when given a thread id; elsewhere it
    would slow the whole process, so nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
    except OSError as exc:
        log.debug("could not lower a background thread's priority: {error}", error=str(exc))


class AuthLogWriter:
    """Records every authentication decision in ``auth_log``, in batches, off the reactor's back.

    The reactor's share is one tuple appended to a list per decision (``writer(row)``): no
    formatting, no ORM, no lock; and, with a spool, a frame of :attr:`FRAME_ROWS` rows pickled into
    the spool's open file every so many decisions.

    With a ``spool`` (:class:`aaa.auth_log_spool.AuthLogSpool`) and a ``process``, as ``aaa serve``
    runs it (``[radius] auth_log_in_process``, the default): the reactor writes each frame itself
    (about 0.1 ms, spread evenly over the load) and seals the file every ``interval`` seconds;
    ``process``, a child at the lowest CPU priority (:class:`aaa.apply_process.AuthLogProcess`),
    writes the sealed files to the database, oldest first, one at a time, fed from ``pool``'s
    thread (which waits for it). Nothing waits for the child. Written in a thread, the rows'
    formatting and the driver held the reactor's GIL and took its core in slices of a millisecond
    or so; handed to the child directly, a child that fell behind left them in the server's memory,
    where they were dropped at the bound; a second child at normal priority that wrote such a
    backlog took the reactor's core in scheduler slices and doubled the p99; and a thread that
    pickled whole batches into the spool still took it in slices (docs/performance.md, "The auth
    log's spool").

    Without ``process`` a thread of ``pool`` writes each batch (the rows collected every
    ``interval`` seconds), with the DB-API's ``executemany`` on a connection kept open between
    batches (:class:`AuthLogTable`). One batch is written at a time; rows that arrive meanwhile
    wait for the next one, so a slow database makes batches larger rather than piling up threads.

    While the reactor is busy (its thread used at least :attr:`BUSY_SHARE` of a core over the last
    ``interval``) the spool is not fed: the child, at ``SCHED_IDLE``, still took the reactor's core
    for a scheduler tick (4 ms at 250 Hz) every second or so, its fair share of a core that never
    went idle, and on PostgreSQL its ``COPY`` woke a backend at normal priority. The files wait on
    disk until the load falls, for at most :attr:`HOLD_SECONDS` and while the spool is under a
    quarter of its bound; :attr:`held` says when they are held (``aaa_auth_log_held``).

    Bounded: at most ``limit`` rows wait in memory (the database, or the disk, refuses them) and at
    most the spool's own bound on disk. Beyond either a decision is not logged but counted in
    :attr:`dropped` (``aaa_auth_log_dropped``). Rows refused are kept, within the bound, and
    retried with the next batch (or at the next seal). Accounting never passes here: it has the
    journal.

    Rows are ``(unix time, login, nas id, result, method, reason, Calling-Station-Id)``.
    """

    FRAME_ROWS = 256
    """Rows per spool frame: pickled on the reactor in one call that keeps the GIL (about 0.1 ms)."""
    STOP_SECONDS = 5.0
    """How long :meth:`stop` goes on feeding the spool to the child; the rest waits for the next start."""
    BUSY_SHARE = 0.5
    """The reactor thread's share of a core (over the last ``interval``) from which the spool is held."""
    HOLD_SECONDS = 60.0
    """The longest the spool is held under a load that does not fall: then it is fed at the child's priority."""

    def __init__(
        self, reactor: Any, pool: ThreadPool, engine: Engine, *, interval: float = 1.0, limit: int = 100_000,
        process: Any = None, spool: Any = None, frame: int = FRAME_ROWS,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:  # fmt: skip
        if (process is None) != (spool is None):
            raise ValueError("an auth log process needs a spool, and a spool a process")
        self._reactor = reactor
        self._pool = pool
        self._process = process  # an aaa.apply_process.AuthLogProcess: it writes the spool's files
        self.spool = spool  # an aaa.auth_log_spool.AuthLogSpool
        self._buffer: list[tuple[Any, ...]] = []
        self._limit = limit
        self._frame = frame
        self._frame_at = frame if spool is not None else limit + 1  # rows that make a frame (never, without a spool)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = reactor
        self._interval = interval
        self._writing: Deferred[Any] | None = None
        self._feeding: Deferred[Any] | None = None
        self._feed_until: float | None = None
        self._table = AuthLogTable(engine)  # with its connection, opened by the first batch, on the pool
        self._failing = False  # the database refuses (a batch, a file)
        self._disk_failing = False  # the spool's disk refuses
        self._full = False
        self._cpu_clock = cpu_clock  # CPU seconds of the calling thread: called on the reactor's
        self._load_mark = (reactor.seconds(), cpu_clock())
        self._busy_since: float | None = None  # the reactor busy at every tick since then
        self.dropped = 0
        self.written = 0
        self.pauses = 0
        """Files the child left part-written because the reactor got busy."""

    def __call__(self, row: tuple[Any, ...]) -> None:
        buffer = self._buffer
        if len(buffer) < self._limit:
            buffer.append(row)
            if len(buffer) >= self._frame_at:
                self._spool_rows()
        else:
            self.dropped += 1

    @property
    def pending(self) -> int:
        """Rows waiting to be written: in memory and in the spool."""
        if self.spool is None:
            return len(self._buffer)
        return len(self._buffer) + self.spool.unsealed_rows + self.spool.rows

    def start(self) -> None:
        self._load_mark = (self._reactor.seconds(), self._cpu_clock())
        self._loop.start(self._interval, now=False)

    def _tick(self) -> None:
        self._measure_load()
        self.flush()

    def _measure_load(self) -> None:
        """Whether the reactor thread was busy since the last tick (see :attr:`BUSY_SHARE`)."""
        now, cpu = self._reactor.seconds(), self._cpu_clock()
        then, cpu_then = self._load_mark
        self._load_mark = (now, cpu)
        if now > then and (cpu - cpu_then) / (now - then) >= self.BUSY_SHARE:
            if self._busy_since is None:
                self._busy_since = then
        else:
            self._busy_since = None

    @property
    def held(self) -> bool:
        """The spool's files wait while the reactor is busy (fed again when it is not)."""
        return self.spool is not None and self._feed_until is None and not self._may_feed()

    @inlineCallbacks
    def stop(self) -> Any:
        """Write everything collected so far (shutdown), then close the connection. With a spool,
        the rows are sealed into it and the child writes for up to :attr:`STOP_SECONDS`; what is
        left is written after the next start."""
        if self._loop.running:
            self._loop.stop()
        if self._writing is not None:
            yield self._writing
        yield self.flush()  # one last try: a database (or disk) that is down now stays down for shutdown
        if self._buffer:
            log.warn("auth log: {n} rows not written at shutdown", n=len(self._buffer))
            self.dropped += len(self._buffer)
            self._buffer = []
        if self.spool is not None:
            self._feed_until = self._reactor.seconds() + self.STOP_SECONDS
            self._failing = False  # one more try, whatever the last one met; a new failure ends it
            while self.spool.files() and not self._failing and self._may_feed():
                yield self.feed()
            self._feed_until = -1.0  # no more: the child is closed next
            if self._feeding is not None:
                yield self._feeding
            if self.spool.rows:
                log.info("auth log: {n} rows wait in {folder}; they are written after the next start",
                         n=self.spool.rows, folder=str(self.spool.folder))  # fmt: skip
        if self._table.connection is not None:
            yield deferToThreadPool(self._reactor, self._pool, self._table.close)

    def flush(self) -> Deferred[Any]:
        """With a spool: the rows collected so far into it and the file sealed (on the reactor), then
        fed to the child (unless it has one). Without: the rows to the pool as one batch (unless one
        is being written)."""
        if self.spool is not None:
            self._seal()
            return self.feed()
        if self._writing is not None:
            return self._writing
        rows, self._buffer = self._buffer, []
        if not rows:
            return succeed(None)
        d: Deferred[Any] = deferToThreadPool(self._reactor, self._pool, self._write, rows)
        d.addCallbacks(self._written, self._failed)
        self._writing = d
        d.addBoth(self._idle)
        return d

    # --- with a spool: frames written on the reactor ---------------------------------------------

    def _spool_rows(self) -> bool:
        """The rows collected so far into the spool's open file, in frames of at most ``frame``
        rows. False when the disk refused: the rest wait (within the bound) for the next seal."""
        rows, self._buffer = self._buffer, []
        frame = self._frame
        for start in range(0, len(rows), frame):
            try:
                self.spool.write_frame(rows[start : start + frame])
            except SpoolFull:
                self.dropped += len(rows) - start
                if not self._full:
                    log.warn("auth log: the spool holds its bound ({mb} MB); decisions are dropped until the database catches up",
                             mb=self.spool.limit_bytes // 1_000_000)  # fmt: skip
                    self._full = True
                break
            except SpoolWriteError as exc:
                self._buffer = rows[start : start + self._limit]
                self.dropped += len(rows) - start - len(self._buffer) + exc.lost
                self._frame_at = self._limit + 1  # retried at the next seal, not at every decision
                self._disk_warn(exc)
                return False
            self._full = False
        self._frame_at = frame
        if self._disk_failing:
            log.info("auth log: the spool's disk takes rows again")
            self._disk_failing = False
        return True

    def _seal(self) -> None:
        if self._buffer and not self._spool_rows():
            return
        try:
            self.spool.seal()
        except SpoolWriteError as exc:
            self.dropped += exc.lost
            self._disk_warn(exc)

    def _disk_warn(self, exc: SpoolWriteError) -> None:
        if not self._disk_failing:
            log.warn("auth log: {error}; rows wait in memory and are retried", error=str(exc)[:200])
            self._disk_failing = True

    # --- without a spool: batches written by a thread --------------------------------------------

    def _idle(self, _: Any) -> None:
        self._writing = None

    def _written(self, _: Any) -> None:
        if self._failing:
            log.info("auth log: database reachable again")
            self._failing = False

    def _failed(self, failure: Any) -> None:
        rows = failure.value.rows if failure.check(_Unwritten) else []
        room = max(0, self._limit - len(self._buffer))
        self._buffer[:0] = rows[:room]
        self.dropped += len(rows) - min(room, len(rows))
        self._warn(failure.getErrorMessage())

    def _warn(self, error: str) -> None:
        if not self._failing:  # once per outage, not once per batch
            log.warn("auth log: cannot write to the database ({error}); rows wait and are retried",
                     error=error[:200])  # fmt: skip
            self._failing = True

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        """One batch, one transaction (runs on the pool; one batch at a time); on a failure raises
        :class:`_Unwritten`."""
        try:
            self._table.write(rows)
        except Exception as exc:
            raise _Unwritten(rows, exc) from exc
        self.written += len(rows)

    # --- with a spool: the child writes the sealed files -----------------------------------------

    def feed(self) -> Deferred[Any]:
        """Give the child the spool's oldest file (unless it has one), and the next when it is done."""
        if self._feeding is not None:
            return self._feeding
        files = self.spool.files() if self.spool is not None and self._may_feed() else []
        if not files:
            return succeed(None)
        may_pause = self._feed_until is None and self._busy_since is None and not self._spool_filling()
        d: Deferred[Any] = deferToThreadPool(self._reactor, self._pool, self._feed, files[0], may_pause)
        self._feeding = d
        d.addBoth(self._fed_idle)
        d.addCallbacks(self._fed, self._feed_failed)
        return d

    def _feed(self, path: Path, may_pause: bool) -> tuple[int, int, BaseException | None, bool]:
        """On the pool: the child writes ``path``; what it wrote, dropped, its error, and whether it
        paused (the reactor got busy)."""
        try:
            outcome: tuple[int, int, BaseException | None, bool] = self._process.write_file(path, may_pause=may_pause)
            return outcome
        finally:
            self.spool.settle(path)

    def _fed(self, outcome: tuple[int, int, BaseException | None, bool]) -> None:
        written, dropped, error, paused = outcome
        self.written += written
        self.dropped += dropped
        if error is not None:
            self._warn(describe_error(error))
            return
        if self._failing:
            log.info("auth log: database reachable again")
            self._failing = False
        if paused:  # held until a tick finds the reactor under BUSY_SHARE
            self.pauses += 1
            if self._busy_since is None:
                self._busy_since = self._reactor.seconds()
            return
        self.feed()  # the next file, if any

    def _feed_failed(self, failure: Any) -> None:
        self._warn(failure.getErrorMessage())

    def _fed_idle(self, outcome: Any) -> Any:
        self._feeding = None
        return outcome

    def _may_feed(self) -> bool:
        now = self._reactor.seconds()
        if self._feed_until is not None:  # stopping: until the bound
            return now < self._feed_until
        busy_since = self._busy_since
        return busy_since is None or now - busy_since >= self.HOLD_SECONDS or self._spool_filling()

    def _spool_filling(self) -> bool:
        """A quarter of the spool's bound is taken: it is written now, without holds or pauses."""
        return bool(self.spool.bytes >= self.spool.limit_bytes // 4)


class _Unwritten(Exception):
    """The rows of a batch not written (:meth:`AuthLogWriter._write`); its message is the error's."""

    def __init__(self, rows: list[tuple[Any, ...]], error: BaseException) -> None:
        super().__init__(str(error))
        self.rows = rows


_AUTH_LOG_TYPES = ["timestamptz", "text", "int4", "text", "text", "text", "text"]
_SECOND_CACHE: dict[int, str] = {}


def _sqlite_timestamp(at: float) -> str:
    """``at`` as SQLAlchemy stores a UTC DATETIME in SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``).

    The seconds part is formatted once per second and reused: a batch holds a second of rows.
    """
    second = int(at)
    prefix = _SECOND_CACHE.get(second)
    if prefix is None:
        if len(_SECOND_CACHE) > 64:
            _SECOND_CACHE.clear()
        prefix = _SECOND_CACHE[second] = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{prefix}.{int((at - second) * 1e6):06d}"


def _aware_timestamp(at: float) -> dt.datetime:
    """``at`` for drivers with a native timestamp with time zone type (psycopg)."""
    return dt.datetime.fromtimestamp(at, dt.UTC)


class AuthLogTable:
    """Writes batches of auth log rows on a DB-API connection of ``engine`` kept open between
    batches: PostgreSQL by binary COPY (which costs its backend a fraction of a row-by-row insert:
    ``executemany`` in pipeline mode is still one INSERT a row), others by ``executemany``. Used by
    :class:`AuthLogWriter` on its thread and by the auth log process (:mod:`aaa.apply_process`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = (
            "INSERT INTO auth_log (at, login, nas_id, result, method, reason, calling_station_id) "
            f"VALUES ({', '.join([mark] * 7)})"
        )
        self._copy = None if dialect != "postgresql" else (
            "COPY auth_log (at, login, nas_id, result, method, reason, calling_station_id) FROM STDIN (FORMAT BINARY)"
        )  # fmt: skip
        self._timestamp: Callable[[float], Any] = _sqlite_timestamp if dialect == "sqlite" else _aware_timestamp
        self.connection: Any = None

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (see :class:`AuthLogWriter`) in one transaction; values are cut to their
        columns. On an error the connection is let go (the next batch opens a new one) and it raises."""
        stamp = self._timestamp
        values = [
            (stamp(r[0]), r[1][:128], r[2], r[3], r[4], r[5][:255] if r[5] else None, r[6][:64] if r[6] else None)
            for r in rows
        ]  # fmt: skip
        if self.connection is None:
            self.connection = self._engine.raw_connection()
        connection = self.connection
        try:
            if self._copy is not None:
                cursor = connection.driver_connection.cursor()
                try:
                    with cursor.copy(self._copy) as copy:
                        copy.set_types(_AUTH_LOG_TYPES)
                        for row in values:
                            copy.write_row(row)
                finally:
                    cursor.close()
            else:
                cursor = connection.cursor()
                try:
                    cursor.executemany(self._sql, values)
                finally:
                    cursor.close()
            connection.commit()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Let go of the connection; errors are ignored, it is being discarded (or shut down)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.rollback()
                connection.close()
            except Exception as exc:
                log.debug("auth log: closing the connection failed: {error}", error=str(exc)[:200])


class JobRunner:
    """Periodic jobs from ``aaa_register_jobs``: each on its interval, under a lease in ``job_leases``."""

    def __init__(self, reactor: Any, pool: ThreadPool, context: Any) -> None:
        self._reactor = reactor
        self._pool = pool
        self._context = context
        self._node = f"{socket.gethostname()}:{id(self)}"
        self._loops: list[LoopingCall] = []
        self.jobs: dict[str, tuple[float, Callable[[Any], Any]]] = {}

    def register(self, name: str, interval_seconds: float, function: Callable[[Any], Any]) -> None:
        self.jobs[name] = (float(interval_seconds), function)

    def start(self) -> None:
        for name, (interval, function) in self.jobs.items():
            loop = LoopingCall(self._run, name, interval, function)
            loop.clock = self._reactor
            loop.start(interval, now=False).addErrback(self._stopped, name)
            self._loops.append(loop)

    @staticmethod
    def _stopped(failure: Any, name: str) -> None:
        log.failure("job {name} stopped", failure, name=name)

    def stop(self) -> None:
        for loop in self._loops:
            if loop.running:
                loop.stop()

    @inlineCallbacks
    def _run(self, name: str, interval: float, function: Callable[[Any], Any]) -> Any:
        try:
            yield deferToThreadPool(self._reactor, self._pool, self.run_once, name, interval, function)
        except Exception:
            log.failure("job {name} failed", name=name)

    def run_once(self, name: str, interval: float, function: Callable[[Any], Any]) -> bool:
        """Take the lease and run ``function`` (blocking); False if another node holds it."""
        if not self._take_lease(name, interval):
            return False
        function(self._context)
        return True

    def _take_lease(self, name: str, interval: float) -> bool:
        engine = self._context.engine
        now = utcnow()
        until = now + dt.timedelta(seconds=max(interval * 0.9, 1.0))
        with engine.begin() as conn:
            row = conn.execute(select(JobLease.holder, JobLease.lease_until).where(JobLease.name == name)).first()
            if row is None:
                try:
                    conn.execute(insert(JobLease).values(name=name, holder=self._node, lease_until=until, last_run_at=now))
                    return True
                except IntegrityError:
                    return False
            result = conn.execute(
                update(JobLease)
                .where(JobLease.name == name, (JobLease.lease_until < now) | (JobLease.holder == self._node))
                .values(holder=self._node, lease_until=until, last_run_at=now)
            )
            return bool(result.rowcount)
