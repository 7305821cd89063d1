"""The accounting writer's rules, record by record, on SQLite and PostgreSQL (the ``ctx`` fixture).

Records are written the way the server journals them and applied with :func:`aaa.acct_writer.apply`
(one transaction) or through the drainer. The property test applies the records of a few NAS
lifetimes (sessions, interims, stops, reboots) in any order, split into any batches, with
duplicates, and checks the result against what the NAS said happened.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from aaa import acct_store, acct_writer
from aaa.background import AccountingDrainer, apply_segments
from aaa.context import Context
from aaa.db.models import AcctSession, NasReboot
from aaa.journal import DeadLetterFile, Journal
from aaa.services import nas

T0 = 1_780_000_000
BIG = (1 << 63) - 1


@pytest.fixture
def routers(ctx: Context) -> tuple[int, int]:
    """Two NAS ids."""
    first = nas.add_nas(ctx, name="r1", address="127.0.0.1", secret="testing123", actor="admin:test")
    second = nas.add_nas(ctx, name="r2", address="127.0.0.2", secret="testing123", actor="admin:test")
    return int(first["id"]), int(second["id"])


def rec(kind: str, nas_id: int, sid: str, at: float, *, n: int = 0, login: str = "joao", **extra: Any) -> dict[str, Any]:
    """A journal record; ``n`` sets cumulative counters (n x 10 s, n x 1000 octets)."""
    r: dict[str, Any] = {"t": kind, "nas": nas_id, "sid": sid, "login": login, "at": at}
    if kind in ("interim", "stop"):
        r.update(time=10 * n, **{"in": 1000 * n}, out=2000 * n, pin=n, pout=2 * n)
    if kind == "stop":
        r["cause"] = "User-Request"
    r.update(extra)
    return r


def reboot(nas_id: int, at: float, kind: str = "on") -> dict[str, Any]:
    return {"t": kind, "nas": nas_id, "at": at}


def rows(ctx: Context, prefix: str = "") -> dict[str, AcctSession]:
    with ctx.sessions() as s:
        found = s.scalars(select(AcctSession).where(AcctSession.acct_session_id.like(prefix + "%")))
        return {r.acct_session_id: r for r in found}


def ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def state(row: AcctSession) -> tuple[Any, ...]:
    return (row.started_at, row.updated_at, row.stopped_at, row.terminate_cause, row.session_time, row.input_octets)


# --- NAS reboots ------------------------------------------------------------------------------------


def test_accounting_on_closes_only_sessions_that_started_before_it(ctx: Context, routers: tuple[int, int]) -> None:
    """The reconnect storm: Starts after the Accounting-On, in the same batch, stay open."""
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("start", r1, "old-1", T0), rec("start", r1, "old-2", T0 + 1)])
    result = acct_writer.apply(ctx.engine, [rec("start", r1, "new-2", T0 + 101), reboot(r1, T0 + 100), rec("start", r1, "new-1", T0 + 100.5)])
    got = rows(ctx)
    assert {sid: r.terminate_cause for sid, r in got.items()} == {"old-1": "NAS-Reboot", "old-2": "NAS-Reboot", "new-1": None, "new-2": None}
    assert got["old-1"].stopped_at == ts(T0 + 100)
    assert sorted(s["acct_session_id"] for s in result.stopped) == ["old-1", "old-2"]


def test_accounting_on_applied_after_the_starts_that_followed_it_leaves_them_open(ctx: Context, routers: tuple[int, int]) -> None:
    """Another worker's journal may be applied first: the Starts land, then the Accounting-On."""
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("start", r1, "old", T0)])
    acct_writer.apply(ctx.engine, [rec("start", r1, "new", T0 + 101)])
    acct_writer.apply(ctx.engine, [reboot(r1, T0 + 100, "off")])
    got = rows(ctx)
    assert (got["old"].terminate_cause, got["new"].stopped_at) == ("NAS-Reboot", None)


def test_a_start_older_than_the_last_reboot_applied_late_is_created_closed(ctx: Context, routers: tuple[int, int]) -> None:
    r1, r2 = routers
    acct_writer.apply(ctx.engine, [reboot(r1, T0 + 100)])
    result = acct_writer.apply(ctx.engine, [
        rec("start", r1, "late", T0 + 50), rec("interim", r1, "late-interim", T0 + 90, n=3),
        rec("start", r1, "after", T0 + 150), rec("start", r2, "other-nas", T0 + 50),
    ])  # fmt: skip
    got = rows(ctx)
    assert (got["late"].stopped_at, got["late"].terminate_cause) == (ts(T0 + 100), "NAS-Reboot")
    assert (got["late-interim"].stopped_at, got["late-interim"].input_octets) == (ts(T0 + 100), 3000)
    assert got["after"].stopped_at is None and got["other-nas"].stopped_at is None
    assert {s["acct_session_id"] for s in result.stopped} == {"late", "late-interim"}  # off the online index too
    with ctx.sessions() as s:
        assert s.scalars(select(NasReboot.rebooted_at)).all() == [ts(T0 + 100)]


