"""The accounting journal: an append-only local log with group commit, so that an
Accounting-Response is sent only once its record is on disk.

Records are buffered in memory and written in batches: one ``write`` + ``fsync`` (on a thread) per
batch, after which every request in the batch is answered. While one batch is being synced the next
one fills, so throughput grows with load while a lone request waits at most ``commit_interval``.

The journal is a folder of segment files ``NNNNNNNNNN.jsonl``: the newest is being appended to; a
drainer (:mod:`aaa.acct_writer`) seals it (:meth:`Journal.rotate`), applies sealed segments to the
database and then deletes them. On start-up every segment left over (after a crash, or while the
database was down) is still there to be applied; a torn last line from a crash mid-write is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

log = Logger()

_SUFFIX = ".jsonl"


def _segment_name(number: int) -> str:
    return f"{number:010d}{_SUFFIX}"


class Journal:
    """Durable, batched appends of JSON records to the current segment."""

    def __init__(self, folder: Path, reactor: Any, threadpool: ThreadPool, *, commit_interval: float = 0.005) -> None:
        self.folder = folder
        self._reactor = reactor
        self._pool = threadpool
        self._interval = commit_interval
        folder.mkdir(parents=True, exist_ok=True)
        existing = self.segments()
        self._number = (int(existing[-1].stem) + 1) if existing else 1
        self._fd = self._open(self._number)
        self._buffer: list[bytes] = []
        self._waiters: list[Deferred[None]] = []
        self._flushing = False
        self._scheduled: Any = None
        self._rotate_requested = False
        self.appended = 0
        self.batches = 0

    def _open(self, number: int) -> int:
        return os.open(self.folder / _segment_name(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    # --- appending (reactor thread) ---------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> Deferred[None]:
        """Queue ``record``; the Deferred fires once it is on disk (fsync done)."""
        self._buffer.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        self.appended += 1
        if not self._flushing and self._scheduled is None:
            self._scheduled = self._reactor.callLater(self._interval, self._flush)
        return waiter

    def _flush(self) -> None:
        self._scheduled = None
        if self._flushing or not self._buffer:
            return
        data, waiters = b"".join(self._buffer), self._waiters
        self._buffer, self._waiters = [], []
        self._flushing = True
        fd = self._fd
        d = deferToThreadPool(self._reactor, self._pool, self._write, fd, data)
        d.addCallbacks(self._flushed, self._failed, callbackArgs=(waiters,), errbackArgs=(waiters,))

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fdatasync(fd)

    def _flushed(self, _: None, waiters: list[Deferred[None]]) -> None:
        self._flushing = False
        self.batches += 1
        self._after_batch()
        for waiter in waiters:
            waiter.callback(None)

    def _failed(self, failure: Any, waiters: list[Deferred[None]]) -> None:
        self._flushing = False
        log.failure("accounting journal write failed; {n} request(s) left unanswered", failure, n=len(waiters))
        self._after_batch()
        for waiter in waiters:
            waiter.errback(failure)

    def _after_batch(self) -> None:
        if self._rotate_requested:
            self._do_rotate()
        if self._buffer and self._scheduled is None:
            self._scheduled = self._reactor.callLater(0, self._flush)

    # --- segments -----------------------------------------------------------------------------------

    def rotate(self) -> None:
        """Seal the current segment and start a new one (between batches, never mid-write)."""
        if self._flushing:
            self._rotate_requested = True
        else:
            self._do_rotate()

    def _do_rotate(self) -> None:
        self._rotate_requested = False
        os.close(self._fd)
        self._number += 1
        self._fd = self._open(self._number)

    def segments(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{_SUFFIX}"))

    def sealed(self) -> list[Path]:
        """Segments no longer appended to, oldest first."""
        current = _segment_name(self._number)
        return [p for p in self.segments() if p.name != current]

    def pending_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments())

    def flush_now(self) -> Deferred[None]:
        """Write what is buffered now (shutdown); fires when it is on disk."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if not self._buffer and not self._flushing:
            return succeed(None)
        waiter = self._waiters[-1] if self._waiters else None
        if not self._flushing:
            self._flush()
        if waiter is None:
            return succeed(None)
        done: Deferred[None] = Deferred()
        waiter.addBoth(lambda _: done.callback(None))
        return done

    def close(self) -> None:
        os.close(self._fd)


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one segment; a torn or corrupt line (crash mid-write) is skipped and logged."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                log.warn("journal {path}: torn last line {number} skipped", path=str(path), number=number)
                break
            try:
                yield json.loads(line)
            except ValueError:
                log.warn("journal {path}: unreadable line {number} skipped", path=str(path), number=number)
