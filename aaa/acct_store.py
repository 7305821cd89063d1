"""The SQL of applying accounting: bulk reads and writes of ``sessions`` and ``nas_reboots``, per dialect.

:mod:`aaa.acct_writer` decides what each session becomes; this module only moves rows, with plain
statements through the DB-API (no ORM, no per-row bind processors):

* PostgreSQL: one statement per batch with arrays (``unnest``), rows read ``FOR UPDATE`` so that two
  processes applying records of the same session one after the other never lose an update; new
  sessions are inserted with ``ON CONFLICT DO NOTHING`` and the keys another process inserted
  meanwhile are reported back, for the writer to merge into.
* SQLite: ``executemany`` in a ``BEGIN IMMEDIATE`` transaction: the write lock is taken before the
  rows are read, so nothing changes them in between and an insert never meets a conflict.

Times cross this module as integer microseconds since the epoch (UTC), exact both ways. SQLite
stores them as SQLAlchemy does (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so the ORM reads them back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

__all__ = ["INSERT_COLUMNS", "ROW_COLUMNS", "UPDATE_COLUMNS", "Store", "store_for"]

ROW_COLUMNS = (
    "id", "nas_id", "acct_session_id", "login", "started_at", "updated_at", "stopped_at", "session_time",
    "input_octets", "output_octets", "input_packets", "output_packets", "terminate_cause", "framed_ip",
)  # fmt: skip
"""What :meth:`Store.load` returns per existing session, in this order."""
INSERT_COLUMNS = (
    "nas_id", "acct_session_id", "acct_unique_id", "login", "subscriber_id", "framed_ip", "framed_ipv6_prefix",
    "calling_station_id", "called_station_id", "nas_port_id", "started_at", "updated_at", "stopped_at",
    "session_time", "input_octets", "output_octets", "input_packets", "output_packets", "terminate_cause",
    "interim_interval", "class",
)  # fmt: skip
UPDATE_COLUMNS = (
    "session_time", "input_octets", "output_octets", "input_packets", "output_packets", "updated_at",
    "stopped_at", "terminate_cause", "framed_ip",
)  # fmt: skip
"""An update row is these values, then the session's ``id``."""
_TIMES = ("started_at", "updated_at", "stopped_at")
_MIKROTIK = "length(acct_session_id) = 8 AND lower(substr(acct_session_id, 1, 2)) = {service}"
_SELECT = ", ".join('"class"' if c == "class" else c for c in ROW_COLUMNS)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)
CHUNK = 5000
"""Keys per ``IN (...)`` on SQLite (two bound values each stay under its 32,766 limit)."""