def test_a_session_is_closed_at_the_first_reboot_after_its_start_whatever_the_order(ctx: Context, routers: tuple[int, int]) -> None:
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("start", r1, "s", T0)])
    acct_writer.apply(ctx.engine, [reboot(r1, T0 + 200)])
    acct_writer.apply(ctx.engine, [reboot(r1, T0 + 100)])
    assert rows(ctx)["s"].stopped_at == ts(T0 + 100)


def test_the_nas_stop_replaces_a_close_inferred_from_a_reboot(ctx: Context, routers: tuple[int, int]) -> None:
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("start", r1, "s", T0), reboot(r1, T0 + 100)])
    acct_writer.apply(ctx.engine, [rec("stop", r1, "s", T0 + 60, n=6)])
    row = rows(ctx)["s"]
    assert (row.stopped_at, row.terminate_cause, row.input_octets) == (ts(T0 + 60), "User-Request", 6000)


def test_a_record_later_than_the_stop_never_reopens_or_changes_it(ctx: Context, routers: tuple[int, int]) -> None:
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("stop", r1, "s", T0 + 60, n=6)])
    acct_writer.apply(ctx.engine, [rec("interim", r1, "s", T0 + 70, n=9), rec("start", r1, "s", T0 + 80)])
    row = rows(ctx)["s"]
    assert (row.stopped_at, row.input_octets, row.updated_at) == (ts(T0 + 60), 6000, ts(T0 + 60))


def test_mikrotik_reboot_counter_closes_only_sessions_started_before_the_new_counter(ctx: Context, routers: tuple[int, int]) -> None:
    """A late Start of the old boot, applied after the new boot's Starts, is created closed and
    closes nothing of the new boot."""
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("start", r1, "81a00001", T0)])
    acct_writer.apply(ctx.engine, [rec("start", r1, "81b00001", T0 + 100), rec("start", r1, "81b00002", T0 + 101)])
    acct_writer.apply(ctx.engine, [rec("start", r1, "81a00002", T0 + 10)])  # old boot, late
    got = {sid: (r.stopped_at, r.terminate_cause) for sid, r in rows(ctx, "81").items()}
    assert got == {
        "81a00001": (ts(T0 + 100), "NAS-Reboot"),
        "81a00002": (ts(T0 + 100), "NAS-Reboot"),
        "81b00001": (None, None),
        "81b00002": (None, None),
    }


def test_mikrotik_new_counter_in_one_batch_with_older_sessions_of_the_old_one(ctx: Context, routers: tuple[int, int]) -> None:
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("start", r1, "81b00001", T0 + 100), rec("start", r1, "81a00001", T0), rec("start", r1, "82a00001", T0)])
    got = {sid: r.terminate_cause for sid, r in rows(ctx, "8").items()}
    assert got == {"81a00001": "NAS-Reboot", "81b00001": None, "82a00001": None}  # another service keeps its sessions


# --- order and replays (property) -------------------------------------------------------------------


@dataclass
class Life:
    """One session as the NAS lived it: records every 10 s from ``start``, within its NAS's boot."""

    nas: int
    sid: str
    start: int
    interims: int
    stopped: bool
    has_start: bool
    next_reboot: int | None

    def records(self) -> list[dict[str, Any]]:
        out = [rec("start", self.nas, self.sid, self.start)] if self.has_start else []
        out += [rec("interim", self.nas, self.sid, self.start + 10 * n, n=n) for n in range(1, self.interims + 1)]
        if self.stopped:
            out.append(rec("stop", self.nas, self.sid, self.start + 10 * (self.interims + 1), n=self.interims + 1))
        return out

    def expected(self) -> tuple[Any, ...]:
        last = self.interims + 1 if self.stopped else self.interims
        if self.stopped:
            stopped, cause = ts(self.start + 10 * last), "User-Request"
        elif self.next_reboot is not None:
            stopped, cause = ts(self.next_reboot), "NAS-Reboot"
        else:
            stopped, cause = None, None
        return (ts(self.start), ts(self.start + 10 * last), stopped, cause, 10 * last, 1000 * last)


_examples = itertools.count()

