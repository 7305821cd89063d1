"""The auth log writer: every decision lands in ``auth_log``; overload and outages are counted, not silent."""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from radius_harness import InlinePool, InlineReactor
from sqlalchemy import Engine, select, text

from aaa.apply_process import AuthLogProcess
from aaa.auth_log_spool import AuthLogSpool, SpoolWriteError, scan, write_file
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
def make_writer(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> Iterator[Any]:
    """A writer that writes on its own thread, or spools its batches for an auth log process
    (``aaa serve``'s default); the processes are closed at the end."""
    made: list[AuthLogProcess] = []

    def make(**options: Any) -> AuthLogWriter:
        if request.param == "process":
            made.append(AuthLogProcess(url_of(engine)))
            options.update(process=made[-1], spool=AuthLogSpool(tmp_path / "spool", limit_bytes=10_000_000))
        return writer(engine, **options)

    yield make
    for process in made:
        process.close()


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


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


def test_a_refused_batch_that_no_longer_fits_is_counted(engine: Engine) -> None:
    """The thread's bound in memory (with a spool, a refused batch waits on disk: see below)."""
    log = writer(engine, limit=2)
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
    process = AuthLogProcess(url_of(engine))
    yield process
    process.close()
    assert process.pid is None


@pytest.fixture
def spool(tmp_path: Path) -> AuthLogSpool:
    return AuthLogSpool(tmp_path / "spool", limit_bytes=10_000_000)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_the_auth_log_process_runs_only_when_nothing_else_wants_the_cpu(engine: Engine, process: AuthLogProcess, spool: AuthLogSpool) -> None:
    log = writer(engine, process=process, spool=spool)
    log(row("ana"))
    log.flush()
    assert process.pid is not None and os.sched_getscheduler(process.pid) == os.SCHED_IDLE
    assert [r.login for r in stored(engine)] == ["ana"] and log.written == 1


def test_a_process_needs_a_spool(engine: Engine, process: AuthLogProcess) -> None:
    with pytest.raises(ValueError, match="needs a spool"):
        writer(engine, process=process)


def test_a_killed_auth_log_process_is_replaced_and_nothing_is_lost(engine: Engine, process: AuthLogProcess, spool: AuthLogSpool) -> None:
    import signal

    log = writer(engine, process=process, spool=spool)
    log(row("ana"))
    log.flush()
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    log(row("bia"))
    log.flush()  # the dead child is noticed: the file stays in the spool, or a new child writes it
    log.feed()  # ... in which case this has nothing to do
    assert process.starts == 2 and process.pid not in (None, first)
    assert [r.login for r in stored(engine)] == ["ana", "bia"]
    assert log.written == 2 and log.pending == 0 and log.dropped == 0


class StuckProcess:
    """Stands in for an auth log process that gets no CPU (or no database): it writes nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def write_file(self, path: Path, *, may_pause: bool = False) -> tuple[int, int, BaseException | None, bool]:
        self.calls += 1
        return 0, 0, RuntimeError("no CPU for the child"), False


def test_the_writer_spools_while_the_process_writes_nothing(engine: Engine, spool: AuthLogSpool) -> None:
    """Under a load that leaves the SCHED_IDLE child no CPU, rows go to disk, not to the memory
    bound: nothing is dropped while the spool has room."""
    log = writer(engine, process=StuckProcess(), spool=spool, limit=10)
    for batch in range(5):
        for i in range(10):
            log(row(f"user{batch}-{i}"))
        log.flush()
    assert log.pending == 50 and log._buffer == [] and log.dropped == 0 and log.written == 0
    assert len(spool.files()) == 5 and spool.rows == 50 and spool.bytes > 0


def test_a_full_spool_drops_and_counts_the_batch(engine: Engine, tmp_path: Path) -> None:
    spool = AuthLogSpool(tmp_path / "spool", limit_bytes=1)
    log = writer(engine, process=StuckProcess(), spool=spool)
    log(row("ana"))
    log.flush()  # the spool is empty: the first batch goes in, over the bound
    log(row("bia"))
    log(row("cid"))
    log.flush()
    assert log.dropped == 2 and log.pending == 1 and len(spool.files()) == 1


def test_rows_left_in_the_spool_are_written_after_the_next_start(engine: Engine, tmp_path: Path) -> None:
    """The database was down when the server stopped: the rows wait on disk, and a server started
    later on the same folder writes them, before its own."""
    folder = tmp_path / "spool"
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auth_log RENAME TO auth_log_away"))
    first = AuthLogProcess(url_of(engine))
    try:
        log = writer(engine, process=first, spool=AuthLogSpool(folder, limit_bytes=10_000_000))
        log.start()
        log(row("ana"))
        log.stop()
        assert log.pending == 1 and log.written == 0 and log.dropped == 0
    finally:
        first.close()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auth_log_away RENAME TO auth_log"))
    second = AuthLogProcess(url_of(engine))
    try:
        spool = AuthLogSpool(folder, limit_bytes=10_000_000)
        assert spool.rows == 1
        log = writer(engine, process=second, spool=spool)
        log.start()
        log(row("bia"))
        log.stop()
        assert [r.login for r in stored(engine)] == ["ana", "bia"] and log.written == 2 and log.pending == 0
    finally:
        second.close()


def test_stop_writes_what_the_spool_holds(engine: Engine, process: AuthLogProcess, spool: AuthLogSpool) -> None:
    log = writer(engine, process=StuckProcess(), spool=spool)
    for i in range(3):
        log(row(f"user{i}"))
        log.flush()  # three files the stuck child did not write
    log._process = process
    log.start()
    log.stop()
    assert [r.login for r in stored(engine)] == ["user0", "user1", "user2"] and spool.files() == []


def frames_of(rows: int, chunk: int, tmp_path: Path) -> AuthLogSpool:
    spool = AuthLogSpool(tmp_path / "spool", limit_bytes=10_000_000, chunk=chunk)
    spool.append([row(f"user{i}") for i in range(rows)])
    return spool


def test_a_refused_frame_leaves_only_the_frames_not_committed(tmp_path: Path) -> None:
    spool = frames_of(5, 2, tmp_path)
    (path,) = spool.files()
    committed: list[str] = []
    calls = 0

    def write(rows: list[tuple[Any, ...]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database refused the frame")
        committed.extend(r[1] for r in rows)

    written, dropped, error = write_file(path, write, batch=1)  # a transaction per frame
    assert (written, dropped, str(error)) == (2, 0, "the database refused the frame")
    spool.settle(path)
    assert spool.rows == 3 and scan(path) == (3, 2)
    assert write_file(path, write, batch=1) == (3, 0, None) and not path.exists()
    spool.settle(path)
    assert committed == [f"user{i}" for i in range(5)] and spool.rows == 0 and spool.bytes == 0  # each once, in order


def test_the_child_commits_whole_frames_in_groups_of_a_batch(tmp_path: Path) -> None:
    """Small frames keep the reactor's pickling short; the child commits several at once (a
    commit costs the same for a few rows as for a thousand). A refused group stays whole."""
    spool = frames_of(2500, 256, tmp_path)
    (path,) = spool.files()
    assert scan(path) == (2500, 10)
    sizes: list[int] = []

    def write(rows: list[tuple[Any, ...]]) -> None:
        if len(sizes) == 1 and not hasattr(write, "refused"):
            write.refused = True  # type: ignore[attr-defined]
            raise RuntimeError("the database refused the group")
        sizes.append(len(rows))

    assert write_file(path, write)[:2] == (1024, 0)
    assert scan(path) == (2500 - 1024, 6)  # the refused group's four frames and the two after
    assert write_file(path, write) == (1476, 0, None) and not path.exists()
    assert sizes == [1024, 1024, 452]


def test_a_damaged_frame_is_dropped_with_the_rest_of_its_file(tmp_path: Path) -> None:
    spool = frames_of(5, 2, tmp_path)
    (path,) = spool.files()
    data = bytearray(path.read_bytes())
    second = 8 + int.from_bytes(data[0:4], "big")  # the second frame's header
    data[second + 8 : second + 12] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    committed: list[str] = []
    assert write_file(path, lambda rows: committed.extend(r[1] for r in rows)) == (2, 3, None)
    assert committed == ["user0", "user1"] and not path.exists()


def test_the_reactor_spools_a_frame_every_so_many_decisions(engine: Engine, spool: AuthLogSpool) -> None:
    """Pickling is one C call that keeps the GIL until it returns: a thread that pickled a
    half-second batch (10,000 rows under load) held the reactor for milliseconds, and took its core
    in scheduler slices. The reactor pickles a small frame itself as soon as it has one, and the
    file goes to the child, sealed, at the next flush."""
    log = writer(engine, process=StuckProcess(), spool=spool, frame=4)
    for i in range(10):
        log(row(f"user{i}"))
    assert spool.unsealed_rows == 8 and len(log._buffer) == 2 and spool.files() == [] and log.pending == 10
    log.flush()
    (path,) = spool.files()
    assert scan(path) == (10, 3) and spool.unsealed_rows == 0 and log.pending == 10
    names: list[str] = []
    assert write_file(path, lambda rows: names.extend(r[1] for r in rows)) == (10, 0, None)
    assert names == [f"user{i}" for i in range(10)]


class RefusingDisk(AuthLogSpool):
    """A spool on a disk that refuses every frame while ``full`` is set."""

    full = True

    def write_frame(self, rows: list[tuple[Any, ...]]) -> None:
        if self.full:
            raise SpoolWriteError(OSError(28, "No space left on device"), 0)
        super().write_frame(rows)


def test_rows_the_disk_refuses_wait_in_memory_within_the_bound(engine: Engine, tmp_path: Path) -> None:
    spool = RefusingDisk(tmp_path / "spool", limit_bytes=10_000_000)
    log = writer(engine, process=StuckProcess(), spool=spool, frame=2, limit=5)
    for i in range(7):
        log(row(f"user{i}"))  # refused at the second row; not tried again for every decision
    assert len(log._buffer) == 5 and log.dropped == 2 and spool.files() == []
    spool.full = False
    log.flush()
    (path,) = spool.files()
    assert scan(path) == (5, 3) and log._buffer == [] and log.dropped == 2
    log(row("user7"))
    log(row("user8"))  # frames go from the reactor again
    assert spool.unsealed_rows == 2


def test_a_refused_write_leaves_the_file_at_its_last_whole_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aaa.auth_log_spool as module

    spool = AuthLogSpool(tmp_path / "spool", limit_bytes=10_000_000)
    spool.write_frame([row("ana")])
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module.os, "write", half_then_full)
    with pytest.raises(SpoolWriteError, match="No space left on device") as refused:
        spool.write_frame([row("bia")])
    assert refused.value.lost == 0
    monkeypatch.setattr(module.os, "write", real_write)
    spool.write_frame([row("cid")])
    assert spool.seal() == 2
    names: list[str] = []
    (path,) = spool.files()
    assert write_file(path, lambda rows: names.extend(r[1] for r in rows)) == (2, 0, None) and names == ["ana", "cid"]


def test_a_file_the_server_was_writing_when_it_stopped_is_counted_as_lost(tmp_path: Path) -> None:
    spool = frames_of(3, 2, tmp_path)
    (path,) = spool.files()
    path.rename(path.with_name("000000000009.rows.tmp"))  # as append leaves it when killed before the rename
    (path.parent / "000000000001.rows.part").write_bytes(b"half")  # the child's, the file itself is whole
    again = AuthLogSpool(path.parent, limit_bytes=10_000_000)
    assert again.lost_on_start == 3 and again.files() == [] and list(path.parent.iterdir()) == []


def test_a_spool_takes_over_other_folders_in_order(tmp_path: Path) -> None:
    old = AuthLogSpool(tmp_path / "w1", limit_bytes=10_000_000)
    old.append([row("ana")])
    old.append([row("bia")])
    mine = AuthLogSpool(tmp_path / "w0", limit_bytes=10_000_000)
    mine.append([row("cid")])
    assert mine.adopt([tmp_path / "w1"]) == 2 and mine.rows == 3
    names: list[str] = []
    for path in mine.files():
        write_file(path, lambda rows: names.extend(r[1] for r in rows))
    assert names == ["cid", "ana", "bia"] and list((tmp_path / "w1").iterdir()) == []


def test_the_folders_a_server_takes_over(tmp_path: Path) -> None:
    from aaa.serve import _other_spools

    for name in ("w0", "w1", "w2", "wx"):
        (tmp_path / name).mkdir()
    assert _other_spools(tmp_path, 1) == [tmp_path / "w0", tmp_path / "w1", tmp_path / "w2"]
    assert _other_spools(tmp_path, 2) == [tmp_path, tmp_path / "w2"]
    assert _other_spools(tmp_path / "none", 1) == []


def test_a_file_the_disk_will_not_seal_is_counted_as_dropped(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aaa.auth_log_spool as module

    spool = AuthLogSpool(tmp_path / "spool", limit_bytes=10_000_000)
    log = writer(engine, process=StuckProcess(), spool=spool, frame=2)
    for i in range(3):
        log(row(f"user{i}"))

    def refuse(*_: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(module.os, "replace", refuse)
    log.flush()
    assert log.dropped == 3 and spool.files() == [] and spool.unsealed_rows == 0
    assert list((tmp_path / "spool").iterdir()) == []  # the unsealed file is gone, not found again at the next start
    monkeypatch.undo()
    log(row("user3"))
    log.flush()
    assert spool.rows == 1 and log.dropped == 3


class RecordingProcess:
    """Stands in for the auth log process: writes nothing, records what it was asked, and says it
    paused when told to."""

    def __init__(self, *, pause: bool = False) -> None:
        self.asked: list[tuple[str, bool]] = []
        self.pause = pause

    def write_file(self, path: Path, *, may_pause: bool = False) -> tuple[int, int, BaseException | None, bool]:
        self.asked.append((path.name, may_pause))
        if self.pause and may_pause:
            return 0, 0, None, True
        rows, _ = scan(path)
        path.unlink()
        return rows, 0, None, False


class FakeCpu:
    """The reactor thread's CPU seconds, as the test says they went."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def held_writer(engine: Engine, spool: AuthLogSpool, process: Any) -> tuple[AuthLogWriter, InlineReactor, FakeCpu]:
    reactor, cpu = InlineReactor(), FakeCpu()
    log = AuthLogWriter(reactor, InlinePool(), engine, interval=0.5, process=process, spool=spool, cpu_clock=cpu)  # type: ignore[arg-type]
    log.start()
    return log, reactor, cpu


