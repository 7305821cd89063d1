"""Applying accounting records to ``sessions``: batched, idempotent, and independent of order.

Records come from the journals (one per worker process, replayed after a crash, applied late after a
database outage), so the same record may be applied twice and records may be applied in any order.
The rules below give the same ``sessions`` whatever the order and however often each record is
applied, for records a NAS can send (a session's counters grow with its time):

* One row per (NAS, Acct-Session-Id). Counters in Interim-Update and Stop are cumulative (RFC 2866):
  a session keeps the highest it was told, so a replay or an older record never double-counts or
  lowers them.
* A Start for a session that exists changes nothing. An Interim-Update or Stop for one that does not
  creates it, started at the record's time minus Acct-Session-Time.
* A stopped session is never reopened: a record later than its stop is ignored; one from before the
  stop may still raise its counters. A Stop from the NAS replaces a close we inferred (``NAS-Reboot``,
  ``Lost-Service``): it has the true time, cause and counters.
* **NAS reboots.** Accounting-On/Off at time T is kept in ``nas_reboots`` and closes, as
  ``NAS-Reboot`` at T, every session of that NAS that *started before T*: open ones, ones applied
  later (a Start older than the reboot is created closed), and ones we closed at a later reboot.
  A session that started at or after T is never closed by it, whatever the order in which the
  Accounting-On and its Start are applied (the reconnect storm: Accounting-On, then thousands of
  Starts, spread over worker journals and batches).
* The same for RouterOS's reboot counter (the third character of its 8-hex-digit Acct-Session-Id):
  among the sessions of one service on a NAS, one that started before a session with another
  counter is over, stopped at the first such start (``NAS-Reboot``). Only open sessions are
  compared; a session already closed counts for nothing.
* Values are fitted to their columns: a string longer than its column is cut, NUL characters are
  removed, a counter beyond its column is capped; each fitted value is counted
  (:attr:`ApplyResult.fitted`), never a failed batch.

Stopped sessions are closed, never deleted (Marco Civil keeps them a year). :func:`apply` writes one
batch in one transaction; :func:`apply_isolating` splits a batch that fails for a reason other than
the database being unavailable until the records that cannot be applied are isolated, and hands
those to a callback (the drainer keeps them in a dead-letter file). Times are integer microseconds.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, String, Table, select, update
from sqlalchemy import exc as sa_exc

from aaa.acct_store import ConcurrentWrite, Store, store_for
from aaa.db.models import AcctSession

__all__ = [
    "INFERRED_CAUSES",
    "ApplyResult",
    "apply",
    "apply_isolating",
    "close_stale",
    "is_transient",
    "mikrotik_reboot_key",
    "open_sessions",
]

_S = cast(Table, AcctSession.__table__)
INFERRED_CAUSES = frozenset({"NAS-Reboot", "Lost-Service"})
"""Causes of the closes we infer; a Stop from the NAS replaces them."""
_LENGTH = {c.name: c.type.length for c in _S.columns if isinstance(c.type, String) and c.type.length}
_INT_MAX = (1 << 31) - 1
_BIGINT_MAX = (1 << 63) - 1
_COUNTERS = (("input_octets", "in"), ("output_octets", "out"), ("input_packets", "pin"), ("output_packets", "pout"))


def _us(epoch: float) -> int:
    return round(epoch * 1_000_000)


@dataclass
class ApplyResult:
    started: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    fitted: int = 0
    """Values cut or capped to fit their column."""
    rejected: int = 0
    """Records that could not be applied (isolated by :func:`apply_isolating`)."""
    mark: int | None = None
    """Set by the drainer: the online index's change number the applied records cover."""

    def add(self, other: ApplyResult) -> None:
        self.started += other.started
        self.stopped += other.stopped
        self.applied += other.applied
        self.fitted += other.fitted
        self.rejected += other.rejected


def mikrotik_reboot_key(session_id: str) -> tuple[str, str] | None:
    """(service prefix, reboot counter) of a RouterOS Acct-Session-Id such as ``81a00003``."""
    if len(session_id) == 8 and all(c in "0123456789abcdefABCDEF" for c in session_id):
        return session_id[:2].lower(), session_id[2].lower()
    return None


