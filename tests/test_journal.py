"""The journal's group commit with the default settings: what arrives in one reactor turn is one
batch, what arrives while a batch is being synced is the next one, written as soon as the sync is
done, and nothing is acknowledged before its batch is on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radius_harness import InlineReactor

from aaa.config import AccountingSettings
from aaa.journal import Journal, read_segment


class HeldPool:
    """A thread pool whose calls run only when the test says so (a sync still in progress)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, tuple[Any, ...]]] = []

    def callInThreadWithCallback(self, on_result: Any, f: Any, *args: Any) -> None:  # noqa: N802 (Twisted's name)
        self.calls.append((on_result, f, args))

    def finish_one(self) -> None:
        on_result, f, args = self.calls.pop(0)
        on_result(True, f(*args))


def test_default_commit_interval_is_no_wait() -> None:
    assert AccountingSettings().commit_interval_ms == 0


def test_a_batch_goes_at_the_end_of_the_turn_and_the_next_as_soon_as_it_is_on_disk(tmp_path: Path) -> None:
    reactor, pool = InlineReactor(), HeldPool()
    journal = Journal(tmp_path, reactor, pool)  # the default interval
    acknowledged: list[str] = []

    def append(sid: str) -> None:
        journal.append({"sid": sid}, acknowledged.append, (sid,))

    append("a")
    append("b")
    assert pool.calls == []  # not within the turn: what else arrives in it joins the batch
    reactor.advance(0)
    assert len(pool.calls) == 1 and acknowledged == []

    append("c")  # while a and b are being synced
    reactor.advance(0)
    assert len(pool.calls) == 1  # one sync at a time

    pool.finish_one()
    assert acknowledged == ["a", "b"]
    reactor.advance(0)  # no commit interval to wait for
    assert len(pool.calls) == 1
    pool.finish_one()
    assert acknowledged == ["a", "b", "c"] and journal.batches == 2
    assert [r["sid"] for r in read_segment(journal.current)] == ["a", "b", "c"]


def test_a_commit_interval_above_zero_still_gathers_records(tmp_path: Path) -> None:
    reactor, pool = InlineReactor(), HeldPool()
    journal = Journal(tmp_path, reactor, pool, commit_interval=0.002)
    journal.append({"sid": "a"}, lambda: None)
    reactor.advance(0.001)
    journal.append({"sid": "b"}, lambda: None)
    assert pool.calls == []
    reactor.advance(0.001)
    assert len(pool.calls) == 1
    pool.finish_one()
    assert journal.batches == 1 and [r["sid"] for r in read_segment(journal.current)] == ["a", "b"]
