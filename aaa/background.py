"""Work that ``aaa serve`` does off the hot path, on the thread pool, on a timer.

- :class:`AccountingDrainer` seals the journal's current segment and applies sealed segments to
  ``sessions`` (deleting each after its commit); on a database error it keeps them and retries.
- :class:`AuthLogWriter` writes auth_log rows in batches.
- :class:`JobRunner` runs the periodic jobs plugins register, under a database lease so one node of
  a cluster runs each job at a time.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from aaa import acct_writer
from aaa.db.models import AuthLog, JobLease, utcnow
from aaa.journal import Journal, read_segment

log = Logger()


class AccountingDrainer:
    def __init__(self, reactor: Any, pool: ThreadPool, journal: Journal, engine: Engine,
                 on_result: Callable[[acct_writer.ApplyResult], None], *, interval: float = 0.2) -> None:  # fmt: skip
        self._reactor = reactor
        self._pool = pool
        self.journal = journal
        self._engine = engine
        self._on_result = on_result
        self._loop = LoopingCall(self.drain)
        self._loop.clock = reactor
        self._interval = interval
        self._running: Deferred[Any] | None = None
        self._failing = False
        self.applied = 0

    def start(self) -> None:
        self._loop.start(self._interval, now=False)

    def stop(self) -> Deferred[Any]:
        if self._loop.running:
            self._loop.stop()
        return self.drain()

    def drain_blocking(self) -> acct_writer.ApplyResult:
        """Apply every sealed segment now, on this thread (start-up replay, tests)."""
        total = acct_writer.ApplyResult()
        for segment in self.journal.sealed():
            result = acct_writer.apply(self._engine, read_segment(segment))
            segment.unlink()
            total.started += result.started
            total.stopped += result.stopped
            total.applied += result.applied
        self.applied += total.applied
        return total

    def drain(self) -> Deferred[Any]:
        if self._running is not None:
            return self._running
        if self.journal.appended and self.journal.segments() and self.journal.segments()[-1].stat().st_size:
            self.journal.rotate()
        if not self.journal.sealed():
            return succeed(None)
        d = deferToThreadPool(self._reactor, self._pool, self.drain_blocking)
        d.addCallbacks(self._done, self._failed)
        self._running = d
        d.addBoth(self._idle)
        return d

    def _idle(self, _: Any) -> None:
        self._running = None

    def _done(self, result: acct_writer.ApplyResult) -> None:
        if self._failing:
            log.info("accounting: database reachable again; journal drained")
            self._failing = False
        self._on_result(result)

    def _failed(self, failure: Any) -> None:
        if not self._failing:
            log.warn("accounting: cannot write to the database ({error}); records stay in the journal and are retried",
                     error=failure.getErrorMessage().splitlines()[0][:200])  # fmt: skip
            self._failing = True


class AuthLogWriter:
    """Buffers auth_log rows (tuples) and inserts them every ``interval`` seconds."""

    def __init__(self, reactor: Any, pool: ThreadPool, engine: Engine, *, interval: float = 1.0, limit: int = 100_000) -> None:
        self._reactor = reactor
        self._pool = pool
        self._engine = engine
        self._buffer: list[tuple[Any, ...]] = []
        self._limit = limit
        self._loop = LoopingCall(self.flush)
        self._loop.clock = reactor
        self._interval = interval
        self.dropped = 0

    def __call__(self, row: tuple[Any, ...]) -> None:
        if len(self._buffer) < self._limit:
            self._buffer.append(row)
        else:
            self.dropped += 1

    def start(self) -> None:
        self._loop.start(self._interval, now=False)

    def stop(self) -> Deferred[None]:
        if self._loop.running:
            self._loop.stop()
        return self.flush()

    def flush(self) -> Deferred[None]:
        rows, self._buffer = self._buffer, []
        if not rows:
            return succeed(None)
        d = deferToThreadPool(self._reactor, self._pool, self._write, rows)
        d.addErrback(lambda f: log.warn("auth log: {n} rows not written: {error}", n=len(rows), error=f.getErrorMessage()[:200]))
        return d

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        values = [
            {"at": dt.datetime.fromtimestamp(r[0], dt.UTC), "login": r[1][:128], "nas_id": r[2], "result": r[3],
             "method": r[4], "reason": (r[5] or None) and r[5][:255], "calling_station_id": r[6]}  # fmt: skip
            for r in rows
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(AuthLog), values)


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
