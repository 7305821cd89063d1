"""The accounting journal: an append-only local log with group commit, so that an
Accounting-Response is sent only once its record is on disk.

Records are buffered in memory and written in batches: one ``write`` + ``fsync`` (on a thread) per
batch, after which every request in the batch is answered. While one batch is being synced the next
one fills, and it is written as soon as that sync is done, so batches grow with load and with the
disk's sync time by themselves. A record arriving while no batch is being synced waits for the end
of the reactor's turn (what arrived in the same turn goes into the same batch), plus
``commit_interval`` when that is above 0. The default is 0: with a NAS keeping 32 requests
outstanding, any fixed wait, not the CPU, sets the rate (1 ms halved the accounting rate on a disk
that syncs in 0.15 ms, 5 ms did worse; see docs/performance.md).

The journal is a folder of segment files ``NNNNNNNNNN.jsonl``: the newest is being appended to; a
drainer (:mod:`aaa.acct_writer`) seals it (:meth:`Journal.rotate`), applies sealed segments to the
database and then deletes them. On start-up every segment left over (after a crash, or while the
database was down) is still there to be applied; a torn last line from a crash mid-write is skipped.
With ``aaa serve --workers N`` each worker has its own folder ``wN`` under the configured one
(:func:`journal_folders` lists them all, for the replay before the workers start).

Records the database refuses for good are kept in a :class:`DeadLetterFile`, one record per line in
the journal's own format (plus an ``_error`` key), so the file can be put back in a journal folder
as a segment once the cause is fixed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

log = Logger()

_SUFFIX = ".jsonl"
_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per record (json.dumps)
Waiter = Any
"""A Deferred, or ``(callback, args, errback, errback args)``: what to call once a record is on disk."""
_WORKER_FOLDER = re.compile(r"w[0-9]+")


def _segment_name(number: int) -> str:
    return f"{number:010d}{_SUFFIX}"


class Journal:
    """Durable, batched appends of JSON records to the current segment."""

    def __init__(self, folder: Path, reactor: Any, threadpool: ThreadPool, *, commit_interval: float = 0.0) -> None:
        self.folder = folder
        self._reactor = reactor
        self._pool = threadpool
        self._interval = commit_interval
        folder.mkdir(parents=True, exist_ok=True)
        existing = self.segments()
        self._number = (int(existing[-1].stem) + 1) if existing else 1
        self._fd = self._open(self._number)
        self._buffer: list[bytes] = []
        self._waiters: list[Waiter] = []
        self._drained: list[Deferred[None]] = []  # flush_now() callers
        self._flushing = False
        self._scheduled: Any = None
        self._rotate_requested = False
        self.on_seal: Callable[[int], None] | None = None
        """Called on the reactor with a segment's number once it is sealed (nothing more goes into it)."""
        self.appended = 0
        self.batches = 0

    def _open(self, number: int) -> int:
        return os.open(self.folder / _segment_name(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    # --- appending (reactor thread) ---------------------------------------------------------------

    def append(
        self, record: dict[str, Any], then: Callable[..., Any] | None = None, args: tuple[Any, ...] = (),
        failed: Callable[..., Any] | None = None, failed_args: tuple[Any, ...] = (),
    ) -> Deferred[None] | None:  # fmt: skip
        """Queue ``record``. Once it is on disk (fsync done) the returned Deferred fires, or, when
        ``then`` is given, ``then(*args)`` is called (no Deferred: the accounting path's way, a few
        microseconds cheaper per request); if the write fails, ``failed(failure, *failed_args)``."""
        self._buffer.append(_encode(record).encode() + b"\n")
        waiter: Waiter
        if then is None:
            waiter = Deferred()
        else:
            waiter = (then, args, failed, failed_args)
        self._waiters.append(waiter)
        self.appended += 1
        if not self._flushing and self._scheduled is None:
            self._scheduled = self._reactor.callLater(self._interval, self._flush)
        return waiter if then is None else None

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

    def _flushed(self, _: None, waiters: list[Waiter]) -> None:
        self._flushing = False
        self.batches += 1
        self._after_batch()
        for waiter in waiters:
            if type(waiter) is tuple:
                try:
                    waiter[0](*waiter[1])
                except Exception:
                    log.failure("accounting: acknowledging a durable record failed")
            else:
                waiter.callback(None)

    def _failed(self, failure: Any, waiters: list[Waiter]) -> None:
        self._flushing = False
        log.failure("accounting journal write failed; {n} request(s) left unanswered", failure, n=len(waiters))
        self._after_batch()
        for waiter in waiters:
            if type(waiter) is tuple:
                if waiter[2] is not None:
                    waiter[2](failure, *waiter[3])
            else:
                waiter.errback(failure)

    def _after_batch(self) -> None:
        if self._rotate_requested:
            self._do_rotate()
        if self._buffer:
            if self._drained:  # shutting down: no waiting for the commit interval
                self._flush()
            elif self._scheduled is None:
                self._scheduled = self._reactor.callLater(0, self._flush)
        elif self._drained:
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(None)

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
        if self.on_seal is not None:
            self.on_seal(self._number - 1)

    def segments(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{_SUFFIX}"))

    @property
    def current(self) -> Path:
        """The segment being appended to."""
        return self.folder / _segment_name(self._number)

    def sealed(self) -> list[Path]:
        """Segments no longer appended to, oldest first."""
        current = _segment_name(self._number)
        return [p for p in self.segments() if p.name != current]

    def pending_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments())

    def unsealed_bytes(self) -> int:
        """Bytes written to the segment being appended to."""
        return os.fstat(self._fd).st_size

    def flush_now(self) -> Deferred[None]:
        """Write what is buffered now (shutdown); fires when it is on disk."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if not self._buffer and not self._flushing:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._drained.append(done)
        if not self._flushing:
            self._flush()
        return done

    def close(self) -> None:
        os.close(self._fd)


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one segment; a torn or corrupt line (crash mid-write) is skipped and logged.

    A whole segment is parsed as one JSON array (a third cheaper than line by line); only a segment
    that does not parse that way is read line by line, to skip what is damaged."""
    data = path.read_bytes()
    if data.endswith(b"\n"):
        try:
            records = json.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
        except ValueError:
            pass
        else:
            if all(type(r) is dict for r in records):
                yield from records
                return
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                log.warn("journal {path}: torn last line {number} skipped", path=str(path), number=number)
                break
            try:
                yield json.loads(line)
            except ValueError:
                log.warn("journal {path}: unreadable line {number} skipped", path=str(path), number=number)


def segment_number(path: Path) -> int:
    return int(path.stem)


def journal_folders(root: Path) -> list[Path]:
    """``root`` and the per-worker folders under it (``w0``, ``w1``...) that exist."""
    if not root.is_dir():
        return []
    workers = sorted((p for p in root.iterdir() if p.is_dir() and _WORKER_FOLDER.fullmatch(p.name)), key=lambda p: int(p.name[1:]))
    return [root, *workers]


def segments_in(folder: Path) -> list[Path]:
    """The segments of a journal folder, oldest first (without opening it as a :class:`Journal`)."""
    return sorted(folder.glob(f"*{_SUFFIX}")) if folder.is_dir() else []


class DeadLetterFile:
    """Accounting records that could not be applied, appended (and synced) one per line.

    Each line is the journal record plus ``_error`` (the exception's class and the first line of its
    message, no values) and ``_at`` (when it was set aside). Blocking: called from the drainer's thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0

    def write(self, records: list[dict[str, Any]], error: BaseException) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        reason = describe_error(error)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        data = b"".join(
            json.dumps({**r, "_error": reason, "_at": at}, separators=(",", ":"), default=str).encode() + b"\n" for r in records
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.written += len(records)


def describe_error(error: BaseException) -> str:
    """``Class: first line`` of an error, without the SQL parameters SQLAlchemy appends (values
    from the records must not reach the logs)."""
    inner = getattr(error, "orig", None) or error
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text[:200]}" if text else type(inner).__name__
