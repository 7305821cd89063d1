"""Applying accounting records to ``sessions``: batched, idempotent, in journal order.

Counters in Interim-Update and Stop are cumulative (RFC 2866), so applying a record twice, or an
older one after a newer one, never double-counts: a session keeps the highest counters it was told.
A Start for a session that exists is ignored; an Interim-Update or Stop for one that does not
creates it; nothing reopens a stopped session. Accounting-On/Off closes every open session of that
NAS (``NAS-Reboot``), and so does a Start whose MikroTik Acct-Session-Id carries a new reboot
counter (its third character). :func:`close_stale` closes sessions that missed their interim updates.
Stopped sessions are closed, never deleted (Marco Civil keeps them a year).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, insert, select, tuple_, update

from aaa.db.models import AcctSession

CHUNK = 400
_COUNTERS = ("session_time", "input_octets", "output_octets", "input_packets", "output_packets")
_S = cast(Table, AcctSession.__table__)


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


@dataclass
class ApplyResult:
    started: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0


@dataclass
class _State:
    row_id: int | None
    values: dict[str, Any]
    new: bool
    dirty: bool = False
    was_stopped: bool = False


def mikrotik_reboot_key(session_id: str) -> tuple[str, str] | None:
    """(service prefix, reboot counter) of a RouterOS Acct-Session-Id such as ``81a00003``."""
    if len(session_id) == 8 and all(c in "0123456789abcdefABCDEF" for c in session_id):
        return session_id[:2].lower(), session_id[2].lower()
    return None


def _row_values(rec: dict[str, Any]) -> dict[str, Any]:
    at = _ts(rec["at"])
    session_time = int(rec.get("time") or 0)
    return {
        "nas_id": rec["nas"],
        "acct_session_id": rec["sid"],
        "acct_unique_id": rec.get("uid"),
        "login": rec.get("login") or "",
        "subscriber_id": rec.get("sub"),
        "framed_ip": rec.get("ip"),
        "framed_ipv6_prefix": rec.get("ip6"),
        "calling_station_id": rec.get("csid"),
        "called_station_id": rec.get("called"),
        "nas_port_id": rec.get("port"),
        "started_at": at - dt.timedelta(seconds=session_time) if rec["t"] != "start" else at,
        "updated_at": at,
        "stopped_at": None,
        "session_time": session_time,
        "input_octets": int(rec.get("in") or 0),
        "output_octets": int(rec.get("out") or 0),
        "input_packets": int(rec.get("pin") or 0),
        "output_packets": int(rec.get("pout") or 0),
        "terminate_cause": None,
        "interim_interval": rec.get("interim"),
        "class": rec.get("class"),
    }


def _merge(state: _State, rec: dict[str, Any]) -> None:
    kind = rec["t"]
    v = state.values
    if kind == "start" or state.was_stopped or v["stopped_at"] is not None:
        return
    at = _ts(rec["at"])
    for name, key in (("session_time", "time"), ("input_octets", "in"), ("output_octets", "out"), ("input_packets", "pin"), ("output_packets", "pout")):
        value = int(rec.get(key) or 0)
        if value > (v[name] or 0):
            v[name] = value
    if at > v["updated_at"]:
        v["updated_at"] = at
    if rec.get("ip") and not v.get("framed_ip"):
        v["framed_ip"] = rec["ip"]
    if kind == "stop":
        v["stopped_at"] = at
        v["terminate_cause"] = rec.get("cause") or "Unknown"
    state.dirty = True


def _load(conn: Connection, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], _State]:
    found: dict[tuple[int, str], _State] = {}
    cols = [_S.c.id, _S.c.nas_id, _S.c.acct_session_id, _S.c.stopped_at, _S.c.terminate_cause, _S.c.updated_at, _S.c.framed_ip, _S.c.login, *(_S.c[c] for c in _COUNTERS)]
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        rows = conn.execute(select(*cols).where(tuple_(_S.c.nas_id, _S.c.acct_session_id).in_(chunk)))
        for row in rows:
            values = dict(row._mapping)
            row_id = values.pop("id")
            found[(row.nas_id, row.acct_session_id)] = _State(row_id, values, new=False, was_stopped=row.stopped_at is not None)
    return found


def _close_open(conn: Connection, where: Any, at: dt.datetime, cause: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(_S.c.id, _S.c.nas_id, _S.c.acct_session_id, _S.c.login).where(and_(_S.c.stopped_at.is_(None), where))).all()
    if rows:
        conn.execute(update(_S).where(_S.c.id.in_([r.id for r in rows])).values(stopped_at=at, terminate_cause=cause))
    return [{"nas_id": r.nas_id, "acct_session_id": r.acct_session_id, "login": r.login, "terminate_cause": cause} for r in rows]


def _apply_run(conn: Connection, records: list[dict[str, Any]], result: ApplyResult) -> None:
    """Records with no Accounting-On/Off among them."""
    keys = list(dict.fromkeys((r["nas"], r["sid"]) for r in records))
    states = _load(conn, keys)
    reboots: dict[tuple[int, str], tuple[str, float]] = {}
    for rec in records:
        key = (rec["nas"], rec["sid"])
        state = states.get(key)
        if state is None:
            state = states[key] = _State(None, _row_values(rec), new=True)
            if rec["t"] == "stop":
                _merge(state, rec)
            if rec["t"] == "start":
                reboot = mikrotik_reboot_key(rec["sid"])
                if reboot:
                    reboots[(rec["nas"], reboot[0])] = (reboot[1], rec["at"])
        else:
            _merge(state, rec)
    new_rows = [s.values for s in states.values() if s.new]
    if new_rows:
        conn.execute(insert(_S), new_rows)
    changed = [s for s in states.values() if not s.new and s.dirty]
    if changed:
        stmt = (
            update(_S)
            .where(_S.c.id == bindparam("_id"))
            .values({c: bindparam(f"_{c}") for c in (*_COUNTERS, "updated_at", "stopped_at", "terminate_cause", "framed_ip")})
        )
        conn.execute(
            stmt,
            [
                {"_id": s.row_id, **{f"_{c}": s.values[c] for c in (*_COUNTERS, "updated_at", "stopped_at", "terminate_cause", "framed_ip")}}
                for s in changed
            ],
        )
    # After the batch's own rows are written, so that sessions started or updated earlier in this batch
    # are closed too (and an update above cannot reopen a session this closed).
    for (nas_id, service), (counter, at) in reboots.items():
        result.stopped += _close_open(
            conn,
            and_(
                _S.c.nas_id == nas_id,
                func.length(_S.c.acct_session_id) == 8,
                func.lower(func.substr(_S.c.acct_session_id, 1, 2)) == service,
                func.lower(func.substr(_S.c.acct_session_id, 3, 1)) != counter,
            ),
            _ts(at),
            "NAS-Reboot",
        )
    for s in states.values():
        summary = {"nas_id": s.values["nas_id"], "acct_session_id": s.values.get("acct_session_id"), "login": s.values.get("login")}
        if s.new:
            result.started.append(summary)
        if s.values.get("stopped_at") is not None and not s.was_stopped:
            result.stopped.append({**summary, "terminate_cause": s.values.get("terminate_cause")})


def apply(engine: Engine, records: Iterable[dict[str, Any]]) -> ApplyResult:
    """Apply ``records`` (journal order) in one transaction."""
    result = ApplyResult()
    run: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for rec in records:
            result.applied += 1
            if rec["t"] in ("on", "off"):
                if run:
                    _apply_run(conn, run, result)
                    run = []
                result.stopped += _close_open(conn, _S.c.nas_id == rec["nas"], _ts(rec["at"]), "NAS-Reboot")
            else:
                run.append(rec)
        if run:
            _apply_run(conn, run, result)
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


def open_sessions(engine: Engine) -> list[tuple[str, int, str]]:
    """(login, nas_id, acct_session_id) of every open session (to seed the online index)."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(_S.c.login, _S.c.nas_id, _S.c.acct_session_id).where(_S.c.stopped_at.is_(None)))]
