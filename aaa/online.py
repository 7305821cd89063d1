"""The online-sessions index: open sessions per login, for the simultaneous-use check.

The authentication path asks :meth:`OnlineIndex.count`; accounting keeps the index in step as it
acknowledges records (a Start adds, a Stop removes, an Accounting-On/Off removes the sessions of
that NAS that started before it, as the database will), and the drainer removes the sessions it
closed (reboots, stale sessions). At start-up the index is seeded from ``sessions`` once every
journal has been applied.

One process sees only its own accounting. With ``aaa serve --workers N`` or several nodes on one
PostgreSQL, other processes open and close sessions too, so the index is rebuilt from the database
every :data:`RESYNC_SECONDS` (:meth:`OnlineIndex.resync_rows` on a thread, then
:meth:`OnlineIndex.replace` on the reactor). The database lags this process by the records still in
its journal, so the index keeps a log of its own changes (:meth:`track`) and replays, over the rows
read, every change not yet known to be applied: the drainer reports how far it got
(:meth:`applied`). The log is bounded (:data:`LOG_LIMIT`); past the bound (the database has been
down that long) resyncs pause until the drainer has caught up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["LOG_LIMIT", "RESYNC_SECONDS", "OnlineIndex"]

RESYNC_SECONDS = 10.0
"""How often the index is rebuilt from ``sessions`` when other processes write sessions too."""
LOG_LIMIT = 200_000
"""Changes kept for the resync at most (a few tens of MB); more means the journal is far behind."""
SESSION_ID_LENGTH = 64
LOGIN_LENGTH = 128
"""The columns' sizes: keys are cut as :mod:`aaa.acct_writer` cuts them, so the drainer's reports match."""

Sessions = dict[str, dict[tuple[int, str], float]]
"""login -> {(NAS id, Acct-Session-Id): started at, epoch seconds}"""


class OnlineIndex:
    """Open sessions per login; every method runs on the reactor thread."""

    def __init__(self) -> None:
        self._by_login: Sessions = {}
        self.seq = 0
        """The number of the latest change (a Start, Stop or reboot acknowledged here)."""
        self._log: deque[tuple[int, str, str, int, str, float]] | None = None
        self._applied = 0
        self._pinned: int | None = None
        self._overflow_until: int | None = None
        self.resyncs = 0

    # --- the authentication path ------------------------------------------------------------------

    def count(self, login: str) -> int:
        sessions = self._by_login.get(login)
        return len(sessions) if sessions else 0

    def total(self) -> int:
        return sum(len(s) for s in self._by_login.values())

    # --- changes ------------------------------------------------------------------------------------

    def seed(self, rows: Iterable[tuple[str, int, str, float]]) -> None:
        """Replace the whole index with ``(login, NAS id, Acct-Session-Id, started at)`` rows."""
        self._by_login = self.resync_rows(rows)

    def started(self, login: str, nas_id: int, sid: str, at: float = 0.0) -> None:
        """A session started at ``at`` (epoch seconds; unknown: 0, before any reboot)."""
        self._change("start", login, nas_id, sid, at)

    def stopped(self, login: str, nas_id: int, sid: str) -> None:
        self._change("stop", login, nas_id, sid, 0.0)

    def nas_rebooted(self, nas_id: int, at: float) -> None:
        """Accounting-On/Off at ``at``: the NAS's sessions that started before ``at`` are over."""
        self._change("reboot", "", nas_id, "", at)

    def _change(self, kind: str, login: str, nas_id: int, sid: str, at: float) -> None:
        self.seq += 1
        login, sid = login[:LOGIN_LENGTH], sid[:SESSION_ID_LENGTH]
        _apply(self._by_login, kind, login, nas_id, sid, at)
        log = self._log
        if log is not None:
            if len(log) < LOG_LIMIT:
                log.append((self.seq, kind, login, nas_id, sid, at))
            else:  # resyncs wait until everything up to here is in the database
                log.clear()
                self._overflow_until = self.seq

    # --- resync -------------------------------------------------------------------------------------

    def track(self) -> None:
        """Keep the log of changes that :meth:`replace` needs (other processes write sessions too)."""
        if self._log is None:
            self._log = deque()

    def applied(self, mark: int) -> None:
        """Every change numbered up to ``mark`` is in the database (the drainer committed its records)."""
        if mark <= self._applied:
            return
        self._applied = mark
        if self._overflow_until is not None and mark >= self._overflow_until:
            self._overflow_until = None
        self._trim()

    def _trim(self) -> None:
        log = self._log
        if log is None:
            return
        keep_after = self._applied if self._pinned is None else min(self._applied, self._pinned)
        while log and log[0][0] <= keep_after:
            log.popleft()

    def begin_resync(self) -> int | None:
        """Before reading ``sessions``: the change number the read will be complete up to, or None
        when a resync cannot be completed now (the log overflowed)."""
        if self._log is None or self._overflow_until is not None:
            return None
        self._pinned = self._applied
        return self._applied

    @staticmethod
    def resync_rows(rows: Iterable[tuple[str, int, str, float]]) -> Sessions:
        """The index built from ``(login, NAS id, Acct-Session-Id, started at)`` rows (any thread)."""
        built: Sessions = {}
        for login, nas_id, sid, at in rows:
            sessions = built.get(login)
            if sessions is None:
                sessions = built[login] = {}
            sessions[(nas_id, sid)] = at
        return built

    def replace(self, built: Sessions | None, since: int) -> None:
        """Finish a resync begun at ``since``: ``built`` from the database, plus this process's changes
        after ``since`` replayed over it (None: the read failed, keep the index as it is)."""
        self._pinned = None
        if built is not None and self._log is not None and self._overflow_until is None:
            for _, kind, login, nas_id, sid, at in self._log:
                if _ > since:
                    _apply(built, kind, login, nas_id, sid, at)
            self._by_login = built
            self.resyncs += 1
        self._trim()


def _apply(index: Sessions, kind: str, login: str, nas_id: int, sid: str, at: float) -> None:
    if kind == "start":
        sessions = index.get(login)
        if sessions is None:
            sessions = index[login] = {}
        sessions[(nas_id, sid)] = at
    elif kind == "stop":
        sessions = index.get(login)
        if sessions:
            sessions.pop((nas_id, sid), None)
            if not sessions:
                del index[login]
    else:
        for name in list(index):
            sessions = index[name]
            ended = [key for key, started in sessions.items() if key[0] == nas_id and started < at]
            if ended:
                for key in ended:
                    del sessions[key]
                if not sessions:
                    del index[name]
