"""Read-only summaries for admin screens: the dashboard counters, authentications per minute and a
subscriber's outbox rows.

Counting is done in SQL (``COUNT(*)`` on indexed columns) so the dashboard stays cheap on
100,000 subscribers and many open sessions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from aaa.context import Context
from aaa.db.models import AcctSession, AuthLog, Nas, Outbox, OutboxStatus, Subscriber, utcnow
from aaa.services import outbox
from aaa.services.common import find


def dashboard(ctx: Context) -> dict[str, Any]:
    """Subscribers by status, sessions online, outbox rows by status (backlog, failed) and NAS count."""
    with ctx.sessions() as s:
        by_status = {status: int(n) for status, n in s.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status))}
        online = int(s.scalar(select(func.count()).select_from(AcctSession).where(AcctSession.stopped_at.is_(None))) or 0)
        queue = {status: int(n) for status, n in s.execute(select(Outbox.status, func.count()).group_by(Outbox.status))}
        nas_count = int(s.scalar(select(func.count()).select_from(Nas)) or 0)
    backlog = queue.get(OutboxStatus.PENDING.value, 0) + queue.get(OutboxStatus.RUNNING.value, 0)
    failed = queue.get(OutboxStatus.FAILED.value, 0) + queue.get(OutboxStatus.DEAD.value, 0)
    return {
        "subscribers": by_status,
        "subscribers_total": sum(by_status.values()),
        "sessions_online": online,
        "outbox": queue,
        "outbox_backlog": backlog,
        "outbox_failed": failed,
        "nas": nas_count,
    }


def subscriber_outbox(ctx: Context, login: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest outbox rows queued for a subscriber (CoA, Disconnect, messages), newest first."""
    with ctx.sessions() as s:
        sub = find(s, Subscriber, Subscriber.login, login, "subscriber")
        return [outbox.as_dict(r) for r in outbox.for_subscriber(s, sub.id, limit=limit)]


def auth_per_minute(ctx: Context, *, minutes: int = 60, now: dt.datetime | None = None) -> dict[str, list[int]]:
    """Accepts and rejects in each of the last ``minutes`` minutes, oldest first (for a sparkline).

    Counted in SQL, grouped by minute and result, over the ``auth_log.at`` index: an hour of a busy
    server is millions of rows, which must not travel to Python every refresh."""
    end = (now or utcnow()).astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=minutes)
    counts: dict[str, list[int]] = {"accept": [0] * minutes, "reject": [0] * minutes}
    with ctx.sessions() as s:
        sqlite = s.get_bind().dialect.name == "sqlite"
        minute = func.strftime("%Y-%m-%d %H:%M", AuthLog.at) if sqlite else func.date_trunc("minute", AuthLog.at)
        query = (
            select(minute, AuthLog.result, func.count())
            .where(AuthLog.at >= start, AuthLog.at < end)
            .group_by(minute, AuthLog.result)
        )
        for bucket, result, n in s.execute(query):
            if result not in counts:
                continue
            at = dt.datetime.strptime(bucket, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC) if isinstance(bucket, str) else bucket
            index = int((at - start).total_seconds() // 60)
            if 0 <= index < minutes:
                counts[result][index] += n
    return counts
