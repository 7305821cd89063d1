"""The auth log's spool: files of decisions waiting for the auth log process to write them.

Under a load that keeps every core busy, the auth log process (at ``SCHED_IDLE``, so that it never
takes a core from the reactor) gets almost no CPU: rows waited in the server's memory, up to a
bound, and were then dropped; a second child at normal priority that wrote the backlog took the
server's core in scheduler slices of milliseconds and doubled PAP's p99 (docs/performance.md).
So the server's auth log thread writes each batch here instead, which costs it what handing the
rows to the child cost (pickling them) and never waits for the child; the child takes the files,
oldest first, whenever the machine leaves it a moment, and deletes each once its rows are
committed. A burst (a reconnect storm, a saturated minute) is logged after it instead of
dropped, the backlog is bounded by ``[radius] auth_log_spool_mb`` of disk rather than by memory,
and rows still waiting when the server stops are written after the next start.

A spool file (``<sequence>.rows``, written as ``.tmp`` and renamed when complete, so the child
never sees half a file) is a run of frames: a header ``>II`` (payload bytes, rows) and the payload,
a pickled list of rows (:class:`aaa.background.AuthLogWriter`'s tuples). Each frame is committed
on its own. When the database refuses a frame, the file is replaced by one holding that frame and
the ones after it, and retried later; a frame that cannot be read (a damaged file) is counted as
dropped with the rest of its file. Pickle is safe here because only this server writes the folder
(it is created ``0700``); the files hold logins and Calling-Station-Ids, never passwords.
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HEADER = struct.Struct(">II")
SUFFIX = ".rows"


class SpoolFull(Exception):
    """The spool holds its bound: the batch was not written (its rows are dropped)."""


class AuthLogSpool:
    """One server process's spool folder. :meth:`append` runs on the auth log thread; :meth:`settle`
    after the child has taken a file, on the thread that fed it; the counters are kept under a lock."""

    def __init__(self, folder: Path, *, limit_bytes: int, chunk: int = 1_000) -> None:
        self.folder = folder
        self.limit_bytes = limit_bytes
        self._chunk = chunk
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, int]] = {}  # name -> (rows, bytes)
        self.rows = 0
        self.bytes = 0
        self.lost_on_start = 0
        """Rows found in files that were never completed (the server stopped while writing one)."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stray in folder.glob("*.tmp"):  # a batch the server was writing when it stopped
            self.lost_on_start += scan(stray)[0]
            stray.unlink(missing_ok=True)
        for stray in folder.glob("*.part"):  # the rest of a file the child was cutting: the file is whole
            stray.unlink(missing_ok=True)
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            self._track(path)
        self._next = max((int(p.stem) for p in self.files() if p.stem.isdigit()), default=0) + 1

    def _track(self, path: Path) -> None:
        rows, _ = scan(path)
        size = path.stat().st_size
        with self._lock:
            old_rows, old_bytes = self._files.pop(path.name, (0, 0))
            self._files[path.name] = (rows, size)
            self.rows += rows - old_rows
            self.bytes += size - old_bytes

    def files(self) -> list[Path]:
        """The complete files, oldest first."""
        with self._lock:
            names = sorted(self._files)
        return [self.folder / name for name in names]

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Write ``rows`` as one new file, in frames of ``chunk`` rows (pickling a frame keeps the
        GIL, so a frame is small). Raises :class:`SpoolFull` at the bound, ``OSError`` when the disk
        refuses (nothing of the batch is then in the spool)."""
        if self.bytes >= self.limit_bytes:
            raise SpoolFull(f"the auth log spool holds {self.bytes // 1_000_000} MB, its bound")
        name = f"{self._next:012d}{SUFFIX}"
        self._next += 1
        temporary = self.folder / f"{name}.tmp"
        size = 0
        try:
            with open(temporary, "wb") as out:
                for start in range(0, len(rows), self._chunk):
                    piece = rows[start : start + self._chunk]
                    payload = pickle.dumps(piece, protocol=pickle.HIGHEST_PROTOCOL)
                    out.write(_HEADER.pack(len(payload), len(piece)))
                    out.write(payload)
                    size += _HEADER.size + len(payload)
            os.replace(temporary, self.folder / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        with self._lock:
            self._files[name] = (len(rows), size)
            self.rows += len(rows)
            self.bytes += size

    def settle(self, path: Path) -> None:
        """After the child has had ``path``: forget it if it is gone, else count what is left in it."""
        if path.exists():
            self._track(path)
            return
        with self._lock:
            rows, size = self._files.pop(path.name, (0, 0))
            self.rows -= rows
            self.bytes -= size

    def adopt(self, folders: list[Path]) -> int:
        """Move the complete files of ``folders`` (another worker count's spools) into this one, after
        its own; the rows moved."""
        moved = 0
        for folder in folders:
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                target = self.folder / f"{self._next:012d}{SUFFIX}"
                self._next += 1
                os.replace(path, target)
                self._track(target)
                moved += self._files[target.name][0]
        return moved


def scan(path: Path) -> tuple[int, int]:
    """Rows and frames in a spool file, from the frame headers (a cut-off last frame is not counted)."""
    rows = frames = 0
    try:
        with open(path, "rb") as f:
            while True:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                size, count = _HEADER.unpack(header)
                f.seek(size, os.SEEK_CUR)
                rows += count
                frames += 1
    except FileNotFoundError:
        pass
    return rows, frames


def write_file(path: Path, write: Callable[[list[tuple[Any, ...]]], None]) -> tuple[int, int, BaseException | None]:
    """The auth log process's part: ``write`` (one committed transaction) each frame of ``path`` in
    turn, then delete it. Returns (rows written, rows dropped, error): on an error from ``write``
    the file is replaced by the frames not yet written and the error returned; a frame that cannot
    be read is dropped with the rest of the file."""
    data = path.read_bytes()
    written = 0
    offset = 0
    while offset + _HEADER.size <= len(data):
        size, count = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        try:
            rows = pickle.loads(data[start : start + size])
        except Exception:
            path.unlink(missing_ok=True)
            return written, count + _rows_after(data, start + size), None
        try:
            write(rows)
        except Exception as exc:
            rest = path.with_name(path.name + ".part")
            rest.write_bytes(data[offset:])
            os.replace(rest, path)
            return written, 0, exc
        written += len(rows)
        offset = start + size
    path.unlink(missing_ok=True)
    return written, 0, None


def _rows_after(data: bytes, offset: int) -> int:
    rows = 0
    while offset + _HEADER.size <= len(data):
        size, count = _HEADER.unpack_from(data, offset)
        rows += count
        offset += _HEADER.size + size
    return rows
