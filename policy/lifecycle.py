"""The suspension life cycle for non-payment (Anatel RGC, Res. 765/2023).

``active`` -> ``notified`` when an invoice becomes overdue (the notice) -> optionally ``reduced``
(speed cut) after ``reduce_after_days`` -> ``suspended`` ``suspend_after_days`` (default 15) after the
notice -> termination *allowed* ``terminate_after_days`` (default 60) after suspension: that is
recorded in the subscriber's history for an admin to act on, never done automatically. A payment
that leaves no overdue invoice reactivates at once (the rule allows a day); there is no fee.

Transitions go through :func:`aaa.services.subscribers.change_status`, so each is in the history
with its cause, fires ``aaa_subscriber_state_changed`` and queues CoA/Disconnect for open sessions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from aaa.context import Context
from aaa.db.models import Subscriber, SubscriberEvent, SubscriberStatus, utcnow
from aaa.services import subscribers
from policy.entitlement import PolicySettings

NOTIFIED, REDUCED, SUSPENDED, ACTIVE = (
    SubscriberStatus.NOTIFIED.value,
    SubscriberStatus.REDUCED.value,
    SubscriberStatus.SUSPENDED.value,
    SubscriberStatus.ACTIVE.value,
)
OVERDUE_STATES = (NOTIFIED, REDUCED, SUSPENDED)


def settings_of(context: Context) -> PolicySettings:
    return PolicySettings.from_config(context.plugin_config("policy"), context.settings.source)


def on_overdue(context: Context, login: str, invoice_number: str) -> bool:
    """The overdue notice: an active subscriber becomes ``notified``."""
    with context.transaction() as uow:
        sub = uow.session.scalar(select(Subscriber).options(joinedload(Subscriber.plan)).where(Subscriber.login == login))
        if sub is None or sub.status != ACTIVE:
            return False
        return subscribers.change_status(uow, sub, NOTIFIED, actor="billing:overdue", reason=f"invoice {invoice_number} overdue")


def on_paid(context: Context, login: str, invoice_number: str) -> bool:
    """Payment with nothing else overdue: back to ``active`` now, and no trust unlock left pending."""
    with context.transaction() as uow:
        sub = uow.session.scalar(select(Subscriber).options(joinedload(Subscriber.plan)).where(Subscriber.login == login))
        if sub is None or sub.status not in OVERDUE_STATES:
            return False
        sub.trust_unlock_until = None
        return subscribers.change_status(uow, sub, ACTIVE, actor="payment", reason=f"invoice {invoice_number} paid")


def _since(kind_value: str) -> Any:
    """Per subscriber, when they last entered status ``kind_value`` (from the history)."""
    return (
        select(SubscriberEvent.subscriber_id, func.max(SubscriberEvent.at).label("at"))
        .where(SubscriberEvent.kind == "status", SubscriberEvent.new_value == kind_value)
        .group_by(SubscriberEvent.subscriber_id)
        .subquery()
    )


def evaluate(context: Context, now: dt.datetime | None = None) -> dict[str, int]:
    """The daily job: move subscribers along the life cycle by the dates in their history (idempotent)."""
    now = now or utcnow()
    rules = settings_of(context)
    counts = {"reduced": 0, "suspended": 0, "termination_allowed": 0}
    with context.transaction() as uow:
        s = uow.session
        notice = _since(NOTIFIED)
        rows = s.execute(
            select(Subscriber, notice.c.at).options(joinedload(Subscriber.plan))
            .join(notice, notice.c.subscriber_id == Subscriber.id)
            .where(Subscriber.status.in_((NOTIFIED, REDUCED)))
        ).all()  # fmt: skip
        for sub, noticed_at in rows:
            days = (now - noticed_at).days
            if days >= rules.suspend_after_days:
                subscribers.change_status(uow, sub, SUSPENDED, actor="job:lifecycle", reason=f"{days} days after the overdue notice")
                counts["suspended"] += 1
            elif rules.reduce_after_days and sub.status == NOTIFIED and days >= rules.reduce_after_days:
                subscribers.change_status(uow, sub, REDUCED, actor="job:lifecycle", reason=f"{days} days after the overdue notice")
                counts["reduced"] += 1
        flagged = select(SubscriberEvent.subscriber_id).where(SubscriberEvent.kind == "termination-allowed")
        horizon = now - dt.timedelta(days=rules.terminate_after_days)
        overdue = s.scalars(
            select(Subscriber).where(Subscriber.status == SUSPENDED, Subscriber.status_changed_at <= horizon, Subscriber.id.not_in(flagged))
        ).all()
        for sub in overdue:
            days = (now - sub.status_changed_at).days
            reason = f"suspended for {days} days: may be terminated, with prior notice (Res. 765/2023)"
            subscribers.record_event(uow, sub, kind="termination-allowed", old=None, new=None, actor="job:lifecycle", reason=reason)
            counts["termination_allowed"] += 1
    return counts
