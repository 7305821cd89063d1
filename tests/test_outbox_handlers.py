"""The ``radius.reauthorize`` handler with the outbox worker and the real CoA client, in this process:
its time budget, cancellation (timeout, shutdown), the node identity a restarted ``aaa serve``
recovers its claims under, and the cross-worker cache wait.

Time is a Clock the tests advance; the fake NAS (tests/fakenas.py) is on a real loopback socket and
the database (SQLite, and PostgreSQL when AAA_TEST_DATABASE_URL is set) on a real thread pool.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakenas import FakeNas, FakeNasProtocol
from reactor_helpers import ClockedReactor, Loop
from sqlalchemy import update
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThreadPool
from twisted.logger import globalLogPublisher
from twisted.python.threadpool import ThreadPool

from aaa.cache import Cache
from aaa.cache_sync import WAIT_BOUND_SECONDS, CacheSync
from aaa.config import OutboxSettings
from aaa.context import Context
from aaa.db.models import AcctSession, Outbox
from aaa.outbox_handlers import Reauthorize, attempt_budget, claim_node_id
from aaa.outbox_worker import OutboxWorker
from aaa.radius.coa import CoaClient
from aaa.services import nas, plans, subscribers
from aaa.services.subscribers import REAUTHORIZE

SECRET = b"coa-secret-for-tests"


class FakeService:
    """What the handler uses of :class:`aaa.serve.Service`: reactor, pool, context, cache, refresh."""

    def __init__(self, ctx: Context, reactor: Any, pool: ThreadPool) -> None:
        self.context = ctx
        self.reactor = reactor
        self.pool = pool
        self.cache = Cache(ctx.engine, ctx.vault)
        self.cache.load()
        self.options = SimpleNamespace(cache_sync=None)

    def refresh_everywhere(self) -> Deferred[Any]:
        return deferToThreadPool(self.reactor, self.pool, self.cache.refresh)


class Rig:
    """ana online on router r1, whose CoA port is a fake NAS; a worker running Reauthorize."""

    def __init__(self, ctx: Context, loop: Loop, pool: ThreadPool, nas_mode: FakeNas) -> None:
        self.ctx = ctx
        self.loop = loop
        self.pool = pool
        self.nas = nas_mode
        self.clock = ClockedReactor(loop, start=time.time() + 60)
        port = loop.listen_udp(0, FakeNasProtocol(self.nas), "127.0.0.1").getHost().port
        nas.add_nas(ctx, name="r1", address="127.0.0.1", secret=SECRET.decode(), coa_port=port, actor="admin:test")
        plans.add_plan(ctx, name="100M", down="100M", up="50M", actor="admin:test")
        plans.add_plan(ctx, name="300M", down="300M", up="150M", actor="admin:test")
        subscribers.add_subscriber(ctx, login="ana", password="pw", plan="100M", actor="admin:test")
        with ctx.transaction() as uow:
            now = dt.datetime.now(dt.UTC)
            uow.session.add(AcctSession(nas_id=nas.show_nas(ctx, "r1")["id"], acct_session_id="81a00001", login="ana",
                                        framed_ip="100.64.0.9", started_at=now, updated_at=now))  # fmt: skip
        self.workers: list[OutboxWorker] = []
        self.clients: list[CoaClient] = []

    def worker(self, settings: OutboxSettings, *, node_id: str = "node-a") -> OutboxWorker:
        """A worker as ``aaa serve`` builds it: lease and handler timeout from :func:`attempt_budget`."""
        client = CoaClient(self.clock, timeout=settings.coa_timeout_seconds, retries=settings.coa_retries)
        budget = attempt_budget(settings, client)
        handler = Reauthorize(FakeService(self.ctx, self.clock, self.pool), client)  # type: ignore[arg-type]
        worker = OutboxWorker(self.ctx, self.clock, {REAUTHORIZE: handler}, node_id=node_id, pool=self.pool,
                              settings=replace(settings, lease_seconds=budget.lease), rng=lambda: 0.0,
                              handler_timeout=budget.handler_timeout)  # fmt: skip
        self.workers.append(worker)
        self.clients.append(client)
        return worker

    def row(self, row_id: int) -> Outbox:
        with self.ctx.sessions() as session:
            row = session.get(Outbox, row_id)
            assert row is not None
            return row

    def datagrams(self) -> int:
        return len(self.nas.requests(include_duplicates=True))

    def advance_to_datagram(self, n: int, *, step: float = 0.5, limit: float = 120.0) -> None:
        """Move the clock in steps until the NAS has seen ``n`` datagrams."""
        moved = 0.0
        while self.datagrams() < n:
            assert moved <= limit, f"only {self.datagrams()} datagram(s) after {moved}s"
            self.clock.advance(step)
            moved += step
            self.loop.turn(0.01)


@pytest.fixture
def errors() -> Iterator[list[dict[str, Any]]]:
    """Error events logged while the test runs (unhandled Deferred errors included, after a gc)."""
    seen: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("isError") or event.get("log_failure") is not None:
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


@pytest.fixture
def make_rig(ctx: Context) -> Iterator[Any]:
    loop = Loop()
    pool = ThreadPool(minthreads=2, maxthreads=8, name="outbox-handlers-test")
    pool.start()
    made: list[Rig] = []

    def make(nas_mode: FakeNas) -> Rig:
        made.append(Rig(ctx, loop, pool, nas_mode))
        return made[-1]

    yield make
    for rig in made:
        for worker in rig.workers:
            loop.run_until(worker.stop(cancel_after=0))
    pool.stop()
    loop.close()


# --- the budget ------------------------------------------------------------------------------------


def test_the_budget_covers_a_coa_and_its_disconnect_fallback_with_every_retransmission() -> None:
    """Defaults: 14 s per request, 28 s for CoA + Disconnect, 32 s with the database; lease 37 s."""
    settings = OutboxSettings()
    client = CoaClient(Clock(), timeout=settings.coa_timeout_seconds, retries=settings.coa_retries)
    budget = attempt_budget(settings, client)
    assert (budget.request, budget.handler_timeout, budget.lease) == (14.0, 32.0, 37.0)
    assert budget.handler_timeout >= 2 * client.worst_case_seconds()
    with_workers = attempt_budget(settings, client, cache_sync=True)
    assert with_workers.handler_timeout == 32.0 + WAIT_BOUND_SECONDS and with_workers.lease == 40.0
    assert attempt_budget(replace(settings, lease_seconds=120.0), client).lease == 120.0


def test_a_slow_but_acknowledged_delivery_is_one_attempt_and_no_other_node_takes_it(make_rig: Any, errors: list[Any]) -> None:
    """The NAS ignores the CoA and every Disconnect datagram but the last retransmission, answered
    30 s into the attempt (longer than the old fixed 24 s handler timeout): done in one attempt, one
    CoA and one Disconnect, while another node polling all along claims nothing."""
    settings = OutboxSettings(coa_timeout_seconds=3.0, coa_retries=2, poll_interval_seconds=1.0)  # 3 + 6 + 12 = 21 s a request
    rig = make_rig(FakeNas(SECRET, silent_first=5))  # 3 CoA datagrams, then 2 of the Disconnect's 3
    worker = rig.worker(settings)
    other = rig.worker(settings, node_id="node-b")
    [row_id] = subscribers.set_plan(rig.ctx, "ana", "300M", actor="admin:test")["outbox"]
    assert rig.loop.run_until(worker.poll()) == 1
    rig.advance_to_datagram(6, step=1.0)
    rig.loop.run_until(worker.when_idle())
    assert rig.loop.run_until(other.poll()) == 0
    row = rig.row(row_id)
    assert (row.status, row.attempts) == ("done", 1)
    assert row.result is not None and row.result["action"] == "disconnect" and row.result["coa"]["outcome"] == "timeout"
    distinct = {(r.code, r.authenticator) for r in rig.nas.requests(include_duplicates=True)}
    assert sorted(code for code, _ in distinct) == ["CoA-Request", "Disconnect-Request"]
    assert [r.answer for r in rig.nas.requests(include_duplicates=True)] == ["silent"] * 5 + ["ack"]
    assert row.done_at is not None and (row.done_at - row.created_at.replace(tzinfo=dt.UTC)).total_seconds() > 24
    gc.collect()
    assert errors == []


# --- cancellation ----------------------------------------------------------------------------------


def test_an_attempt_cut_off_by_the_handler_timeout_sends_nothing_more(make_rig: Any, errors: list[Any]) -> None:
    """The timeout cancels the handler, which withdraws its request: no retransmission after it, no
    late result, no unhandled error; the next attempt is a fresh request."""
    settings = OutboxSettings(coa_timeout_seconds=2.0, coa_retries=2, backoff_base_seconds=100.0)
    rig = make_rig(FakeNas(SECRET, mode="silent"))
    worker = rig.worker(settings)
    worker.handler_timeout = 5.0  # shorter than the CoA's own 14 s, as a stuck database would make it
    [row_id] = subscribers.set_plan(rig.ctx, "ana", "300M", actor="admin:test")["outbox"]
    rig.loop.run_until(worker.poll())
    rig.advance_to_datagram(2, step=0.5)  # t = 2 s: the first retransmission
    rig.clock.advance(3.0)  # t = 5 s: the handler timeout
    rig.loop.run_until(worker.when_idle())
    row = rig.row(row_id)
    assert (row.status, row.attempts) == ("pending", 1) and (row.last_error or "").startswith("TimeoutError")
    sent = rig.datagrams()
    rig.clock.advance(60.0)
    rig.loop.turn(0.05)
    assert rig.datagrams() == sent == 2, "the withdrawn request was retransmitted"
    assert rig.clients[0].in_flight() == 0 and rig.clients[0].cancelled == 1
    gc.collect()
    assert errors == []


def test_stopping_cancels_requests_in_flight_and_gives_the_row_back(make_rig: Any, errors: list[Any]) -> None:
    """SIGTERM while the NAS is silent: after the grace the request is withdrawn and the row is
    pending again (due now, attempt not counted) for the next start; nothing more is sent."""
    settings = OutboxSettings()
    rig = make_rig(FakeNas(SECRET, mode="silent"))
    worker = rig.worker(settings)
    [row_id] = subscribers.suspend(rig.ctx, "ana", actor="admin:test")["outbox"]
    rig.loop.run_until(worker.poll())
    rig.advance_to_datagram(1)
    stopped = worker.stop(cancel_after=2.0)
    rig.clock.advance(2.0)
    rig.loop.run_until(stopped)
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)
    sent = rig.datagrams()
    rig.clock.advance(60.0)
    rig.loop.turn(0.05)
    assert rig.datagrams() == sent and rig.clients[0].in_flight() == 0
    gc.collect()
    assert errors == []


# --- node identity ---------------------------------------------------------------------------------


def test_the_node_id_is_kept_across_restarts_and_never_shared_by_two_live_processes(tmp_path: Path) -> None:
    first = claim_node_id(tmp_path / "journal")
    assert first.stable and first.node_id
    second = claim_node_id(tmp_path / "journal")  # another process on the same folder while the first runs
    assert not second.stable and second.node_id != first.node_id
    first.release()  # the first process ends (or dies: the kernel drops its lock)
    again = claim_node_id(tmp_path / "journal")
    assert again.stable and again.node_id == first.node_id
    again.release()
    assert claim_node_id(tmp_path / "elsewhere").node_id != first.node_id


def test_a_restart_under_the_same_node_id_recovers_its_claims_before_the_lease(make_rig: Any, tmp_path: Path) -> None:
    rig = make_rig(FakeNas(SECRET))
    node = claim_node_id(tmp_path / "journal")
    [row_id] = subscribers.suspend(rig.ctx, "ana", actor="admin:test")["outbox"]
    lease_until = dt.datetime.fromtimestamp(rig.clock.seconds(), dt.UTC) + dt.timedelta(seconds=37)
    with rig.ctx.transaction() as uow:  # the previous process claimed it, then was killed
        uow.session.execute(update(Outbox).where(Outbox.id == row_id).values(
            status="running", claimed_by=node.node_id, attempts=1, lease_until=lease_until))  # fmt: skip
    worker = rig.worker(OutboxSettings())
    worker.node_id = node.node_id
    worker._recover_own = node.stable
    assert rig.loop.run_until(worker.poll()) == 1
    rig.loop.run_until(worker.when_idle())
    row = rig.row(row_id)
    assert (row.status, row.attempts, row.claimed_by) == ("done", 2, node.node_id)
    assert [r.code for r in rig.nas.requests()] == ["Disconnect-Request"]
    node.release()


# --- caches of several workers ---------------------------------------------------------------------


def test_cache_sync_waits_for_every_worker_then_gives_up_at_the_bound() -> None:
    clock = Clock()
    sync = CacheSync(3)
    for index in range(3):
        sync.publish(index, 10)
    done: list[list[int]] = []
    sync.wait(clock, 12).addCallback(done.append)
    assert sync.wanted() == 12 and sync.behind(12) == [0, 1, 2]
    sync.publish(0, 12)
    sync.publish(1, 13)
    clock.advance(0.1)
    assert done == []
    sync.publish(2, 12)
    clock.advance(0.1)
    assert done == [[]]
    late: list[list[int]] = []
    sync.wait(clock, 20).addCallback(late.append)
    sync.publish(0, 20)
    clock.pump([0.1] * int(WAIT_BOUND_SECONDS / 0.1 + 2))
    assert late == [[1, 2]]
    sync.want(5)
    assert sync.wanted() == 20, "what is wanted never goes back"
