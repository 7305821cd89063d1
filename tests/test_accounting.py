"""Accounting from datagram to ``sessions``: the real server, journal (group commit), drainer and writer.

Runs on SQLite and PostgreSQL (the ``ctx`` fixture). The reactor is in memory and the thread pool
inline, so "the fsync happened" is ``reactor.advance(commit interval)`` and "the drainer ran" is
``drain()``. Counters are 64-bit (gigawords); replays and retransmissions never duplicate a session
or double-count; Accounting-On, a new MikroTik reboot counter and missed interims close sessions.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from radius_harness import Harness, InlinePool, InlineReactor, accounting
from sqlalchemy import select

from aaa import acct_writer
from aaa.background import AccountingDrainer
from aaa.cache import Cache
from aaa.context import Context
from aaa.db.models import AcctSession
from aaa.demo import load_demo
from aaa.journal import Journal, read_segment
from aaa.radius.codec import Code
from aaa.services import nas

GIGAWORD = 1 << 32
COMMIT = 0.005
OTHER_NAS = ("127.0.0.2", 40000)


class Accounting:
    """The server's accounting path on an in-memory reactor, writing to the test database."""

    def __init__(self, ctx: Context, folder: Path) -> None:
        self.ctx = ctx
        self.reactor = InlineReactor()
        self.pool = InlinePool()
        self.journal = Journal(folder, self.reactor, self.pool, commit_interval=COMMIT)
        cache = Cache(ctx.engine, ctx.vault)
        cache.load()
        self.h = Harness(cache, ctx.pm, journal=self.journal, reactor=self.reactor)
        self.results: list[acct_writer.ApplyResult] = []
        self.drainer = AccountingDrainer(
            self.reactor, self.pool, self.journal, ctx.engine, self.results.append
        )

    def acknowledged(self, data: bytes, source: Any = ("127.0.0.1", 40000)) -> bytes:
        before = len(self.h.transport.sent)
        self.h.send_acct(data, source)
        self.reactor.advance(COMMIT)
        (reply,) = [d for d, _ in self.h.transport.sent[before:]]
        return reply

    def drain(self) -> None:
        d = self.drainer.drain()
        failures: list[Any] = []
        d.addErrback(failures.append)
        assert not failures, failures

    def sessions(self) -> dict[str, AcctSession]:
        with self.ctx.sessions() as s:
            return {row.acct_session_id: row for row in s.scalars(select(AcctSession))}


@pytest.fixture
def acct(ctx: Context, tmp_path: Path) -> Accounting:
    load_demo(ctx, count=0)
    nas.add_nas(ctx, name="second-router", address=OTHER_NAS[0], secret="testing123", actor="admin:test")
    return Accounting(ctx, tmp_path / "journal")


def test_response_is_sent_only_after_the_journal_commit(acct: Accounting) -> None:
    assert acct.h.send_acct(accounting("Start", "81a00001", "joao")) == []
    assert acct.journal.appended == 1
    acct.reactor.advance(COMMIT)
    assert len(acct.h.transport.sent) == 1
    (segment,) = acct.journal.segments()
    assert [r["sid"] for r in read_segment(segment)] == ["81a00001"]


def test_start_interim_stop_with_gigawords_land_with_64_bit_totals(acct: Accounting) -> None:
    acct.acknowledged(accounting("Start", "81a00001", "joao", Framed_IP_Address="100.64.10.20"))
    acct.acknowledged(accounting("Interim-Update", "81a00001", "joao", Acct_Session_Time=300,
                                 Acct_Input_Octets=5, Acct_Input_Gigawords=1, Acct_Output_Octets=7, Acct_Output_Gigawords=2))  # fmt: skip
    acct.drain()
    row = acct.sessions()["81a00001"]
    assert (row.input_octets, row.output_octets, row.stopped_at) == (GIGAWORD + 5, 2 * GIGAWORD + 7, None)
    acct.acknowledged(accounting("Stop", "81a00001", "joao", Acct_Session_Time=600, Acct_Terminate_Cause="User-Request",
                                 Acct_Input_Octets=100, Acct_Input_Gigawords=3, Acct_Output_Octets=9, Acct_Output_Gigawords=5))  # fmt: skip
    acct.drain()
    row = acct.sessions()["81a00001"]
    assert (row.input_octets, row.output_octets) == (3 * GIGAWORD + 100, 5 * GIGAWORD + 9)
    assert row.session_time == 600 and row.terminate_cause == "User-Request" and row.stopped_at is not None
    assert row.framed_ip == "100.64.10.20" and row.login == "joao" and row.subscriber_id is not None


