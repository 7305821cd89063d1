"""The auth log writer: every decision lands in ``auth_log``; overload and outages are counted, not silent."""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from radius_harness import InlinePool, InlineReactor
from sqlalchemy import Engine, select, text

from aaa.apply_process import AuthLogProcess
from aaa.background import AuthLogWriter, lower_thread_priority
from aaa.db.engine import make_engine
from aaa.db.models import AuthLog

AT = dt.datetime(2026, 12, 2, 21, 30, 5, 123456, tzinfo=dt.UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def writer(engine: Engine, **options: Any) -> AuthLogWriter:
    return AuthLogWriter(InlineReactor(), InlinePool(), engine, **options)  # type: ignore[arg-type]


@pytest.fixture(params=["thread", "process"])
def make_writer(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Any]:
    """A writer that writes on its own thread, or hands its batches to an auth log process
    (``aaa serve``'s default); the processes are closed at the end."""
    made: list[AuthLogProcess] = []

    def make(**options: Any) -> AuthLogWriter:
        if request.param == "process":
            made.append(AuthLogProcess(engine.url.render_as_string(hide_password=False)))
            options["process"] = made[-1]
        return writer(engine, **options)

    yield make
    for process in made:
        process.close()


def row(login: str, result: str = "accept", reason: str | None = None) -> tuple[Any, ...]:
    return (AT.timestamp(), login, 1, result, "pap", reason, "AA:BB:CC:DD:EE:FF")


def stored(engine: Engine) -> list[AuthLog]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(session.scalars(select(AuthLog).order_by(AuthLog.id)))


def test_every_decision_is_written_with_its_fields(engine: Engine, make_writer: Any) -> None:
    log = make_writer()
    log(row("ana"))
    log(row("bia", "reject", "wrong password"))
    log.flush()
    rows = stored(engine)
    assert [(r.login, r.result, r.method, r.reason, r.calling_station_id, r.nas_id) for r in rows] == [
        ("ana", "accept", "pap", None, "AA:BB:CC:DD:EE:FF", 1),
        ("bia", "reject", "pap", "wrong password", "AA:BB:CC:DD:EE:FF", 1),
    ]
    assert all(r.at == AT for r in rows)  # the ORM reads back what the raw insert wrote, to the microsecond
    assert log.written == 2 and log.dropped == 0 and log.pending == 0


def test_batches_keep_the_connection_open(engine: Engine) -> None:
    log = writer(engine)
    log(row("ana"))
    log.flush()
    first = log._table.connection
    log(row("bia"))
    log.flush()
    assert first is not None and log._table.connection is first
    assert len(stored(engine)) == 2


def test_rows_beyond_the_limit_are_counted_as_dropped(engine: Engine, make_writer: Any) -> None:
    log = make_writer(limit=3)
    for i in range(5):
        log(row(f"user{i}"))
    assert log.pending == 3 and log.dropped == 2
    log.flush()
    assert [r.login for r in stored(engine)] == ["user0", "user1", "user2"]


def test_a_refused_batch_is_retried_with_the_next(engine: Engine, make_writer: Any) -> None:
    log = make_writer()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auth_log RENAME TO auth_log_away"))
    log(row("ana"))
    log.flush()  # fails: the table is gone; the row waits
    assert log.pending == 1 and log.written == 0 and log.dropped == 0
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auth_log_away RENAME TO auth_log"))
    log(row("bia"))
    log.flush()
    assert [r.login for r in stored(engine)] == ["ana", "bia"]
    assert log.written == 2 and log.pending == 0


def test_a_refused_batch_that_no_longer_fits_is_counted(engine: Engine, make_writer: Any) -> None:
    log = make_writer(limit=2)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auth_log RENAME TO auth_log_away"))
    log(row("ana"))
    log(row("bia"))
    log.flush()
    log(row("cid"))  # arrives after the failed batch was put back: no room
    assert log.pending == 2 and log.dropped == 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auth_log_away RENAME TO auth_log"))
    log.flush()
    assert [r.login for r in stored(engine)] == ["ana", "bia"]


def test_stop_writes_what_is_left(engine: Engine) -> None:
    log = writer(engine)
    log.start()
    log(row("ana"))
    log.stop()
    assert [r.login for r in stored(engine)] == ["ana"]
    assert log._table.connection is None


def test_an_empty_reason_is_stored_as_null(engine: Engine, make_writer: Any) -> None:
    log = make_writer()
    log(row("ana", "accept", ""))
    log.flush()
    assert stored(engine)[0].reason is None


def test_long_values_are_cut_to_the_columns(engine: Engine, make_writer: Any) -> None:
    log = make_writer()
    log(row("x" * 300, "reject", "r" * 400)[:6] + ("A" * 200,))  # a Calling-Station-Id over 64 refused a whole batch on PostgreSQL
    log.flush()
    (stored_row,) = stored(engine)
    assert len(stored_row.login) == 128 and len(stored_row.reason or "") == 255
    assert stored_row.calling_station_id == "A" * 64 and log.written == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_the_writer_thread_runs_at_a_lower_priority_than_the_reactor() -> None:
    """``lower_thread_priority`` lowers the calling thread only; the rest of the process keeps its own."""
    seen: list[tuple[int, int]] = []

    def background() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        lower_thread_priority()
        seen.append((before, os.getpriority(os.PRIO_PROCESS, tid)))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    before, after = seen[0]
    assert after == min(19, before + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


@pytest.fixture
def process(engine: Engine) -> Iterator[AuthLogProcess]:
    """An auth log process on the test database, closed at the end."""
    process = AuthLogProcess(engine.url.render_as_string(hide_password=False))
    yield process
    process.close()
    assert process.pid is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_the_auth_log_process_runs_only_when_nothing_else_wants_the_cpu(engine: Engine, process: AuthLogProcess) -> None:
    log = writer(engine, process=process)
    log(row("ana"))
    log.flush()
    assert process.pid is not None and os.sched_getscheduler(process.pid) == os.SCHED_IDLE
    assert [r.login for r in stored(engine)] == ["ana"] and log.written == 1


def test_a_killed_auth_log_process_is_replaced_and_nothing_is_lost(engine: Engine, process: AuthLogProcess) -> None:
    import signal

    log = writer(engine, process=process)
    log(row("ana"))
    log.flush()
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    log(row("bia"))
    log.flush()  # the dead child is noticed: the batch fails and waits, or a new child writes it
    log.flush()  # ... in which case this one has nothing to do
    assert process.starts == 2 and process.pid not in (None, first)
    assert [r.login for r in stored(engine)] == ["ana", "bia"]
    assert log.written == 2 and log.pending == 0 and log.dropped == 0


class PieceRecorder:
    """Stands in for the auth log process: records the pieces it is given and commits them to a
    list, refusing the pieces numbered in ``refuse`` (once each)."""

    def __init__(self, refuse: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.pieces: list[int] = []
        self.committed: list[str] = []
        self.started = 0
        self._refuse = set(refuse)

    def start(self) -> None:
        self.started += 1

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        number = len(self.pieces)
        self.pieces.append(len(rows))
        if number in self._refuse:
            self._refuse.discard(number)
            raise RuntimeError("the database refused the piece")
        self.committed += [r[1] for r in rows]
        return len(rows)


def test_a_batch_goes_to_the_process_in_pieces(engine: Engine) -> None:
    """Pickling a batch is one C call that keeps the GIL from the reactor until it returns: a batch
    of half a second under load (10,000 rows) held it for milliseconds, so it goes in pieces."""
    process = PieceRecorder()
    log = writer(engine, process=process, chunk=1000)
    for i in range(2500):
        log(row(f"user{i}"))
    log.flush()
    assert process.pieces == [1000, 1000, 500]
    assert process.committed == [f"user{i}" for i in range(2500)] and log.written == 2500 and log.pending == 0


def test_a_refused_piece_puts_back_only_the_rows_not_committed(engine: Engine) -> None:
    process = PieceRecorder(refuse={1})
    log = writer(engine, process=process, chunk=2)
    for i in range(5):
        log(row(f"user{i}"))
    log.flush()  # piece 0 committed, piece 1 refused: it and the rest wait
    assert log.written == 2 and log.pending == 3 and log.dropped == 0
    log(row("user5"))
    log.flush()
    assert process.committed == [f"user{i}" for i in range(6)]  # each once, in order
    assert log.written == 6 and log.pending == 0


def test_pieces_reach_the_database_through_the_process(engine: Engine, process: AuthLogProcess) -> None:
    log = writer(engine, process=process, chunk=2)
    for i in range(5):
        log(row(f"user{i}"))
    log.flush()
    assert [r.login for r in stored(engine)] == [f"user{i}" for i in range(5)] and log.written == 5


def test_a_backlog_over_half_the_bound_is_written_at_normal_priority(engine: Engine) -> None:
    """The lowest-priority child writes only in the gaps a busy machine leaves; from half the bound
    waiting (the rest of the batch being written included) until under a quarter, pieces go to the
    child in the normal scheduling class instead of piling up to the bound and being dropped."""
    idle, hurry = PieceRecorder(), PieceRecorder()
    log = writer(engine, process=idle, hurry=hurry, chunk=2, limit=8)
    for i in range(6):
        log(row(f"user{i}"))
    log.flush()  # 6 waiting, then 4: in a hurry; 2 (a quarter): back to the idle child, in smaller pieces
    assert (hurry.pieces, idle.pieces) == ([2, 2], [1, 1])
    assert hurry.committed + idle.committed == [f"user{i}" for i in range(6)]
    assert log.written == 6 and log.hurried == 4 and log.dropped == 0
    log(row("user6"))
    log.flush()
    assert idle.pieces == [1, 1, 1] and log.hurried == 4


def test_the_idle_childs_pieces_shrink_as_the_backlog_nears_half_the_bound(engine: Engine) -> None:
    """A piece sent to the lowest-priority child cannot be taken back, and on a saturated machine
    it may take seconds: the nearer the backlog is to half the bound, the smaller the piece."""
    idle, hurry = PieceRecorder(), PieceRecorder()
    log = writer(engine, process=idle, hurry=hurry, chunk=20, limit=100)
    for i in range(40):
        log(row(f"user{i}"))
    log.flush()
    assert idle.pieces[0] == 4 and idle.pieces == sorted(idle.pieces) and max(idle.pieces) < 20  # 40 of 50 waiting
    assert idle.committed == [f"user{i}" for i in range(40)] and hurry.pieces == []
    for i in range(3):
        log(row(f"more{i}"))
    log.flush()
    assert idle.pieces[-1] == 3  # nothing else waiting: a full piece would do


def test_the_backlog_process_is_started_once_a_tenth_of_the_bound_waits(engine: Engine) -> None:
    """Not before (a Python process and its driver is some 55 MB a server that keeps up need not
    carry), and not only at half the bound (under a saturating load it took seconds to start)."""
    idle, hurry = PieceRecorder(), PieceRecorder()
    log = writer(engine, process=idle, hurry=hurry, chunk=5, limit=100)
    for i in range(9):
        log(row(f"user{i}"))
    log.flush()
    assert hurry.started == 0
    for i in range(10):
        log(row(f"user{i}"))
    log.flush()
    log(row("user10"))
    log.flush()
    assert hurry.started == 1 and hurry.pieces == [] and sum(idle.pieces) == 20  # started, still idle's work


def test_a_backlog_process_that_cannot_start_loses_no_row(engine: Engine) -> None:
    """Starting it happens while a batch is being written: if that fails, the batch's rows wait."""

    class Unstartable(PieceRecorder):
        def start(self) -> None:
            raise OSError("cannot fork")

    idle = PieceRecorder()
    log = writer(engine, process=idle, hurry=Unstartable(), chunk=5, limit=100)
    for i in range(12):
        log(row(f"user{i}"))
    log.flush()
    assert log.pending == 12 and log.written == 0 and log.dropped == 0
    log.flush()  # not started again: the idle child writes them
    assert idle.committed == [f"user{i}" for i in range(12)] and log.written == 12


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_the_backlog_process_runs_in_the_normal_scheduling_class(engine: Engine) -> None:
    hurry = AuthLogProcess(engine.url.render_as_string(hide_password=False), idle=False)
    try:
        hurry.write([row("ana")])
        assert hurry.pid is not None and os.sched_getscheduler(hurry.pid) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, hurry.pid) == os.getpriority(os.PRIO_PROCESS, 0)
        assert [r.login for r in stored(engine)] == ["ana"]
    finally:
        hurry.close()
