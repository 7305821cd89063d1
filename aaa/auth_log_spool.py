"""The auth log's spool: files of decisions waiting for the auth log process to write them.

Under a load that keeps every core busy, the auth log process (at ``SCHED_IDLE``, so that it never
takes a core from the reactor) gets almost no CPU: rows waited in the server's memory, up to a
bound, and were then dropped; a second child at normal priority that wrote the backlog took the
server's core in scheduler slices of milliseconds and doubled PAP's p99 (docs/performance.md).
So the server writes its decisions here instead, a frame at a time, from the reactor itself: each
frame is a few hundred rows pickled (about 0.1 ms) and written to the page cache, spread evenly
over the load, where a thread that pickled whole batches held the GIL and the reactor's core in
slices of a millisecond or more. Nothing waits for the child; the child takes the files, oldest
first, whenever the machine leaves it a moment, and deletes each once its rows are committed. A
burst (a reconnect storm, a saturated minute) is logged after it instead of dropped, the backlog
is bounded by ``[radius] auth_log_spool_mb`` of disk rather than by memory, and rows still
waiting when the server stops are written after the next start.

A spool file (``<sequence>.rows``, written as ``.tmp`` and renamed when sealed, every half second
or so, so the child never sees half a file) is a run of frames: a header ``>II`` (payload bytes,
rows) and the payload, a pickled list of rows (:class:`aaa.background.AuthLogWriter`'s tuples).
The child commits the frames in groups of about a thousand rows. When the database refuses a
group, the file is replaced by one holding that group's frames and the ones after, and retried
later; a frame that cannot be read (a damaged file) is counted as
dropped with the rest of its file. Pickle is safe here because only this server writes the folder
(it is created ``0700``); the files hold logins and Calling-Station-Ids, never passwords.
"""

from __future__ import annotations

import contextlib
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
    """The spool holds its bound: the frame was not written (its rows are dropped)."""


class SpoolWriteError(Exception):
    """The disk refused a frame or the sealing of a file. The frame is not in the spool; ``lost``
    counts the rows of earlier frames that went with it (the file being written could not be cut
    back to them, or could not be sealed)."""

    def __init__(self, error: OSError, lost: int) -> None:
        super().__init__(f"auth log spool: {error.strerror or error}")
        self.error = error
        self.lost = lost