def test_replaying_the_journal_never_duplicates_a_session_or_double_counts(
    acct: Accounting, tmp_path: Path
) -> None:
    """A crash between the database commit and deleting the segment replays it at the next start."""
    acct.acknowledged(accounting("Start", "81a00001", "joao"))
    acct.acknowledged(
        accounting("Interim-Update", "81a00001", "joao", Acct_Input_Octets=1000, Acct_Session_Time=300)
    )
    acct.acknowledged(accounting("Stop", "81a00001", "joao", Acct_Input_Octets=2000, Acct_Session_Time=400))
    acct.journal.rotate()
    copies = [shutil.copy(p, tmp_path / p.name) for p in acct.journal.sealed()]
    acct.drain()
    for _ in range(2):
        for copy in copies:
            acct_writer.apply(acct.ctx.engine, read_segment(Path(copy)))
    (row,) = acct.sessions().values()
    assert (row.input_octets, row.session_time) == (2000, 400) and row.stopped_at is not None


def test_retransmission_is_answered_from_the_duplicate_cache(acct: Accounting) -> None:
    request = accounting("Start", "81a00001", "joao")
    first, again = acct.acknowledged(request), acct.acknowledged(request)
    assert first == again
    assert acct.journal.appended == 1 and acct.h.counters.duplicates == 1


def test_retransmission_after_the_window_does_not_duplicate_or_double_count(acct: Accounting) -> None:
    acct.acknowledged(accounting("Start", "81a00001", "joao"))
    interim = accounting("Interim-Update", "81a00001", "joao", Acct_Input_Octets=1000, Acct_Session_Time=300)
    acct.acknowledged(interim)
    acct.reactor.advance(acct.h.server.duplicate_seconds + 1)
    acct.h.server.purge_duplicates()
    acct.acknowledged(interim)
    acct.acknowledged(accounting("Start", "81a00001", "joao", identifier=9))
    assert acct.journal.appended == 4
    acct.drain()
    (row,) = acct.sessions().values()
    assert (row.input_octets, row.session_time, row.stopped_at) == (1000, 300, None)


def test_an_older_interim_after_a_newer_one_never_lowers_counters(acct: Accounting) -> None:
    acct.acknowledged(
        accounting("Interim-Update", "81a00001", "joao", Acct_Input_Octets=5000, Acct_Session_Time=600)
    )
    acct.acknowledged(
        accounting("Interim-Update", "81a00001", "joao", Acct_Input_Octets=3000, Acct_Session_Time=300)
    )
    acct.drain()
    (row,) = acct.sessions().values()
    assert (row.input_octets, row.session_time) == (5000, 600)


def test_stop_without_start_creates_a_closed_session(acct: Accounting) -> None:
    acct.acknowledged(accounting("Stop", "81a00007", "joao", Acct_Input_Octets=77, Acct_Session_Time=70))
    acct.drain()
    row = acct.sessions()["81a00007"]
    assert row.stopped_at is not None and row.input_octets == 77
    assert row.started_at == row.stopped_at - dt.timedelta(seconds=70)


def test_nothing_reopens_a_stopped_session(acct: Accounting) -> None:
    acct.acknowledged(accounting("Stop", "81a00001", "joao", Acct_Input_Octets=10, Acct_Session_Time=10))
    acct.drain()
    acct.acknowledged(
        accounting(
            "Interim-Update", "81a00001", "joao", Acct_Input_Octets=99, Acct_Session_Time=99, identifier=8
        )
    )
    acct.acknowledged(accounting("Start", "81a00001", "joao", identifier=9))
    acct.drain()
    (row,) = acct.sessions().values()
    assert row.stopped_at is not None and row.input_octets == 10


