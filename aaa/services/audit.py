"""The audit log: a hash chain of admin actions and accesses to personal data (LGPD)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select

from aaa.context import Context, UnitOfWork
from aaa.db.models import AuditLog, utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, at: str, actor: str, action: str, target: str | None, detail: Any) -> str:
    body = json.dumps([prev_hash, at, actor, action, target, detail], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def record(uow: UnitOfWork, *, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append one entry, chained to the previous one, in the caller's transaction."""
    session = uow.session
    query = select(AuditLog.hash).order_by(AuditLog.id.desc()).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    prev = session.execute(query).scalar_one_or_none() or GENESIS
    at = utcnow()
    entry = AuditLog(at=at, actor=actor, action=action, target=target, detail=detail, prev_hash=prev)
    entry.hash = _digest(prev, at.isoformat(), actor, action, target, detail)
    session.add(entry)
    session.flush()


def verify(ctx: Context) -> tuple[bool, int | None]:
    """(True, None) when the chain is intact, else (False, id of the first entry that does not fit)."""
    prev = GENESIS
    with ctx.sessions() as session:
        for entry in session.scalars(select(AuditLog).order_by(AuditLog.id)):
            expected = _digest(prev, entry.at.isoformat(), entry.actor, entry.action, entry.target, entry.detail)
            if entry.prev_hash != prev or entry.hash != expected:
                return False, entry.id
            prev = entry.hash
    return True, None


def list_entries(ctx: Context, *, limit: int = 100) -> list[dict[str, Any]]:
    with ctx.sessions() as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)).all()
        return [
            {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}
            for r in rows
        ]
