"""The outbox worker on SQLite always and on PostgreSQL when ``AAA_TEST_DATABASE_URL`` is set.

Time is a Clock the tests advance (poll intervals, back-off, leases); database work runs on a real
thread pool and comes back through the test's own reactor loop.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from reactor_helpers import ClockedReactor, Loop
from sqlalchemy import select, update
from twisted.internet.defer import Deferred, gatherResults
from twisted.python.threadpool import ThreadPool

from aaa.config import OutboxSettings
from aaa.context import Context, build_context
from aaa.db.models import Outbox
from aaa.outbox_worker import OutboxFailure, OutboxRow, OutboxWorker, PermanentFailure
from aaa.services import outbox

SETTINGS = OutboxSettings(poll_interval_seconds=1.0, max_attempts=3, backoff_base_seconds=10.0, lease_seconds=30.0,
                          concurrency_per_nas=2)  # fmt: skip


class Rig:
    def __init__(self, ctx: Context, loop: Loop, pool: ThreadPool) -> None:
        self.ctx = ctx
        self.loop = loop
        self.pool = pool
        self.clock = ClockedReactor(loop, start=time.time() + 60)  # rows queued "now" are due
        self.workers: list[OutboxWorker] = []

    def worker(self, handlers: dict[str, Any], *, node_id: str = "node-a", ctx: Context | None = None,
               **overrides: Any) -> OutboxWorker:  # fmt: skip
        options = {k: overrides.pop(k) for k in list(overrides) if k in ("concurrency", "handler_timeout", "recover_own_claims")}
        worker = OutboxWorker(ctx or self.ctx, self.clock, handlers, node_id=node_id,
                              settings=replace(SETTINGS, **overrides), pool=self.pool, rng=lambda: 0.0, **options)  # fmt: skip
        self.workers.append(worker)
        return worker

    def enqueue(self, kind: str = "coa", *, nas_id: int | None = 1, n: int = 1) -> list[int]:
        with self.ctx.transaction() as uow:
            rows = [outbox.enqueue(uow, kind=kind, key=f"{kind}:{nas_id}:{time.monotonic_ns()}:{i}",
                                   payload={"i": i}, nas_id=nas_id) for i in range(n)]  # fmt: skip
            return [r.id for r in rows if r is not None]

    def poll(self, worker: OutboxWorker) -> int:
        """One poll, then wait until what it claimed has finished and been written."""
        claimed: int = self.loop.run_until(worker.poll())
        self.loop.run_until(worker.when_idle())
        return claimed

    def row(self, row_id: int) -> Outbox:
        with self.ctx.sessions() as session:
            row = session.get(Outbox, row_id)
            assert row is not None
            return row

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.UTC)


@pytest.fixture
def rig(ctx: Context) -> Iterator[Rig]:
    loop = Loop()
    pool = ThreadPool(minthreads=2, maxthreads=8, name="outbox-test")
    pool.start()
    rig = Rig(ctx, loop, pool)
    yield rig
    for worker in rig.workers:
        loop.run_until(worker.stop())
    pool.stop()
    loop.close()


def ok(row: OutboxRow) -> dict[str, Any]:
    return {"outcome": "ack", "row": row.id}


def test_a_handled_row_is_done_with_its_result(rig: Rig) -> None:
    worker = rig.worker({"coa": ok})
    [row_id] = rig.enqueue()
    assert rig.poll(worker) == 1
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.result, row.claimed_by, row.lease_until) == (
        "done", 1, {"outcome": "ack", "row": row_id}, "node-a", None)  # fmt: skip
    assert row.done_at == rig.now()
    assert worker.counters() == {"claimed": 1, "done": 1, "retried": 0, "dead": 0, "db_errors": 0, "in_flight": 0,
                                 "renewed": 0, "claims_lost": 0}  # fmt: skip


def test_a_failed_attempt_is_retried_after_backoff_then_done(rig: Rig) -> None:
    calls: list[int] = []

    def flaky(row: OutboxRow) -> dict[str, Any]:
        calls.append(row.attempts)
        if row.attempts == 1:
            raise OutboxFailure("NAS did not answer\nsecond line", result={"outcome": "timeout"})
        return {"outcome": "ack"}

    worker = rig.worker({"coa": flaky})
    [row_id] = rig.enqueue()
    rig.poll(worker)
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.last_error, row.result) == (
        "pending", 1, "OutboxFailure: NAS did not answer", {"outcome": "timeout"})  # fmt: skip
    assert row.next_attempt_at == rig.now() + dt.timedelta(seconds=10)
    rig.clock.advance(9.9)
    assert rig.poll(worker) == 0
    rig.clock.advance(0.1)
    assert rig.poll(worker) == 1
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.result, calls) == ("done", 2, {"outcome": "ack"}, [1, 2])
    assert (worker.retried, worker.done) == (1, 1)


def test_dead_after_max_attempts(rig: Rig) -> None:
    def silent_nas(row: OutboxRow) -> dict[str, Any]:
        raise OutboxFailure(f"CoA timeout after 3 tries (attempt {row.attempts})")

    worker = rig.worker({"coa": silent_nas})
    [row_id] = rig.enqueue()
    for backoff in (10, 20):
        rig.poll(worker)
        assert rig.row(row_id).status == "pending"
        rig.clock.advance(backoff)
    rig.poll(worker)
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "OutboxFailure: CoA timeout after 3 tries (attempt 3)")
    assert (worker.retried, worker.dead) == (2, 1)
    assert [r["id"] for r in outbox.list_rows(rig.ctx, failed=True)] == [row_id]


def test_permanent_failure_and_unknown_kind_are_dead_at_once(rig: Rig) -> None:
    def refuse(row: OutboxRow) -> dict[str, Any]:
        raise PermanentFailure("NAS 1 no longer exists")

    worker = rig.worker({"coa": refuse})
    [refused] = rig.enqueue("coa")
    [unknown] = rig.enqueue("fax")
    assert rig.poll(worker) == 2
    assert (rig.row(refused).status, rig.row(refused).last_error) == ("dead", "PermanentFailure: NAS 1 no longer exists")
    assert (rig.row(unknown).status, rig.row(unknown).last_error) == (
        "dead", "PermanentFailure: no handler for outbox kind 'fax'")  # fmt: skip


def test_backoff_grows_is_capped_and_jittered(rig: Rig) -> None:
    worker = rig.worker({}, backoff_base_seconds=2.0)
    assert [worker.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert worker.backoff(40) == 900.0
    worker._rng = lambda: 1.0
    assert worker.backoff(1) == pytest.approx(1.6)


def test_a_row_whose_worker_died_is_reclaimed_after_its_lease(rig: Rig) -> None:
    [row_id] = rig.enqueue()
    with rig.ctx.transaction() as uow:  # claimed by a process that then died
        uow.session.execute(update(Outbox).where(Outbox.id == row_id).values(
            status="running", claimed_by="dead-node", attempts=1, lease_until=rig.now() + dt.timedelta(seconds=30)))  # fmt: skip
    worker = rig.worker({"coa": ok})
    assert rig.poll(worker) == 0
    rig.clock.advance(30.001)
    assert rig.poll(worker) == 1
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.claimed_by) == ("done", 2, "node-a")


def test_a_late_outcome_from_an_expired_claim_does_not_overwrite(rig: Rig) -> None:
    hung: Deferred[dict[str, Any]] = Deferred()
    slow = rig.worker({"coa": lambda row: hung}, node_id="node-slow", handler_timeout=0)
    fast = rig.worker({"coa": ok}, node_id="node-fast")
    [row_id] = rig.enqueue()
    assert rig.loop.run_until(slow.poll()) == 1
    rig.clock.advance(31)
    assert rig.poll(fast) == 1
    hung.callback({"outcome": "ack", "late": True})
    rig.loop.run_until(slow.when_idle())
    row = rig.row(row_id)
    assert (row.status, row.claimed_by, row.attempts, row.result) == ("done", "node-fast", 2, {"outcome": "ack", "row": row_id})


def test_a_handler_that_hangs_is_cancelled_and_retried(rig: Rig) -> None:
    worker = rig.worker({"coa": lambda row: Deferred()}, handler_timeout=5.0)
    [row_id] = rig.enqueue()
    rig.loop.run_until(worker.poll())
    assert worker.in_flight == 1
    rig.clock.advance(5.0)
    rig.loop.run_until(worker.when_idle())
    row = rig.row(row_id)
    assert (row.status, row.attempts) == ("pending", 1) and row.last_error and row.last_error.startswith("TimeoutError")


def test_concurrency_per_nas_is_bounded(rig: Rig) -> None:
    held: dict[int, Deferred[dict[str, Any]]] = {}
    active: Counter[int | None] = Counter()
    peak: Counter[int | None] = Counter()

    def hold(row: OutboxRow) -> Deferred[dict[str, Any]]:
        active[row.nas_id] += 1
        peak[row.nas_id] = max(peak[row.nas_id], active[row.nas_id])
        d: Deferred[dict[str, Any]] = Deferred()
        d.addBoth(lambda result: active.subtract([row.nas_id]) or result)
        held[row.id] = d
        return d

    worker = rig.worker({"coa": hold})
    ids = rig.enqueue(nas_id=1, n=5) + rig.enqueue(nas_id=2, n=3) + rig.enqueue(nas_id=None, n=3)
    assert rig.loop.run_until(worker.poll()) == 6
    assert dict(active) == {1: 2, 2: 2, None: 2}
    for _ in ids:  # finish one at a time; each frees a slot and wakes the worker to claim the next
        rig.loop.until(lambda: any(not d.called for d in held.values()))
        next(d for d in held.values() if not d.called).callback({"outcome": "ack"})
    rig.loop.run_until(worker.when_idle())
    assert peak == {1: 2, 2: 2, None: 2}
    assert all(rig.row(i).status == "done" for i in ids)


def test_overall_concurrency_is_bounded(rig: Rig) -> None:
    held: list[Deferred[dict[str, Any]]] = []

    def hold(row: OutboxRow) -> Deferred[dict[str, Any]]:
        held.append(Deferred())
        return held[-1]

    worker = rig.worker({"coa": hold}, concurrency=3, concurrency_per_nas=10)
    rig.enqueue(n=5)
    assert rig.loop.run_until(worker.poll()) == 3
    assert rig.loop.run_until(worker.poll()) == 0
    for d in held:
        d.callback({})


def test_start_polls_on_the_interval_and_wake_polls_at_once(rig: Rig) -> None:
    worker = rig.worker({"coa": ok})
    worker.start()
    rig.loop.run_until(worker.when_idle())
    [first] = rig.enqueue()
    rig.clock.advance(1.0)
    rig.loop.run_until(worker.when_idle())
    assert rig.row(first).status == "done"
    [second] = rig.enqueue()
    worker.wake()
    rig.loop.run_until(worker.when_idle())
    assert rig.row(second).status == "done" and worker.claimed == 2


def test_stop_waits_for_work_in_flight(rig: Rig) -> None:
    hung: Deferred[dict[str, Any]] = Deferred()
    worker = rig.worker({"coa": lambda row: hung})
    [row_id] = rig.enqueue()
    rig.loop.run_until(worker.poll())
    stopped = worker.stop()
    rig.loop.turn(0)
    assert not stopped.called
    hung.callback({"outcome": "ack"})
    rig.loop.run_until(stopped)
    assert rig.row(row_id).status == "done"
    assert rig.loop.run_until(worker.poll()) == 0


def test_two_workers_never_run_the_same_row(rig: Rig, settings: Any) -> None:
    """Two nodes (their own engines) polling the same table at once: every row runs exactly once."""
    runs: list[tuple[str, int]] = []

    def handler(node: str) -> Any:
        def run(row: OutboxRow) -> dict[str, Any]:
            runs.append((node, row.id))
            return {"node": node}

        return run

    other = build_context(settings)
    try:
        a = rig.worker({"coa": handler("a")}, node_id="node-a", concurrency=16, concurrency_per_nas=8)
        b = rig.worker({"coa": handler("b")}, node_id="node-b", ctx=other, concurrency=16, concurrency_per_nas=8)
        ids = [i for nas in (1, 2, 3, 4) for i in rig.enqueue(nas_id=nas, n=50)]
        while len(runs) < len(ids):
            rig.loop.run_until(gatherResults([a.poll(), b.poll()]))
            rig.loop.run_until(gatherResults([a.when_idle(), b.when_idle()]))
        assert sorted(i for _, i in runs) == sorted(ids)
        with rig.ctx.sessions() as session:
            assert set(session.scalars(select(Outbox.status))) == {"done"}
        assert a.claimed + b.claimed == len(ids)
    finally:
        for w in rig.workers:
            rig.loop.run_until(w.stop())
        rig.workers.clear()
        other.close()


def test_a_restarted_node_recovers_its_own_claims_at_once(rig: Rig) -> None:
    [row_id] = rig.enqueue()
    with rig.ctx.transaction() as uow:  # this node's previous process was killed mid-attempt
        uow.session.execute(update(Outbox).where(Outbox.id == row_id).values(
            status="running", claimed_by="node-a", attempts=1, lease_until=rig.now() + dt.timedelta(seconds=30)))  # fmt: skip
    stranger = rig.worker({"coa": ok}, node_id="node-b", recover_own_claims=True)
    assert rig.poll(stranger) == 0
    restarted = rig.worker({"coa": ok}, node_id="node-a", recover_own_claims=True)
    assert rig.poll(restarted) == 1
    assert (rig.row(row_id).status, rig.row(row_id).attempts) == ("done", 2)


def test_stop_cancels_handlers_still_running_after_the_grace_and_gives_their_rows_back(rig: Rig) -> None:
    """SIGTERM with a CoA in flight: after ``cancel_after`` the handler is cancelled (its Deferred's
    canceller withdraws the request) and the row is pending again, due now, the attempt not counted."""
    cancelled: list[int] = []

    def hang(row: OutboxRow) -> Deferred[dict[str, Any]]:
        return Deferred(lambda _: cancelled.append(row.id))

    worker = rig.worker({"coa": hang})
    [row_id] = rig.enqueue()
    rig.loop.run_until(worker.poll())
    stopped = worker.stop(cancel_after=2.0)
    rig.clock.advance(1.9)
    rig.loop.turn(0)
    assert not stopped.called and cancelled == []
    rig.clock.advance(0.1)
    rig.loop.run_until(stopped)
    row = rig.row(row_id)
    assert cancelled == [row_id]
    assert (row.status, row.attempts, row.claimed_by, row.last_error) == ("pending", 0, None, None)
    assert row.next_attempt_at == rig.now()


def test_leases_of_rows_in_flight_are_renewed_so_no_other_node_takes_them(rig: Rig) -> None:
    """A handler slower than the lease (timeout off here) keeps its row: another node polling after
    the first lease would have run out claims nothing."""
    hung: Deferred[dict[str, Any]] = Deferred()
    slow = rig.worker({"coa": lambda row: hung}, node_id="node-slow", handler_timeout=0)
    other = rig.worker({"coa": ok}, node_id="node-other")
    [row_id] = rig.enqueue()
    slow.start()
    rig.loop.until(lambda: slow.in_flight == 1)
    for _ in range(9):  # 90 s: three leases
        rig.clock.advance(SETTINGS.lease_seconds / 3)
        rig.loop.until(lambda: not slow._renewing)
        assert rig.poll(other) == 0
    assert slow.renewed >= 9 and rig.row(row_id).lease_until > rig.now()
    hung.callback({"outcome": "ack"})
    rig.loop.run_until(slow.when_idle())
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.claimed_by) == ("done", 1, "node-slow")


def test_a_worker_that_finds_its_claim_lost_cancels_the_handler(rig: Rig) -> None:
    cancelled: list[int] = []
    worker = rig.worker({"coa": lambda row: Deferred(lambda _: cancelled.append(row.id))}, handler_timeout=0)
    [row_id] = rig.enqueue()
    rig.loop.run_until(worker.poll())
    with rig.ctx.transaction() as uow:  # this node was cut off past its lease; another one took the row
        uow.session.execute(update(Outbox).where(Outbox.id == row_id).values(claimed_by="node-b", attempts=2))
    assert rig.loop.run_until(worker.renew_leases()) == 0
    rig.loop.run_until(worker.when_idle())
    row = rig.row(row_id)
    assert cancelled == [row_id] and worker.claims_lost == 1
    assert (row.status, row.claimed_by, row.attempts) == ("running", "node-b", 2), "the other node's claim is untouched"


def test_a_poll_with_nothing_due_asks_one_cheap_question_and_no_session(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twice a second the claim built its query and a session on a pool thread (320 µs of CPU on
    SQLite, 790 on PostgreSQL), holding the reactor's GIL: now a prebuilt probe over a kept
    connection answers first, and the claim runs only when a row is due."""
    worker = rig.worker({"coa": ok})
    sessions = rig.ctx.sessions
    opened: list[int] = []

    def counting() -> Any:
        opened.append(1)
        return sessions()

    monkeypatch.setattr(rig.ctx, "sessions", counting)
    for _ in range(3):
        assert rig.poll(worker) == 0
    assert opened == [] and worker._probe is not None
    [row_id] = rig.enqueue()
    assert rig.poll(worker) == 1 and rig.row(row_id).status == "done" and opened
    rig.loop.run_until(worker.stop())
    assert worker._probe is None  # its connection closed with the worker


def test_a_probe_that_fails_drops_its_connection_and_the_next_poll_opens_another(rig: Rig) -> None:
    worker = rig.worker({"coa": ok})
    assert rig.poll(worker) == 0
    broken = worker._probe
    assert broken is not None
    broken.invalidate()  # the database dropped it
    assert rig.poll(worker) == 0 and worker.db_errors == 1 and worker._probe is None
    [row_id] = rig.enqueue()
    assert rig.poll(worker) == 1 and rig.row(row_id).status == "done" and worker._probe is not None