session_specs = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 800), st.integers(0, 3), st.booleans(), st.booleans()),
    min_size=1, max_size=6,
)  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    reboots=st.tuples(st.lists(st.integers(1, 3), max_size=2, unique=True), st.lists(st.integers(1, 3), max_size=2, unique=True)),
    specs=session_specs,
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    duplicates=st.lists(st.integers(0, 40), max_size=6),
)
def test_any_order_any_batches_and_replays_give_what_the_nas_said(
    ctx: Context, routers: tuple[int, int], reboots: Any, specs: Any, order: Any, cuts: list[int], duplicates: list[int]
) -> None:
    example = next(_examples)
    base = T0 + example * 100_000  # later examples never reach back into earlier ones
    prefix = f"p{example}-"
    lives: list[Life] = []
    records: list[dict[str, Any]] = []
    for index, nas_id in enumerate(routers):
        times = [base + 1000 * k for k in sorted(reboots[index])]
        records += [reboot(nas_id, t) for t in times]
        epochs = [base, *times]
        for n, (which, epoch, offset, interims, stopped, has_start) in enumerate(specs):
            if which != index:
                continue
            epoch = min(epoch, len(epochs) - 1)
            later = times[epoch] if epoch < len(times) else None
            life = Life(nas_id, f"{prefix}{index}-{n}", epochs[epoch] + 1 + offset, interims, stopped,
                        has_start or not (interims or stopped), later)  # fmt: skip
            lives.append(life)
            records += life.records()
    records += [records[i % len(records)] for i in duplicates]
    order.shuffle(records)
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        acct_writer.apply(ctx.engine, records[lo:hi])
    got = rows(ctx, prefix)
    assert {sid: state(r) for sid, r in got.items()} == {life.sid: life.expected() for life in lives}
    acct_writer.apply(ctx.engine, list(reversed(records)))  # a replay of everything changes nothing
    assert {sid: state(r) for sid, r in rows(ctx, prefix).items()} == {life.sid: life.expected() for life in lives}


# --- values fitted to columns ---------------------------------------------------------------------


def test_over_long_values_are_cut_to_their_columns_and_counted(ctx: Context, routers: tuple[int, int]) -> None:
    r1, _ = routers
    sid = "x" * 100
    records = [
        rec("start", r1, sid, T0, login="l" * 300, csid="c" * 200, called="d" * 70, port="p" * 65, ip="1" * 50,
            ip6="6" * 80, uid="u" * 90, **{"class": "k" * 200}),  # fmt: skip
        rec("interim", r1, sid, T0 + 10, n=1, time=(1 << 32) + 5, **{"in": 1 << 64}),
        rec("stop", r1, "nul\x00id", T0 + 20, n=2, cause="C" * 40, csid="ab\x00cd"),
    ]
    result = acct_writer.apply(ctx.engine, records)
    assert result.fitted == 15  # sid twice (two records), 8 strings of the Start, 2 counters, NUL x2, cause
    again = acct_writer.apply(ctx.engine, records)  # the same key after cutting: no second session
    assert again.started == [] and again.fitted == 5  # the records' sids (x2), NUL, the counters
    got = rows(ctx)
    assert set(got) == {"x" * 64, "nulid"}
    row = got["x" * 64]
    assert (len(row.login), len(row.calling_station_id or ""), len(row.called_station_id or ""), len(row.class_ or "")) == (128, 64, 64, 128)
    assert (row.session_time, row.input_octets) == ((1 << 31) - 1, BIG)
    assert got["nulid"].terminate_cause == "C" * 32 and got["nulid"].calling_station_id == "abcd"


# --- records the database refuses -------------------------------------------------------------------


