"""Accounting sessions as admins see them: online now, or the history of a login."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from aaa.context import Context
from aaa.db.models import AcctSession, Nas, Plan, Subscriber
from aaa.services.subscribers import session_dict


def list_sessions(
    ctx: Context,
    *,
    online: bool = False,
    login: str | None = None,
    nas: str | None = None,
    limit: int = 200,
    plan: str | None = None,
    ip: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first; filtered by login, NAS name, the subscriber's plan name and framed IP (exact)."""
    query = select(AcctSession, Nas.name).join(Nas, AcctSession.nas_id == Nas.id).order_by(AcctSession.started_at.desc())
    if online:
        query = query.where(AcctSession.stopped_at.is_(None))
    if login:
        query = query.where(AcctSession.login == login)
    if nas:
        query = query.where(Nas.name == nas)
    if plan:
        on_plan = select(Subscriber.login).join(Plan, Subscriber.plan_id == Plan.id).where(Plan.name == plan)
        query = query.where(AcctSession.login.in_(on_plan))
    if ip:
        query = query.where(AcctSession.framed_ip == ip.strip())
    with ctx.sessions() as s:
        rows = s.execute(query.limit(limit)).all()
        return [{**session_dict(row), "nas": nas_name} for row, nas_name in rows]