# --- fitting values to columns --------------------------------------------------------------------


class _Fit:
    """Cuts strings and caps integers to their columns, counting every value it changes."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def text(self, value: Any, column: str) -> str | None:
        if value is None:
            return None
        if type(value) is not str:
            value = str(value)
        if "\x00" in value:
            value = value.replace("\x00", "")
            self.count += 1
        limit = _LENGTH[column]
        if len(value) > limit:
            self.count += 1
            return value[:limit]
        return value

    def number(self, value: Any, limit: int) -> int:
        value = int(value or 0)
        if 0 <= value <= limit:
            return value
        self.count += 1
        return limit if value > 0 else 0


# --- one session, as this batch sees it ------------------------------------------------------------


class _Session:
    __slots__ = (
        "id", "nas_id", "sid", "login", "started", "updated", "stopped", "session_time", "input_octets",
        "output_octets", "input_packets", "output_packets", "cause", "framed_ip", "extra", "dirty", "was_open",
        "records",
    )  # fmt: skip

    id: int | None
    nas_id: int
    sid: str
    login: str
    started: int
    updated: int
    stopped: int | None
    session_time: int
    input_octets: int
    output_octets: int
    input_packets: int
    output_packets: int
    cause: str | None
    framed_ip: str | None
    extra: tuple[Any, ...] | None  # columns set only when the row is created
    dirty: bool
    was_open: bool  # before this batch (a new session: True)
    records: list[dict[str, Any]] | None  # a new session's records, to merge again if another process inserts it first

    @classmethod
    def existing(cls, row: Sequence[Any]) -> _Session:
        s = cls()
        (s.id, s.nas_id, s.sid, s.login, s.started, s.updated, s.stopped, s.session_time, s.input_octets,
         s.output_octets, s.input_packets, s.output_packets, s.cause, s.framed_ip) = row  # fmt: skip
        s.extra = s.records = None
        s.dirty = False
        s.was_open = s.stopped is None
        return s

    @classmethod
    def new(cls, nas_id: int, sid: str, rec: dict[str, Any], fit: _Fit) -> _Session:
        s = cls()
        at = _us(rec["at"])
        kind = rec["t"]
        s.id = None
        s.nas_id, s.sid = nas_id, sid
        s.login = fit.text(rec.get("login") or "", "login") or ""
        elapsed = min(max(int(rec.get("time") or 0), 0), _INT_MAX) if kind != "start" else 0
        s.started = at - elapsed * 1_000_000
        s.session_time = 0  # set (and fitted, counted) by merge below
        s.updated = at
        s.stopped = None
        s.input_octets = s.output_octets = s.input_packets = s.output_packets = 0
        s.cause = None
        s.framed_ip = fit.text(rec.get("ip"), "framed_ip")
        s.extra = (
            fit.text(rec.get("uid"), "acct_unique_id"),
            rec.get("sub"),
            fit.text(rec.get("ip6"), "framed_ipv6_prefix"),
            fit.text(rec.get("csid"), "calling_station_id"),
            fit.text(rec.get("called"), "called_station_id"),
            fit.text(rec.get("port"), "nas_port_id"),
            fit.number(rec["interim"], _INT_MAX) if rec.get("interim") is not None else None,
            fit.text(rec.get("class"), "class"),
        )
        s.dirty = True
        s.was_open = True
        s.records = [rec]
        if kind != "start":
            s.merge(rec, at, fit)
        return s

    def merge(self, rec: dict[str, Any], at: int, fit: _Fit) -> None:
        """Fold one Interim-Update or Stop into the session (a Start changes nothing that exists)."""
        kind = rec["t"]
        if kind == "start":
            return
        stopped = self.stopped
        replace_close = kind == "stop" and stopped is not None and self.cause in INFERRED_CAUSES
        if stopped is not None and at > stopped and not replace_close:
            return  # nothing reopens a stopped session
        changed = False
        value = fit.number(rec.get("time"), _INT_MAX)
        if value > self.session_time:
            self.session_time = value
            changed = True
        for name, key in _COUNTERS:
            value = fit.number(rec.get(key), _BIGINT_MAX)
            if value > getattr(self, name):
                setattr(self, name, value)
                changed = True
        if at > self.updated:
            self.updated = at
            changed = True
        if self.framed_ip is None and rec.get("ip"):
            self.framed_ip = fit.text(rec["ip"], "framed_ip")
            changed = True
        if kind == "stop" and (stopped is None or replace_close):
            cause = fit.text(rec.get("cause") or "Unknown", "terminate_cause")
            if stopped != at or self.cause != cause:
                self.stopped, self.cause = at, cause
                changed = True
        if changed:
            self.dirty = True

    def close(self, at: int, cause: str) -> None:
        self.stopped, self.cause = at, cause
        self.dirty = True

    def summary(self) -> dict[str, Any]:
        return {"nas_id": self.nas_id, "acct_session_id": self.sid, "login": self.login}

    def insert_row(self) -> tuple[Any, ...]:
        e = self.extra or (None,) * 8
        return (self.nas_id, self.sid, e[0], self.login, e[1], self.framed_ip, e[2], e[3], e[4], e[5], self.started,
                self.updated, self.stopped, self.session_time, self.input_octets, self.output_octets,
                self.input_packets, self.output_packets, self.cause, e[6], e[7])  # fmt: skip

    def update_row(self) -> tuple[Any, ...]:
        return (self.session_time, self.input_octets, self.output_octets, self.input_packets, self.output_packets,
                self.updated, self.stopped, self.cause, self.framed_ip, self.id)  # fmt: skip


# --- one batch -------------------------------------------------------------------------------------


class _Batch:
    """The records of one transaction: folded per session, the reboot rules applied, then written."""

    def __init__(self, store: Store, result: ApplyResult) -> None:
        self.store = store
        self.result = result
        self.fit = _Fit()
        self.sessions: dict[tuple[int, str], _Session] = {}
        self.reboots: dict[int, set[int]] = {}  # this batch's Accounting-On/Off per NAS
        self.stopped: list[dict[str, Any]] = []  # closed by SQL, not through a _Session

    def run(self, records: Iterable[dict[str, Any]]) -> None:
        fit = self.fit
        grouped: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for rec in records:
            self.result.applied += 1
            kind = rec["t"]
            if kind == "on" or kind == "off":
                self.reboots.setdefault(int(rec["nas"]), set()).add(_us(rec["at"]))
                continue
            if kind not in ("start", "interim", "stop"):
                raise ValueError(f"unknown record type {kind!r}")
            key = (int(rec["nas"]), fit.text(rec["sid"], "acct_session_id") or "")
            grouped.setdefault(key, []).append(rec)
        self._load(grouped)
        self._fold(grouped)
        self._apply_reboots()
        self._apply_mikrotik()
        self._write()
        self._close_by_reboots()
        self.result.fitted += fit.count

    def _load(self, grouped: dict[tuple[int, str], list[dict[str, Any]]]) -> None:
        by_nas: dict[int, list[str]] = {}
        for nas_id, sid in grouped:
            by_nas.setdefault(nas_id, []).append(sid)
        for nas_id, sids in sorted(by_nas.items()):
            for row in self.store.load(nas_id, sids):
                self.sessions[(row[1], row[2])] = _Session.existing(row)

    def _fold(self, grouped: dict[tuple[int, str], list[dict[str, Any]]]) -> None:
        fit, sessions = self.fit, self.sessions
        for key, recs in grouped.items():
            s = sessions.get(key)
            if s is None:
                sessions[key] = s = _Session.new(key[0], key[1], recs[0], fit)
                assert s.records is not None
                s.records += recs[1:]
                recs = recs[1:]
            for rec in recs:
                s.merge(rec, _us(rec["at"]), fit)

    def _apply_reboots(self) -> None:
        """Close the batch's sessions that started before a reboot of their NAS (recorded or in this batch)."""
        candidates = [s for s in self.sessions.values() if s.stopped is None or s.cause == "NAS-Reboot"]
        if not candidates and not self.reboots:
            return
        known: dict[int, set[int]] = {n: set(ts) for n, ts in self.reboots.items()}
        if candidates:
            since = min(s.started for s in candidates)
            for nas_id, at in self.store.reboots({s.nas_id for s in candidates}, since):
                known.setdefault(nas_id, set()).add(at)
        ordered = {n: sorted(ts) for n, ts in known.items()}
        for s in candidates:
            times = ordered.get(s.nas_id)
            if not times:
                continue
            i = bisect.bisect_right(times, s.started)  # the first reboot after the start
            if i < len(times):
                at = times[i]
                if s.stopped is None or s.stopped > at:
                    s.close(at, "NAS-Reboot")

    def _apply_mikrotik(self) -> None:
        """RouterOS reboot counters: close sessions that started before one with another counter."""
        groups: dict[tuple[int, str], list[tuple[_Session, str]]] = {}
        for s in self.sessions.values():
            if s.stopped is None and s.id is None:
                key = mikrotik_reboot_key(s.sid)
                if key is not None:
                    groups.setdefault((s.nas_id, key[0]), []).append((s, key[1]))
        for (nas_id, service), members in groups.items():
            self._mikrotik_group(nas_id, service, members)

    def _mikrotik_group(self, nas_id: int, service: str, members: list[tuple[_Session, str]]) -> None:
        store = self.store
        starts: dict[str, list[int]] = {}
        for s, counter in members:
            starts.setdefault(counter, []).append(s.started)
        for values in starts.values():
            values.sort()
        stored = store.mikrotik_counters(nas_id, service)

        def first_other_after(counter: str, after: int) -> int | None:
            best: int | None = None
            for other, values in starts.items():
                if other != counter:
                    i = bisect.bisect_right(values, after)
                    if i < len(values) and (best is None or values[i] < best):
                        best = values[i]
            for other, (first, last) in stored.items():
                if other != counter and last > after and (best is None or first < best):
                    at = first if first > after else store.mikrotik_first_after(nas_id, service, other, after)
                    if at is not None and (best is None or at < best):
                        best = at
            return best

        # New sessions of this batch that a session with another counter started after.
        for s, counter in members:
            at = first_other_after(counter, s.started)
            if at is not None:
                s.close(at, "NAS-Reboot")
        # Stored open sessions that a new session with another counter started after (the earliest
        # such start, when starts of two counters qualify).
        earliest: dict[int, int] = {}
        for counter, values in starts.items():
            if not any(other != counter for other in stored):
                continue
            for row_id, sid, login, started, _ in store.mikrotik_open(nas_id, service, counter, values[-1]):
                i = bisect.bisect_right(values, started)
                if i >= len(values):
                    continue
                at = values[i]
                touched = self.sessions.get((nas_id, sid))
                if touched is not None:  # read and written by this batch: close it there
                    if touched.stopped is None or (touched.cause == "NAS-Reboot" and touched.stopped > at):
                        touched.close(at, "NAS-Reboot")
                    continue
                if row_id not in earliest:
                    self.stopped.append({"nas_id": nas_id, "acct_session_id": sid, "login": login, "terminate_cause": "NAS-Reboot"})
                earliest[row_id] = min(at, earliest.get(row_id, at))
        store.close(sorted(earliest.items()), "NAS-Reboot")

    def _write(self) -> None:
        store = self.store
        new = [s for s in self.sessions.values() if s.id is None]
        conflicts = store.insert([s.insert_row() for s in new])
        if conflicts:
            # Another process inserted these sessions since they were read: merge into its rows.
            again = {key: self.sessions.pop(key) for key in conflicts}
            for key, s in again.items():
                for row in store.load(key[0], [key[1]]):
                    merged = self.sessions[key] = _Session.existing(row)
                    for rec in s.records or ():
                        merged.merge(rec, _us(rec["at"]), self.fit)
            self._apply_reboots()
        store.update([s.update_row() for s in self.sessions.values() if s.id is not None and s.dirty])
        for s in self.sessions.values():
            if s.id is None:
                self.result.started.append(s.summary())
            if s.was_open and s.stopped is not None:
                self.result.stopped.append({**s.summary(), "terminate_cause": s.cause})
        self.result.stopped += self.stopped

    def _close_by_reboots(self) -> None:
        """This batch's reboots, on stored sessions. The sessions of this batch were written by the
        same rule, so the statements below find nothing to change in them."""
        if not self.reboots:
            return
        store = self.store
        store.add_reboots([(nas_id, at) for nas_id, times in self.reboots.items() for at in sorted(times)])
        for nas_id, times in sorted(self.reboots.items()):
            for at in sorted(times):  # the earliest reboot after a start closes it
                for sid, login in store.close_for_reboot(nas_id, at):
                    self.result.stopped.append({"nas_id": nas_id, "acct_session_id": sid, "login": login, "terminate_cause": "NAS-Reboot"})
                store.move_reboot_close(nas_id, at)