class AuthLogSpool:
    """One server process's spool folder. :meth:`write_frame` and :meth:`seal` run on the reactor
    (:meth:`append` is both, for whole batches); :meth:`settle` after the child has taken a file, on
    the thread that fed it; the counters are kept under a lock."""

    def __init__(self, folder: Path, *, limit_bytes: int, chunk: int = 1_000) -> None:
        self.folder = folder
        self.limit_bytes = limit_bytes
        self._chunk = chunk  # rows per frame in append
        self._out: int | None = None  # the file being written (a descriptor), its name, rows and bytes
        self._out_name = ""
        self._out_rows = 0
        self._out_bytes = 0
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

    def write_frame(self, rows: list[tuple[Any, ...]]) -> None:
        """Add ``rows`` as one frame to the file being written, opening one if none is. Raises
        :class:`SpoolFull` at the bound and :class:`SpoolWriteError` when the disk refuses (the
        frame is then not in the file, and the file is as it was, unless ``lost`` says otherwise)."""
        if self.bytes + self._out_bytes >= self.limit_bytes:
            raise SpoolFull(f"the auth log spool holds {self.limit_bytes // 1_000_000} MB, its bound")
        payload = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        frame = memoryview(_HEADER.pack(len(payload), len(rows)) + payload)
        try:
            if self._out is None:
                self._out_name = f"{self._next:012d}{SUFFIX}"
                self._next += 1
                self._out = os.open(self.folder / f"{self._out_name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            while frame:
                frame = frame[os.write(self._out, frame) :]
        except OSError as exc:
            raise SpoolWriteError(exc, self._cut_back()) from exc
        self._out_rows += len(rows)
        self._out_bytes += _HEADER.size + len(payload)

    def _cut_back(self) -> int:
        """After a refused write: the open file back to its complete frames; the rows lost if it cannot be."""
        if self._out is None:
            return 0
        try:
            os.ftruncate(self._out, self._out_bytes)
            os.lseek(self._out, self._out_bytes, os.SEEK_SET)
            return 0
        except OSError:
            return self._discard()

    def _discard(self) -> int:
        lost, out = self._out_rows, self._out
        self._out, self._out_rows, self._out_bytes = None, 0, 0
        if out is not None:
            with contextlib.suppress(OSError):
                os.close(out)
        with contextlib.suppress(OSError):  # the disk is failing already
            (self.folder / f"{self._out_name}.tmp").unlink(missing_ok=True)
        return lost

    def seal(self) -> int:
        """Close the file being written and hand it to the child; the rows it holds (0: none was
        open). Raises :class:`SpoolWriteError` when the disk refuses (its rows are then lost)."""
        out = self._out
        if out is None:
            return 0
        temporary = self.folder / f"{self._out_name}.tmp"
        try:
            os.close(out)
            self._out = None
            os.replace(temporary, self.folder / self._out_name)
        except OSError as exc:
            raise SpoolWriteError(exc, self._discard()) from exc
        rows, size = self._out_rows, self._out_bytes
        self._out_rows = self._out_bytes = 0
        with self._lock:
            self._files[self._out_name] = (rows, size)
            self.rows += rows
            self.bytes += size
        return rows

    @property
    def unsealed_rows(self) -> int:
        """Rows in the file being written (not yet the child's)."""
        return self._out_rows

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Write ``rows`` as one new file of frames of ``chunk`` rows, sealed (tests, tools)."""
        for start in range(0, len(rows), self._chunk):
            self.write_frame(rows[start : start + self._chunk])
        self.seal()

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


def write_file(
    path: Path, write: Callable[[list[tuple[Any, ...]]], None], *, batch: int = 1_000, pause: Callable[[], bool] | None = None
) -> tuple[int, int, BaseException | None]:
    """The auth log process's part: ``write`` (one committed transaction) the rows of ``path``, in
    groups of whole frames of at least ``batch`` rows (the last may be smaller), then delete it.
    Returns (rows written, rows dropped, error): on an error from ``write`` the file is replaced by
    the frames not yet written and the error returned; a frame that cannot be read is dropped with
    the rest of the file (what came before it is written). When ``pause()``, asked before each
    group, says so, the file is replaced by the frames not yet written and left for later (no error)."""
    data = path.read_bytes()
    written = 0
    offset = 0  # the first frame not yet written
    while offset + _HEADER.size <= len(data):
        if pause is not None and pause():
            if offset:
                _keep_rest(path, data, offset)
            return written, 0, None
        rows: list[tuple[Any, ...]] = []
        end = offset
        damaged = 0
        while end + _HEADER.size <= len(data) and len(rows) < batch:
            size, count = _HEADER.unpack_from(data, end)
            start = end + _HEADER.size
            try:
                rows += pickle.loads(data[start : start + size])
            except Exception:
                damaged = count + _rows_after(data, start + size)
                break
            end = start + size
        try:
            if rows:
                write(rows)
        except Exception as exc:
            _keep_rest(path, data, offset)
            return written, 0, exc
        written += len(rows)
        offset = end
        if damaged:
            path.unlink(missing_ok=True)
            return written, damaged, None
    path.unlink(missing_ok=True)
    return written, 0, None


def _keep_rest(path: Path, data: bytes, offset: int) -> None:
    """Replace ``path`` by its frames from ``offset`` on (those not yet written)."""
    rest = path.with_name(path.name + ".part")
    rest.write_bytes(data[offset:])
    os.replace(rest, path)


def _rows_after(data: bytes, offset: int) -> int:
    rows = 0
    while offset + _HEADER.size <= len(data):
        size, count = _HEADER.unpack_from(data, offset)
        rows += count
        offset += _HEADER.size + size
    return rows