class Store:
    """The statements of one dialect, on one connection inside one transaction."""

    mark = "?"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- time ---------------------------------------------------------------------------------------

    def time(self, us: int | None) -> Any:
        raise NotImplementedError

    def micros(self, value: Any) -> int | None:
        raise NotImplementedError

    # --- plumbing -----------------------------------------------------------------------------------

    def begin(self) -> None:
        """Start the transaction (called first)."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.conn.exec_driver_sql(sql, tuple(params)).fetchall())

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        return int(self.conn.exec_driver_sql(sql, rows).rowcount)

    def _session_rows(self, rows: Iterable[Any]) -> list[tuple[Any, ...]]:
        """Driver rows of ROW_COLUMNS with the three times as microseconds."""
        micros = self.micros
        return [(*r[:4], micros(r[4]), micros(r[5]), micros(r[6]), *r[7:]) for r in rows]

    # --- sessions -----------------------------------------------------------------------------------

    def load(self, nas_id: int, session_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """The existing sessions of ``nas_id`` among ``session_ids`` (ROW_COLUMNS)."""
        raise NotImplementedError

    def insert(self, rows: list[tuple[Any, ...]]) -> set[tuple[int, str]]:
        """Insert new sessions (INSERT_COLUMNS, times in µs); the keys that already existed, not inserted."""
        raise NotImplementedError

    def update(self, rows: list[tuple[Any, ...]]) -> None:
        """Write UPDATE_COLUMNS (times in µs) of each session, then its id."""
        if rows:
            t = self.time
            sets = ", ".join(f"{c} = {self.mark}" for c in UPDATE_COLUMNS)
            self._many(f"UPDATE sessions SET {sets} WHERE id = {self.mark}",
                       [(*r[:5], t(r[5]), t(r[6]), *r[7:]) for r in rows])  # fmt: skip

    def close(self, rows: list[tuple[int, int]], cause: str) -> None:
        """Close sessions ``(id, stopped at)`` with ``cause``."""
        m, t = self.mark, self.time
        self._many(f"UPDATE sessions SET stopped_at = {m}, terminate_cause = {m} WHERE id = {m}",
                   [(t(at), cause, row_id) for row_id, at in rows])  # fmt: skip

    def close_for_reboot(self, nas_id: int, at: int) -> list[tuple[str, str]]:
        """Close, at ``at``, the open sessions of ``nas_id`` that started before it; the closed
        ``(Acct-Session-Id, login)``."""
        m, t = self.mark, self.time(at)
        return [
            (r[0], r[1])
            for r in self._rows(
                f"UPDATE sessions SET stopped_at = {m}, terminate_cause = 'NAS-Reboot' WHERE nas_id = {m} "
                f"AND stopped_at IS NULL AND started_at < {m} RETURNING acct_session_id, login",
                (t, nas_id, t),
            )
        ]

    def move_reboot_close(self, nas_id: int, at: int) -> int:
        """Sessions of ``nas_id`` closed by a later reboot that started before ``at``: closed at ``at``."""
        m, t = self.mark, self.time(at)
        return int(
            self.conn.exec_driver_sql(
                f"UPDATE sessions SET stopped_at = {m} WHERE nas_id = {m} AND stopped_at > {m} "
                f"AND terminate_cause = 'NAS-Reboot' AND started_at < {m}",
                (t, nas_id, t, t),
            ).rowcount
        )

    def mikrotik_counters(self, nas_id: int, service: str) -> dict[str, tuple[int, int]]:
        """Open sessions of one RouterOS service on ``nas_id``: reboot counter -> (first, last start)."""
        m = self.mark
        rows = self._rows(
            f"SELECT lower(substr(acct_session_id, 3, 1)), min(started_at), max(started_at) FROM sessions "
            f"WHERE nas_id = {m} AND stopped_at IS NULL AND {_MIKROTIK.format(service=m)} GROUP BY 1",
            (nas_id, service),
        )
        return {r[0]: (self.micros(r[1]) or 0, self.micros(r[2]) or 0) for r in rows}

    def mikrotik_open(self, nas_id: int, service: str, counter: str, before: int) -> list[tuple[int, str, str, int, str]]:
        """Open sessions of the service with another reboot counter that started before ``before``:
        ``(id, Acct-Session-Id, login, started at, counter)``."""
        m = self.mark
        rows = self._rows(
            f"SELECT id, acct_session_id, login, started_at FROM sessions WHERE nas_id = {m} AND stopped_at IS NULL "
            f"AND {_MIKROTIK.format(service=m)} AND lower(substr(acct_session_id, 3, 1)) <> {m} AND started_at < {m}",
            (nas_id, service, counter, self.time(before)),
        )
        return [(r[0], r[1], r[2], self.micros(r[3]) or 0, r[1][2].lower()) for r in rows]

    def mikrotik_first_after(self, nas_id: int, service: str, counter: str, after: int) -> int | None:
        """The earliest start after ``after`` of an open session of the service with reboot counter ``counter``."""
        m = self.mark
        rows = self._rows(
            f"SELECT min(started_at) FROM sessions WHERE nas_id = {m} AND stopped_at IS NULL "
            f"AND {_MIKROTIK.format(service=m)} AND lower(substr(acct_session_id, 3, 1)) = {m} AND started_at > {m}",
            (nas_id, service, counter, self.time(after)),
        )
        return self.micros(rows[0][0]) if rows else None

    # --- reboots ------------------------------------------------------------------------------------

    def add_reboots(self, reboots: list[tuple[int, int]]) -> None:
        """Record ``(nas id, rebooted at)``; one already recorded is left alone."""
        m, t = self.mark, self.time
        self._many(f"INSERT INTO nas_reboots (nas_id, rebooted_at) VALUES ({m}, {m}) ON CONFLICT DO NOTHING",
                   [(nas_id, t(at)) for nas_id, at in reboots])  # fmt: skip

    def reboots(self, nas_ids: Iterable[int], since: int) -> list[tuple[int, int]]:
        """Recorded reboots after ``since`` of the given NAS: ``(nas id, rebooted at)``."""
        ids = sorted(set(nas_ids))
        if not ids:
            return []
        m = self.mark
        rows = self._rows(
            f"SELECT nas_id, rebooted_at FROM nas_reboots WHERE nas_id IN ({', '.join([m] * len(ids))}) AND rebooted_at > {m}",
            (*ids, self.time(since)),
        )
        return [(r[0], self.micros(r[1]) or 0) for r in rows]


class SqliteStore(Store):
    mark = "?"
    _seconds: dict[int, str] = {}

    def begin(self) -> None:
        # Take the write lock now: rows read below cannot change before this transaction writes.
        self.conn.exec_driver_sql("BEGIN IMMEDIATE")

    def time(self, us: int | None) -> str | None:
        if us is None:
            return None
        second, fraction = divmod(us, 1_000_000)
        prefix = self._seconds.get(second)
        if prefix is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            prefix = self._seconds[second] = (_EPOCH_NAIVE + dt.timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")
        return f"{prefix}.{fraction:06d}"

    def micros(self, value: Any) -> int | None:
        if value is None:
            return None
        return (dt.datetime.fromisoformat(value) - _EPOCH_NAIVE) // _MICROSECOND

    def load(self, nas_id: int, session_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(session_ids), CHUNK):
            chunk = session_ids[start : start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(f"SELECT {_SELECT} FROM sessions WHERE nas_id = ? AND acct_session_id IN ({marks})", (nas_id, *chunk))
            found += self._session_rows(rows)
        return found

    def insert(self, rows: list[tuple[Any, ...]]) -> set[tuple[int, str]]:
        if not rows:
            return set()
        t = self.time
        columns = ", ".join('"class"' if c == "class" else c for c in INSERT_COLUMNS)
        marks = ", ".join("?" * len(INSERT_COLUMNS))
        values = [(*r[:10], t(r[10]), t(r[11]), t(r[12]), *r[13:]) for r in rows]
        inserted = self._many(f"INSERT INTO sessions ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", values)
        if inserted != len(rows):  # cannot happen under BEGIN IMMEDIATE: refuse rather than lose records
            raise ConcurrentWrite(f"{len(rows) - inserted} of {len(rows)} new sessions already existed")
        return set()


class PostgresStore(Store):
    mark = "%s"

    def begin(self) -> None:
        # The updates below join a batch to ``sessions`` by id: a nested loop over the primary key costs
        # the same whatever the size of the table (a year of records), where the planner would rather
        # scan it whole (hash or merge join) for 20,000 ids. JIT compiling such a plan costs more than
        # running it.
        self.conn.exec_driver_sql("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off")

    def time(self, us: int | None) -> dt.datetime | None:
        return None if us is None else _EPOCH + dt.timedelta(microseconds=us)

    def micros(self, value: Any) -> int | None:
        return None if value is None else (value - _EPOCH) // _MICROSECOND

    def load(self, nas_id: int, session_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        # One probe of the unique index per key (LATERAL ... LIMIT 1 cannot be turned into a scan of
        # every session of the NAS, whatever the statistics say), locked in key order so that two
        # processes applying overlapping batches do not deadlock.
        rows = self._rows(
            f"SELECT s.* FROM unnest(%s::text[]) AS k(sid) CROSS JOIN LATERAL (SELECT {_SELECT} FROM sessions "
            "WHERE nas_id = %s AND acct_session_id = k.sid LIMIT 1 FOR UPDATE) AS s",
            (sorted(session_ids), nas_id),
        )
        return self._session_rows(rows)

    _INSERT_TYPES = ("int4", "text", "text", "text", "int4", "text", "text", "text", "text", "text", "timestamptz",
                     "timestamptz", "timestamptz", "int4", "int8", "int8", "int8", "int8", "text", "int4", "text")  # fmt: skip
    _UPDATE_TYPES = ("int4", "int8", "int8", "int8", "int8", "timestamptz", "timestamptz", "text", "text", "int8")

    def _copy(self, table: str, columns: str, types: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Rows into one of this connection's scratch tables (binary COPY: the C encoder, no arrays)."""
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {table} AS SELECT {columns} FROM sessions WITH NO DATA"
            )
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(types))
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def insert(self, rows: list[tuple[Any, ...]]) -> set[tuple[int, str]]:
        if not rows:
            return set()
        t = self.time
        names = ", ".join('"class"' if c == "class" else c for c in INSERT_COLUMNS)
        self._copy("acct_new", names, self._INSERT_TYPES, ((*r[:10], t(r[10]), t(r[11]), t(r[12]), *r[13:]) for r in rows))
        inserted = self._rows(
            f"INSERT INTO sessions ({names}) SELECT {names} FROM acct_new "
            "ON CONFLICT (nas_id, acct_session_id) DO NOTHING RETURNING nas_id, acct_session_id"
        )
        self.conn.exec_driver_sql("TRUNCATE acct_new")
        if len(inserted) == len(rows):
            return set()
        return {(r[0], r[1]) for r in rows} - {(r[0], r[1]) for r in inserted}

    def update(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        t = self.time
        names = ", ".join((*UPDATE_COLUMNS, "id"))
        self._copy("acct_changed", names, self._UPDATE_TYPES, ((*r[:5], t(r[5]), t(r[6]), *r[7:]) for r in rows))
        sets = ", ".join(f"{c} = v.{c}" for c in UPDATE_COLUMNS)
        self.conn.exec_driver_sql(f"UPDATE sessions AS s SET {sets} FROM acct_changed AS v WHERE s.id = v.id")
        self.conn.exec_driver_sql("TRUNCATE acct_changed")

    def close(self, rows: list[tuple[int, int]], cause: str) -> None:
        if rows:
            t = self.time
            self.conn.exec_driver_sql(
                "UPDATE sessions AS s SET stopped_at = v.at, terminate_cause = %s "
                "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE s.id = v.id",
                (cause, [r[0] for r in rows], [t(r[1]) for r in rows]),
            )


class ConcurrentWrite(RuntimeError):
    """Another writer changed ``sessions`` inside what should have been this transaction's lock."""


def store_for(conn: Connection) -> Store:
    return SqliteStore(conn) if conn.dialect.name == "sqlite" else PostgresStore(conn)