def apply(engine: Engine, records: Iterable[dict[str, Any]]) -> ApplyResult:
    """Apply ``records`` in one transaction (all or nothing)."""
    result = ApplyResult()
    with engine.connect() as conn:
        store = store_for(conn)
        store.begin()
        try:
            _Batch(store, result).run(records)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    return result


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot take writes now (down, locked, a deadlock), so the
    whole batch should wait and be retried; False when it is about the records themselves."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    # ProgrammingError: a statement the schema does not match (``aaa db upgrade`` not run): every
    # record would fail alike, so it is not the records' fault either.
    return isinstance(
        exc,
        (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.InternalError, sa_exc.ProgrammingError,
         sa_exc.TimeoutError, sa_exc.DisconnectionError, ConcurrentWrite, OSError),
    )  # fmt: skip


def apply_isolating(
    engine: Engine, records: list[dict[str, Any]], reject: Callable[[list[dict[str, Any]], BaseException], None]
) -> ApplyResult:
    """Apply ``records`` in one transaction; if that fails because of the records (not the database),
    split them in halves and apply each, and so on, until every record that cannot be applied is
    alone: those are handed to ``reject`` (with the error) and counted, the rest are applied.

    A batch with one bad record costs about two transactions per halving (15 for 20,000 records).
    The rules of this module do not depend on order, so applying halves gives what the whole would
    have. Transient errors (:func:`is_transient`) propagate: the caller retries the whole later.
    """
    try:
        return apply(engine, records)
    except Exception as exc:
        if is_transient(exc):
            raise
        if len(records) <= 1:
            reject(records, exc)
            return ApplyResult(applied=len(records), rejected=len(records))
        middle = len(records) // 2
        result = apply_isolating(engine, records[:middle], reject)
        result.add(apply_isolating(engine, records[middle:], reject))
        return result