def tick(reactor: InlineReactor, cpu: FakeCpu, *, busy: float) -> None:
    """Half a second in which the reactor thread used ``busy`` of a core, then the writer's tick."""
    cpu.seconds += 0.5 * busy
    reactor.advance(0.5)


def test_the_spool_is_held_while_the_reactor_is_busy_and_fed_when_it_is_not(engine: Engine, spool: AuthLogSpool) -> None:
    """At SCHED_IDLE the child still took the reactor's core for a scheduler tick (4 ms) now and
    then, its fair share of a core that never went idle: while the reactor is busy the files wait."""
    process = RecordingProcess()
    log, reactor, cpu = held_writer(engine, spool, process)
    log(row("ana"))
    tick(reactor, cpu, busy=0.9)
    log(row("bia"))
    tick(reactor, cpu, busy=0.6)
    assert process.asked == [] and log.held and len(spool.files()) == 2 and log.pending == 2
    tick(reactor, cpu, busy=0.2)  # the load fell: both files, oldest first, in one go
    assert [name for name, _ in process.asked] == sorted(name for name, _ in process.asked) and len(process.asked) == 2
    assert all(may_pause for _, may_pause in process.asked)
    assert not log.held and spool.files() == [] and log.written == 2 and log.pending == 0


def test_a_held_spool_is_fed_after_the_hold_bound_or_past_a_quarter_of_its_size(engine: Engine, tmp_path: Path) -> None:
    process = RecordingProcess()
    log, reactor, cpu = held_writer(engine, AuthLogSpool(tmp_path / "a", limit_bytes=10_000_000), process)
    log(row("ana"))
    ticks = int(AuthLogWriter.HOLD_SECONDS / 0.5)
    for _ in range(ticks - 1):
        tick(reactor, cpu, busy=1.0)
    assert process.asked == [] and log.held
    tick(reactor, cpu, busy=1.0)  # a load that does not fall: written at the child's own priority
    assert len(process.asked) == 1 and process.asked[0][1] is False and not log.held

    process = RecordingProcess()
    spool = AuthLogSpool(tmp_path / "b", limit_bytes=1_000)
    log, reactor, cpu = held_writer(engine, spool, process)
    tick(reactor, cpu, busy=1.0)
    for i in range(10):
        log(row(f"user{i}"))
    log._seal()
    assert spool.bytes >= spool.limit_bytes // 4 and not log.held  # ten rows fill a quarter of 1,000 bytes
    tick(reactor, cpu, busy=1.0)  # busy still, but the spool nears its bound: written without pauses
    assert [may_pause for _, may_pause in process.asked] == [False] and log.written == 10 and log.dropped == 0