def test_accounting_on_closes_the_open_sessions_of_that_nas_only(acct: Accounting) -> None:
    acct.acknowledged(accounting("Start", "81a00001", "joao"))
    acct.acknowledged(accounting("Start", "81a00002", "maria"))
    acct.acknowledged(accounting("Start", "81a00003", "user00001"), OTHER_NAS)
    acct.drain()
    assert acct.h.online.total() == 3
    on = acct.acknowledged(accounting("Accounting-On", "", "", identifier=20))
    assert on[0] == Code.ACCOUNTING_RESPONSE
    acct.drain()
    sessions = acct.sessions()
    assert {sid: (s.terminate_cause, s.stopped_at is not None) for sid, s in sessions.items()} == {
        "81a00001": ("NAS-Reboot", True),
        "81a00002": ("NAS-Reboot", True),
        "81a00003": (None, False),
    }
    assert acct.h.online.total() == 1


def test_start_with_a_new_reboot_counter_closes_the_old_sessions(acct: Accounting) -> None:
    acct.acknowledged(accounting("Start", "81a00001", "joao"))
    acct.acknowledged(accounting("Start", "81a00002", "maria"))
    acct.drain()
    acct.acknowledged(accounting("Start", "81b00001", "joao"))
    acct.drain()
    causes = {sid: s.terminate_cause for sid, s in acct.sessions().items()}
    assert causes == {"81a00001": "NAS-Reboot", "81a00002": "NAS-Reboot", "81b00001": None}
    assert {s["acct_session_id"] for s in acct.results[-1].stopped} == {"81a00001", "81a00002"}


def test_new_reboot_counter_in_the_same_batch_closes_the_old_sessions(acct: Accounting) -> None:
    """After a database outage the journal replays interims, the reboot and new Starts in one batch."""
    acct.acknowledged(accounting("Start", "81a00001", "joao"))
    acct.drain()
    acct.acknowledged(
        accounting("Interim-Update", "81a00001", "joao", Acct_Input_Octets=10, Acct_Session_Time=300)
    )
    acct.acknowledged(accounting("Start", "81a00002", "maria"))
    acct.acknowledged(accounting("Start", "81b00001", "joao"))
    acct.drain()
    causes = {sid: (s.terminate_cause, s.stopped_at is not None) for sid, s in acct.sessions().items()}
    assert causes == {
        "81a00001": ("NAS-Reboot", True),
        "81a00002": ("NAS-Reboot", True),
        "81b00001": (None, False),
    }


def _record(kind: str, sid: str, at: dt.datetime, interim: int | None, nas_id: int) -> dict[str, Any]:
    return {"t": kind, "nas": nas_id, "sid": sid, "login": "joao", "at": at.timestamp(), "interim": interim}


def test_close_stale_closes_sessions_that_missed_their_interims(acct: Accounting) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    nas_id = acct.h.cache.nas_for("127.0.0.1").id
    minutes = lambda m: now - dt.timedelta(minutes=m)  # noqa: E731
    acct_writer.apply(acct.ctx.engine, [
        _record("start", "fresh", minutes(10), 300, nas_id),      # 2 interims missed of 300 s: open
        _record("start", "stale", minutes(25), 300, nas_id),      # 4 missed: closed
        _record("start", "fast", minutes(5), 60, nas_id),         # 60 s interim, 5 missed: closed
        _record("start", "default", minutes(19), None, nas_id),   # default 300 s, 3.8 missed: open
        _record("stop", "stopped", minutes(60), 300, nas_id),     # already closed: left alone
    ])  # fmt: skip
    closed = acct_writer.close_stale(acct.ctx.engine, now, missed=3, default_interval=300)
    assert sorted(s["acct_session_id"] for s in closed) == ["fast", "stale"]
    rows = acct.sessions()
    assert rows["stale"].terminate_cause == "Lost-Service" and rows["fresh"].stopped_at is None
    assert rows["default"].stopped_at is None and rows["stopped"].terminate_cause == "Unknown"