def close_stale(engine: Engine, now: dt.datetime, *, missed: int, default_interval: int) -> list[dict[str, Any]]:
    """Close open sessions that missed ``missed`` interim updates in a row (``Lost-Service``)."""
    horizon = now - dt.timedelta(seconds=60 * (missed + 1))
    with engine.begin() as conn:
        rows = conn.execute(
            select(_S.c.id, _S.c.nas_id, _S.c.acct_session_id, _S.c.login, _S.c.updated_at, _S.c.interim_interval).where(
                _S.c.stopped_at.is_(None), _S.c.updated_at < horizon
            )
        ).all()
        stale = [r for r in rows if r.updated_at < now - dt.timedelta(seconds=(r.interim_interval or default_interval) * (missed + 1))]
        if stale:
            conn.execute(update(_S).where(_S.c.id.in_([r.id for r in stale])).values(stopped_at=now, terminate_cause="Lost-Service"))
    return [{"nas_id": r.nas_id, "acct_session_id": r.acct_session_id, "login": r.login, "terminate_cause": "Lost-Service"} for r in stale]


def open_sessions(engine: Engine) -> list[tuple[str, int, str, float]]:
    """(login, nas_id, acct_session_id, started at as epoch seconds) of every open session (to seed the
    online index)."""
    with engine.connect() as conn:
        rows = conn.execute(select(_S.c.login, _S.c.nas_id, _S.c.acct_session_id, _S.c.started_at).where(_S.c.stopped_at.is_(None)))
        return [(r[0], r[1], r[2], r[3].timestamp()) for r in rows]
