"""The online-sessions index: reboots by start time, and the resync that replays this process's
changes not yet in the database over what the database says."""

from __future__ import annotations

import pytest

from aaa import online
from aaa.online import OnlineIndex

T0 = 1_780_000_000.0


def test_accounting_on_removes_only_sessions_of_that_nas_that_started_before_it() -> None:
    index = OnlineIndex()
    index.started("joao", 1, "old", T0)
    index.started("joao", 1, "new", T0 + 20)
    index.started("maria", 2, "other-nas", T0)
    index.nas_rebooted(1, T0 + 10)
    assert (index.count("joao"), index.count("maria"), index.total()) == (1, 1, 2)


def test_a_session_started_with_no_time_is_gone_at_any_reboot_of_its_nas() -> None:
    index = OnlineIndex()
    index.started("joao", 1, "81a00001")
    index.nas_rebooted(1, T0)
    assert index.count("joao") == 0


def test_resync_takes_the_database_plus_local_changes_not_yet_applied() -> None:
    index = OnlineIndex()
    index.track()
    index.started("joao", 1, "applied", T0)
    index.applied(index.seq)  # the drainer committed it
    index.started("maria", 1, "in-the-journal", T0 + 1)
    index.stopped("joao", 1, "applied")  # its Stop is still in the journal too
    since = index.begin_resync()
    assert since == 1
    from_database = [("joao", 1, "applied", T0), ("ana", 2, "another-worker", T0)]
    index.replace(OnlineIndex.resync_rows(from_database), since)
    assert (index.count("joao"), index.count("maria"), index.count("ana"), index.resyncs) == (0, 1, 1, 1)


def test_a_resync_forgets_what_another_process_closed() -> None:
    index = OnlineIndex()
    index.track()
    index.started("joao", 1, "s", T0)
    index.applied(index.seq)
    since = index.begin_resync()
    assert since is not None
    index.replace(OnlineIndex.resync_rows([]), since)  # closed by another worker's Accounting-On, say
    assert index.count("joao") == 0


def test_changes_a_running_resync_needs_are_kept_until_it_ends() -> None:
    index = OnlineIndex()
    index.track()
    index.started("joao", 1, "s", T0)
    since = index.begin_resync()  # reads the database: the Start is not there yet
    index.applied(index.seq)  # meanwhile the drainer commits it (after the read)
    assert since is not None
    index.replace(OnlineIndex.resync_rows([]), since)
    assert index.count("joao") == 1
    index.applied(index.seq)
    assert index.begin_resync() == index.seq and len(index._log or ()) == 0


def test_past_the_log_bound_resyncs_wait_until_the_journal_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(online, "LOG_LIMIT", 3)
    index = OnlineIndex()
    index.track()
    for n in range(5):
        index.started("joao", 1, f"s{n}", T0 + n)
    assert index.begin_resync() is None
    index.applied(3)
    assert index.begin_resync() is None
    index.applied(index.seq)
    assert index.begin_resync() == index.seq


def test_without_tracking_there_is_no_resync_and_no_log() -> None:
    index = OnlineIndex()
    index.started("joao", 1, "s", T0)
    assert index.begin_resync() is None and index._log is None


def test_keys_are_cut_like_the_columns_so_the_drainer_can_remove_them() -> None:
    index = OnlineIndex()
    index.started("joao", 1, "x" * 100, T0)
    index.stopped("joao", 1, "x" * 64)  # as the drainer reports it, from the row
    assert index.count("joao") == 0