def write_segment(folder: Path, number: int, records: list[Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{number:010d}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_record_the_database_refuses_is_set_aside_and_the_rest_applied(ctx: Context, routers: tuple[int, int], tmp_path: Path) -> None:
    r1, _ = routers
    good = [rec("start", r1, f"ok-{i}", T0 + i) for i in range(40)]
    poisoned = [*good[:13], rec("start", 9999, "no-such-nas", T0), *good[13:30], {"t": "stop", "nas": r1, "at": T0}, *good[30:]]
    segments = [write_segment(tmp_path / "journal", 1, poisoned[:20]), write_segment(tmp_path / "journal", 2, poisoned[20:])]
    dead = DeadLetterFile(tmp_path / "var" / "dead.jsonl")
    result, error = apply_segments(ctx.engine, segments, batch_size=25, dead_letters=dead)
    assert error is None
    assert (result.applied, result.rejected) == (42, 2)
    assert set(rows(ctx, "ok-")) == {f"ok-{i}" for i in range(40)}
    kept = [json.loads(line) for line in dead.path.read_text().splitlines()]
    assert sorted(r.get("sid", "-") for r in kept) == ["-", "no-such-nas"]
    assert all(r["_error"] and "9999" not in r["_error"] for r in kept)  # the reason, not the values
    assert not any(p.exists() for p in segments)


def test_the_dead_letter_file_is_a_journal_segment_again(ctx: Context, routers: tuple[int, int], tmp_path: Path) -> None:
    """Once the cause is fixed, the file goes back into a journal folder and its records are applied."""
    r1, _ = routers
    dead = DeadLetterFile(tmp_path / "dead.jsonl")
    dead.write([rec("start", r1, "again", T0)], ValueError("was refused"))
    (tmp_path / "journal").mkdir()
    dead.path.rename(tmp_path / "journal" / "0000000000.jsonl")
    result, error = apply_segments(ctx.engine, sorted((tmp_path / "journal").glob("*.jsonl")))
    assert error is None and result.applied == 1 and "again" in rows(ctx)


def test_a_locked_database_is_not_the_records_fault(ctx: Context, routers: tuple[int, int], tmp_path: Path) -> None:
    """Nothing is set aside while the database cannot be written; the segment stays for the next try."""
    if ctx.engine.dialect.name != "sqlite":
        pytest.skip("a lock on PostgreSQL makes the writer wait rather than fail")
    import sqlite3

    r1, _ = routers
    segment = write_segment(tmp_path / "journal", 1, [rec("start", r1, "s", T0)])
    lock = sqlite3.connect(ctx.engine.url.database or "", isolation_level=None, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    engine = acct_store_engine_with_short_timeout(ctx)
    try:
        dead = DeadLetterFile(tmp_path / "dead.jsonl")
        result, error = apply_segments(engine, [segment], dead_letters=dead)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        engine.dispose()
    assert isinstance(error, sa_exc.OperationalError) and acct_writer.is_transient(error)
    assert result.rejected == 0 and not dead.path.exists() and segment.exists()


def acct_store_engine_with_short_timeout(ctx: Context) -> Any:
    from sqlalchemy import event

    from aaa.db.engine import make_engine

    engine = make_engine(ctx.engine.url.render_as_string(hide_password=False))

    @event.listens_for(engine, "connect")
    def short(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    return engine


def test_a_session_inserted_by_another_process_meanwhile_is_merged_not_lost(
    ctx: Context, routers: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the insert meets the other process's row and this batch's Stop is merged into it.
    SQLite: the write lock is held from the read, so this cannot happen; if it did, the batch waits."""
    r1, _ = routers
    acct_writer.apply(ctx.engine, [rec("interim", r1, "s", T0 + 10, n=1)])
    target = acct_store.SqliteStore if ctx.engine.dialect.name == "sqlite" else acct_store.PostgresStore
    real_load = target.load
    calls = []

    def load_missing_it_once(self: Any, nas_id: int, sids: Any) -> Any:
        calls.append(list(sids))
        return [] if len(calls) == 1 else real_load(self, nas_id, sids)

    monkeypatch.setattr(target, "load", load_missing_it_once)
    if ctx.engine.dialect.name == "sqlite":
        with pytest.raises(acct_store.ConcurrentWrite) as raised:
            acct_writer.apply(ctx.engine, [rec("stop", r1, "s", T0 + 20, n=2)])
        assert acct_writer.is_transient(raised.value)
        return
    result = acct_writer.apply(ctx.engine, [rec("stop", r1, "s", T0 + 20, n=2)])
    row = rows(ctx)["s"]
    assert (row.stopped_at, row.input_octets, row.started_at) == (ts(T0 + 20), 2000, ts(T0))
    assert result.started == [] and [s["acct_session_id"] for s in result.stopped] == ["s"]


# --- the drainer --------------------------------------------------------------------------------------


def test_the_drainer_applies_many_segments_in_bounded_batches(
    ctx: Context, routers: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r1, _ = routers
    folder = tmp_path / "journal"
    for number in range(1, 6):
        write_segment(folder, number, [rec("start", r1, f"s{number}-{i}", T0 + i) for i in range(30)])
    journal = Journal(folder, None, None)
    transactions = []
    real = acct_writer.apply

    def counting(engine: Any, records: Any) -> Any:
        transactions.append(len(records))
        return real(engine, records)

    monkeypatch.setattr(acct_writer, "apply", counting)
    drainer = AccountingDrainer(None, None, journal, ctx.engine, lambda _: None, batch_size=70)
    assert drainer.drain_blocking().applied == 150
    journal.close()
    assert transactions == [70, 70, 10]
    assert len(rows(ctx, "s")) == 150 and journal.sealed() == []