def test_a_child_that_paused_holds_the_spool_until_a_tick_finds_the_reactor_idle(engine: Engine, spool: AuthLogSpool) -> None:
    process = RecordingProcess(pause=True)
    log, reactor, cpu = held_writer(engine, spool, process)
    log(row("ana"))
    tick(reactor, cpu, busy=0.0)  # fed; the child found the reactor busy meanwhile and stopped
    assert len(process.asked) == 1 and log.pauses == 1 and log.held and log.pending == 1
    log(row("bia"))
    log.flush()  # not fed again while held
    assert len(process.asked) == 1
    process.pause = False
    tick(reactor, cpu, busy=0.1)
    assert len(process.asked) == 3 and log.written == 2 and not log.held


def test_stop_feeds_a_held_spool_without_pauses(engine: Engine, spool: AuthLogSpool) -> None:
    process = RecordingProcess(pause=True)
    log, reactor, cpu = held_writer(engine, spool, process)
    log(row("ana"))
    tick(reactor, cpu, busy=1.0)
    assert log.held and process.asked == []
    log.stop()
    assert process.asked == [(process.asked[0][0], False)] and log.written == 1 and spool.files() == []


def test_a_paused_file_keeps_the_frames_not_written(tmp_path: Path) -> None:
    spool = frames_of(5, 2, tmp_path)  # frames of 2, 2 and 1 rows
    (path,) = spool.files()
    committed: list[str] = []
    answers = iter([True])
    assert write_file(path, lambda rows: committed.extend(r[1] for r in rows), batch=1, pause=lambda: next(answers)) == (0, 0, None)
    assert scan(path) == (5, 3) and committed == []  # paused before anything: the file as it was
    answers = iter([False, False, True])
    assert write_file(path, lambda rows: committed.extend(r[1] for r in rows), batch=1, pause=lambda: next(answers)) == (4, 0, None)
    assert committed == ["user0", "user1", "user2", "user3"] and scan(path) == (1, 1)
    assert write_file(path, lambda rows: committed.extend(r[1] for r in rows), pause=lambda: False) == (1, 0, None)
    assert committed[-1] == "user4" and not path.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_reactor_load_tells_a_spinning_main_thread_from_a_sleeping_one() -> None:
    import subprocess

    from aaa.apply_process import ReactorLoad

    code = "import sys, time\nend = time.monotonic() + 20\nwhile time.monotonic() < end:\n    pass\n"
    spinning = subprocess.Popen([sys.executable, "-c", code])
    sleeping = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"])
    try:
        time.sleep(0.2)
        def looks(load: ReactorLoad) -> list[bool]:
            answers = [load.busy()]  # measured over a fresh window
            for _ in range(4):
                time.sleep(0.03)  # then over the time since the last look
                answers.append(load.busy())
            return answers

        assert sum(looks(ReactorLoad(spinning.pid))) >= 4  # most looks, on a shared machine
        assert not any(looks(ReactorLoad(sleeping.pid)))
        assert not ReactorLoad(2**22 + 12345).busy()  # no such process: never busy
    finally:
        for p in (spinning, sleeping):
            p.kill()
            p.wait()
