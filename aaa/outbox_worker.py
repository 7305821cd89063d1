"""The outbox worker that ``aaa serve`` runs: claim due rows, carry them out, record the outcome.

Every ``poll_interval_seconds`` (or at once after :meth:`OutboxWorker.wake`) the worker claims due
rows - ``pending`` rows whose ``next_attempt_at`` has come, and ``running`` rows whose lease has
expired (their process died) - in one short transaction: on PostgreSQL the candidates are read with
``SELECT ... FOR UPDATE SKIP LOCKED`` so several nodes never wait for or take the same rows; on
SQLite (one writer) a plain read. Either way the claim itself is a guarded ``UPDATE ... WHERE id IN
(...) AND <still due> RETURNING ...`` that sets ``running``, ``claimed_by``, ``lease_until`` and
``attempts + 1``, so a row is claimed by one worker only even if two read it.

Each claimed row is handed, as a plain :class:`OutboxRow`, to the handler registered for its
``kind`` (``handler(row) -> dict | Deferred[dict]``), on the reactor thread. The outcome:

- a result: ``done``, with ``result`` and ``done_at``;
- an exception: back to ``pending`` with ``next_attempt_at = now + backoff`` (``backoff_base *
  2**(attempts-1)``, capped at ``backoff_cap``, minus up to ``jitter`` of it, at random) and
  ``last_error`` (one line); after ``max_attempts`` attempts, ``dead``;
- :class:`PermanentFailure` (or an unknown ``kind``): ``dead`` at once.

An exception with a ``result`` dict attribute (:class:`OutboxFailure`) has it stored too (the CoA
result of a NAK, for instance). A handler that runs longer than ``handler_timeout`` (default 0.8 of
the lease) is cancelled and counts as a failure; cancelling its Deferred must withdraw what it was
doing (the CoA client's requests do), so nothing is sent for an attempt that is over. Outcomes are
written in batches, each guarded by the claim (``claimed_by`` and ``attempts``), so a row that another
node re-claimed after a lease expiry is not overwritten.

Leases: a claim lasts ``lease_seconds``, which must exceed ``handler_timeout`` plus the time to write
the outcome (``aaa serve`` derives both, see :mod:`aaa.outbox_handlers`). While rows are in flight
their leases are also renewed every third of the lease, guarded by the claim; a row whose claim is
found lost (another node took it: this one was cut off from the database longer than the lease) has
its handler cancelled at once rather than finish a second delivery.

Stopping (SIGTERM): no more claims; in-flight handlers get ``cancel_after`` seconds to finish, then
are cancelled, and their rows are given back (``pending``, due now, the attempt not counted) for the
next start or another node.

A restarted process recovers its own claims at once with ``recover_own_claims=True``, on its first
poll, instead of waiting for their leases: only for a ``node_id`` that is stable across restarts and
never used by two live processes (host name and worker index, say).

Concurrency is bounded per NAS (``concurrency_per_nas``, rows without a NAS share one bucket) and
overall (``concurrency``), within this worker. Database work runs on the thread pool, never on the
reactor thread. Counters (``claimed``, ``done``, ``retried``, ``dead``, ``db_errors``) are plain
integers for metrics; :meth:`OutboxWorker.counters` returns them with ``in_flight``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from aaa.config import OutboxSettings
from aaa.db.models import Outbox, OutboxStatus
from aaa.errors import AAAError

__all__ = ["Handler", "OutboxFailure", "OutboxRow", "OutboxWorker", "PermanentFailure"]

log = Logger()

_PENDING = OutboxStatus.PENDING.value
_RUNNING = OutboxStatus.RUNNING.value
_DONE = OutboxStatus.DONE.value
_DEAD = OutboxStatus.DEAD.value


def _due(now: Any) -> Any:
    """Rows due at ``now``: pending ones whose attempt time has come, running ones whose lease ran out."""
    return or_(
        and_(Outbox.status == _PENDING, Outbox.next_attempt_at <= now),
        and_(Outbox.status == _RUNNING, Outbox.lease_until < now),
    )


_ANY_DUE = select(Outbox.id).where(_due(bindparam("now"))).limit(1)
"""Is any row due? Asked before every claim, over a connection kept open in autocommit: with nothing
due (nearly every poll) 24 µs of CPU on SQLite and 99 µs on PostgreSQL, where building the claim's
query and a session took 320 and 790 µs on a pool thread, holding the reactor's GIL (twice a second)."""


@dataclass(frozen=True)
class OutboxRow:
    """A claimed outbox row, copied out of the database session for a handler."""

    id: int
    kind: str
    payload: dict[str, Any]
    nas_id: int | None
    subscriber_id: int | None
    attempts: int
    """This attempt's number, from 1."""
    key: str = ""
    """The idempotency key."""


class OutboxFailure(AAAError):
    """A failed attempt that is retried; ``result`` (if given) is stored on the row."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


class PermanentFailure(OutboxFailure):
    """The side effect can never succeed (bad payload, NAS deleted): dead-letter the row now."""


Handler = Callable[[OutboxRow], "Deferred[dict[str, Any]] | dict[str, Any]"]


@dataclass
class _Outcome:
    id: int
    attempts: int
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    retry_at: dt.datetime | None = None
    at: dt.datetime | None = None
    released: bool = False
    """Given back unrun (claimed while stopping): the attempt is not counted."""


class OutboxWorker:
    """Claims and carries out outbox rows; see the module docstring."""

    def __init__(self, context: Any, reactor: Any, handlers: Mapping[str, Handler], *, node_id: str,
                 settings: OutboxSettings, pool: ThreadPool | None = None, concurrency: int = 256,
                 backoff_cap_seconds: float = 900.0, jitter: float = 0.2, handler_timeout: float | None = None,
                 rng: Callable[[], float] = random.random, recover_own_claims: bool = False) -> None:  # fmt: skip
        self.context = context
        self.reactor = reactor
        self.handlers = dict(handlers)
        self.node_id = node_id[:64]
        self.settings = settings
        self.pool = pool if pool is not None else reactor.getThreadPool()
        self.concurrency = max(1, concurrency)
        self.per_nas = max(1, settings.concurrency_per_nas)
        self.backoff_cap = backoff_cap_seconds
        self.jitter = min(max(jitter, 0.0), 1.0)
        self.handler_timeout = handler_timeout if handler_timeout is not None else 0.8 * settings.lease_seconds
        self._rng = rng
        self._recover_own = recover_own_claims
        self._probe: Connection | None = None  # for _ANY_DUE, opened by the first claim (on the pool)
        self._postgres = context.engine.dialect.name == "postgresql"
        self._loop = LoopingCall(self.poll)
        self._loop.clock = reactor
        self._renewer = LoopingCall(self.renew_leases)
        self._renewer.clock = reactor
        self._renewing = False
        self._attempts: dict[int, int] = {}
        self._cancel_call: Any = None
        self._polling: Deferred[Any] | None = None
        self._poll_again = False
        self._backlog = False
        self._stopping = False
        self._in_flight: dict[int, Deferred[Any]] = {}
        self._by_nas: dict[int | None, int] = {}
        self._finished: list[_Outcome] = []
        self._flushing: Deferred[Any] | None = None
        self._flush_failed = False
        self._idle_waiters: list[Deferred[None]] = []
        self.claimed = 0
        self.done = 0
        self.retried = 0
        self.dead = 0
        self.db_errors = 0
        self.renewed = 0
        self.claims_lost = 0

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Poll now and every ``poll_interval_seconds``."""
        self._stopping = False
        self._loop.start(self.settings.poll_interval_seconds, now=True)
        if not self._renewer.running:
            self._renewer.start(self.settings.lease_seconds / 3, now=False)

    def stop(self, cancel_after: float | None = None) -> Deferred[None]:
        """Stop claiming; fires once in-flight handlers have finished and their outcomes are written.
        With ``cancel_after``, handlers still running after that many seconds are cancelled and their
        rows given back unrun."""
        self._stopping = True
        if self._loop.running:
            self._loop.stop()
        if cancel_after is not None and self._in_flight and self._cancel_call is None:
            self._cancel_call = self.reactor.callLater(cancel_after, self._cancel_in_flight)
        d = self.when_idle()
        d.addCallback(lambda _: self._close_probe())
        return d

    def _close_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                probe.close()
            except Exception as exc:  # the database went away: nothing left to close
                log.debug("outbox: closing the due-row probe's connection: {error}", error=str(exc)[:200])

    def _cancel_in_flight(self) -> None:
        self._cancel_call = None
        if self._in_flight:
            log.info("outbox: stopping; {n} row(s) still in flight are given back for the next start", n=len(self._in_flight))
        for d in list(self._in_flight.values()):
            d.cancel()

    def when_idle(self) -> Deferred[None]:
        """Fires when no claim is running, no handler is in flight and every outcome is written."""
        d: Deferred[None] = Deferred()
        self._idle_waiters.append(d)
        self._flush()
        self._check_idle()
        return d

    def wake(self) -> None:
        """Poll at once (new rows were queued); polls already running are coalesced."""
        if not self._stopping:
            self.poll()

    def counters(self) -> dict[str, int]:
        return {"claimed": self.claimed, "done": self.done, "retried": self.retried, "dead": self.dead,
                "db_errors": self.db_errors, "in_flight": len(self._in_flight), "renewed": self.renewed,
                "claims_lost": self.claims_lost}  # fmt: skip

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # --- claiming -----------------------------------------------------------------------------------

    def poll(self) -> Deferred[Any]:
        """Claim due rows up to the free capacity and start them; fires with how many were claimed."""
        if self._stopping:
            return succeed(0)
        if self._polling is not None:
            self._poll_again = True
            return succeed(0)
        if self._flush_failed:
            self._flush()
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            self._backlog = True
            return succeed(0)
        busy = dict(self._by_nas)
        d: Deferred[Any] = deferToThreadPool(self.reactor, self.pool, self._claim, self._now(), free, busy,
                                             self._recover_own)  # fmt: skip
        d.addCallbacks(self._claimed, self._claim_failed)
        self._polling = d
        d.addBoth(self._polled)
        return d

    def _polled(self, count: int) -> int:
        self._polling = None
        if self._poll_again and not self._stopping:
            self._poll_again = False
            self.poll()
        self._check_idle()
        return count

    def _claim(self, now: dt.datetime, limit: int, busy: dict[int | None, int],
               recover_own: bool = False) -> tuple[list[OutboxRow], bool]:  # fmt: skip
        """On a pool thread: claim up to ``limit`` due rows within the per-NAS bound."""
        if not recover_own and not self._any_due(now):
            return [], False
        due = _due(now)
        if recover_own:  # our previous life's claims: that process is gone, its leases need not run out
            due = or_(due, and_(Outbox.status == _RUNNING, Outbox.claimed_by == self.node_id))
        full = [nas for nas, n in busy.items() if nas is not None and n >= self.per_nas]
        query = select(Outbox.id, Outbox.nas_id).where(due)
        if full:
            query = query.where(or_(Outbox.nas_id.is_(None), Outbox.nas_id.not_in(full)))
        query = query.order_by(Outbox.next_attempt_at, Outbox.id).limit(min(max(limit * 4, 64), 2000))
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        session: Session
        with self.context.sessions() as session, session.begin():
            candidates = session.execute(query).all()
            taken = dict(busy)
            ids: list[int] = []
            for row_id, nas_id in candidates:
                if len(ids) >= limit:
                    break
                if taken.get(nas_id, 0) >= self.per_nas:
                    continue
                taken[nas_id] = taken.get(nas_id, 0) + 1
                ids.append(row_id)
            backlog = len(ids) < len(candidates)
            if not ids:
                return [], backlog
            lease = now + dt.timedelta(seconds=self.settings.lease_seconds)
            claim = (
                update(Outbox)
                .where(Outbox.id.in_(ids), due)
                .values(status=_RUNNING, claimed_by=self.node_id, lease_until=lease, attempts=Outbox.attempts + 1)
                .returning(Outbox.id, Outbox.kind, Outbox.payload, Outbox.nas_id, Outbox.subscriber_id,
                           Outbox.attempts, Outbox.idempotency_key)  # fmt: skip
                .execution_options(synchronize_session=False)
            )
            rows = [OutboxRow(r[0], r[1], dict(r[2] or {}), r[3], r[4], r[5], r[6]) for r in session.execute(claim)]
        order = {row_id: n for n, row_id in enumerate(ids)}
        rows.sort(key=lambda r: order[r.id])
        return rows, backlog

    def _any_due(self, now: dt.datetime) -> bool:
        """On a pool thread: whether any row is due (:data:`_ANY_DUE`); a failure drops the connection."""
        try:
            if self._probe is None:
                self._probe = self.context.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return self._probe.execute(_ANY_DUE, {"now": now}).first() is not None
        except Exception:
            self._close_probe()
            raise

    def _claimed(self, claimed: tuple[list[OutboxRow], bool]) -> int:
        rows, backlog = claimed
        self._backlog = backlog
        self._recover_own = False
        self.claimed += len(rows)
        for row in rows:
            try:
                self._dispatch(row)
            except Exception:
                log.failure("outbox: internal error starting row {id}", id=row.id)
        self._flush()
        return len(rows)

    def _claim_failed(self, failure: Failure) -> int:
        self.db_errors += 1
        log.warn("outbox: cannot claim rows ({error}); retrying at the next poll", error=_one_line(failure.value))
        return 0

    # --- carrying out -------------------------------------------------------------------------------

    def _dispatch(self, row: OutboxRow) -> None:
        if self._stopping:  # claimed while stopping: give it back at once, attempt not counted
            self._finished.append(_Outcome(row.id, row.attempts, _PENDING, retry_at=self._now(), released=True))
            return
        handler = self.handlers.get(row.kind)
        self._by_nas[row.nas_id] = self._by_nas.get(row.nas_id, 0) + 1
        if handler is None:
            d: Deferred[Any] = maybeDeferred(_unknown_kind, row)
        elif row.attempts > self.settings.max_attempts:
            d = maybeDeferred(_exhausted, row)
        else:
            d = maybeDeferred(handler, row)
            if self.handler_timeout > 0 and not d.called:
                d.addTimeout(self.handler_timeout, self.reactor)
        self._in_flight[row.id] = d
        self._attempts[row.id] = row.attempts
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(row,), errbackArgs=(row,))
        d.addErrback(self._internal_error, row)

    def _succeeded(self, result: Any, row: OutboxRow) -> None:
        self.done += 1
        self._record(row, _Outcome(row.id, row.attempts, _DONE, result=_as_result(result), at=self._now()))

    def _failed(self, failure: Failure, row: OutboxRow) -> None:
        exc = failure.value
        error = _one_line(exc)
        result = getattr(exc, "result", None)
        result = result if isinstance(result, dict) else None
        if self._stopping and isinstance(exc, CancelledError):  # cut short by stop(): give it back unrun
            self._record(row, _Outcome(row.id, row.attempts, _PENDING, retry_at=self._now(), released=True))
            return
        if isinstance(exc, PermanentFailure) or row.attempts >= self.settings.max_attempts:
            self.dead += 1
            log.warn("outbox: row {id} ({kind}) is dead after {attempts} attempt(s): {error}",
                     id=row.id, kind=row.kind, attempts=row.attempts, error=error)  # fmt: skip
            self._record(row, _Outcome(row.id, row.attempts, _DEAD, result=result, error=error, at=self._now()))
            return
        self.retried += 1
        retry_at = self._now() + dt.timedelta(seconds=self.backoff(row.attempts))
        self._record(row, _Outcome(row.id, row.attempts, _PENDING, result=result, error=error, retry_at=retry_at))

    def _internal_error(self, failure: Failure, row: OutboxRow) -> None:
        log.failure("outbox: internal error finishing row {id}", failure, id=row.id)
        if row.id in self._in_flight:  # free the slot; the row is retried
            retry_at = self._now() + dt.timedelta(seconds=self.backoff(row.attempts))
            self._record(row, _Outcome(row.id, row.attempts, _PENDING, error=_one_line(failure.value), retry_at=retry_at))

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after failed attempt number ``attempts`` (from 1)."""
        delay = min(self.backoff_cap, self.settings.backoff_base_seconds * 2 ** max(0, attempts - 1))
        return delay * (1.0 - self.jitter * self._rng())

    def _record(self, row: OutboxRow, outcome: _Outcome) -> None:
        self._in_flight.pop(row.id, None)
        self._attempts.pop(row.id, None)
        left = self._by_nas.get(row.nas_id, 1) - 1
        if left > 0:
            self._by_nas[row.nas_id] = left
        else:
            self._by_nas.pop(row.nas_id, None)
        self._finished.append(outcome)
        self._flush()
        if self._backlog and not self._stopping:
            self.wake()
        self._check_idle()

    # --- leases -------------------------------------------------------------------------------------

    def renew_leases(self) -> Deferred[Any]:
        """Extend the leases of the rows in flight; cancel the handlers of any whose claim was lost."""
        if self._renewing or not self._attempts:
            return succeed(0)
        self._renewing = True
        held = dict(self._attempts)
        d: Deferred[Any] = deferToThreadPool(self.reactor, self.pool, self._renew, held, self._now())
        d.addCallbacks(self._renewed, self._renew_failed, callbackArgs=(held,))
        return d

    def _renew(self, held: dict[int, int], now: dt.datetime) -> set[int]:
        """On a pool thread: the ids of ``held`` whose lease this worker still holds, now extended."""
        lease = now + dt.timedelta(seconds=self.settings.lease_seconds)
        kept: set[int] = set()
        session: Session
        with self.context.sessions() as session, session.begin():
            ids = list(held)
            for start in range(0, len(ids), 500):
                result = session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(ids[start : start + 500]), Outbox.claimed_by == self.node_id,
                           Outbox.status == _RUNNING)  # fmt: skip
                    .values(lease_until=lease)
                    .returning(Outbox.id, Outbox.attempts)
                    .execution_options(synchronize_session=False)
                )
                kept.update(row_id for row_id, attempts in result if held.get(row_id) == attempts)
        return kept

    def _renewed(self, kept: set[int], held: dict[int, int]) -> int:
        self._renewing = False
        self.renewed += len(kept)
        for row_id, attempts in held.items():
            d = self._in_flight.get(row_id)
            if row_id in kept or d is None or self._attempts.get(row_id) != attempts:
                continue  # renewed, or finished meanwhile
            self.claims_lost += 1
            log.warn("outbox: row {id} was claimed by another node while in flight here; cancelled", id=row_id)
            d.cancel()
        return len(kept)

    def _renew_failed(self, failure: Failure) -> int:
        self._renewing = False
        self.db_errors += 1
        log.warn("outbox: cannot renew leases ({error}); retrying", error=_one_line(failure.value))
        return 0

    # --- writing outcomes ---------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._flushing is not None or not self._finished:
            return
        batch, self._finished = self._finished, []
        d = deferToThreadPool(self.reactor, self.pool, self._write, batch)
        d.addCallbacks(self._written, self._write_failed, errbackArgs=(batch,))
        self._flushing = d

    def _written(self, _: Any) -> None:
        self._flushing = None
        if self._flush_failed:
            log.info("outbox: database reachable again; outcomes written")
            self._flush_failed = False
        self._flush()
        self._check_idle()

    def _write_failed(self, failure: Failure, batch: list[_Outcome]) -> None:
        self._flushing = None
        self.db_errors += 1
        self._finished[:0] = batch
        if not self._flush_failed:
            log.warn("outbox: cannot record {n} outcome(s) ({error}); retrying at the next poll",
                     n=len(batch), error=_one_line(failure.value))  # fmt: skip
        self._flush_failed = True
        if self._stopping:  # nothing will poll again: give up; the leases expire and rows are re-run
            self._finished.clear()
        self._check_idle()

    def _write(self, batch: list[_Outcome]) -> None:
        """On a pool thread: one transaction; each update guarded by this worker's claim."""
        session: Session
        with self.context.sessions() as session, session.begin():
            for o in batch:
                values: dict[str, Any] = {"status": o.status, "lease_until": None, "last_error": o.error}
                if o.result is not None or o.status == _DONE:
                    values["result"] = o.result
                if o.status == _DONE:
                    values["done_at"] = o.at
                if o.status == _PENDING:
                    values["next_attempt_at"] = o.retry_at
                    values["claimed_by"] = None
                if o.error is None:
                    values.pop("last_error")
                if o.released:
                    values["attempts"] = o.attempts - 1
                session.execute(
                    update(Outbox)
                    .where(Outbox.id == o.id, Outbox.claimed_by == self.node_id, Outbox.attempts == o.attempts,
                           Outbox.status == _RUNNING)  # fmt: skip
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )

    # --- helpers ------------------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if not self._idle_waiters:
            return
        if self._in_flight or self._polling is not None or self._flushing is not None or self._finished:
            return
        waiters, self._idle_waiters = self._idle_waiters, []
        if self._stopping:
            if self._renewer.running:
                self._renewer.stop()
            if self._cancel_call is not None and self._cancel_call.active():
                self._cancel_call.cancel()
            self._cancel_call = None
        for d in waiters:
            d.callback(None)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC)


def _unknown_kind(row: OutboxRow) -> None:
    raise PermanentFailure(f"no handler for outbox kind {row.kind!r}")


def _exhausted(row: OutboxRow) -> None:
    raise PermanentFailure(f"attempt {row.attempts} is past the limit (the previous claim's lease expired)")


def _as_result(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        result: dict[str, Any] = as_dict()
        return result
    return {"value": repr(value)}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:500]
