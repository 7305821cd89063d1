"""Plans: speeds, burst, pools, timeouts, data limit and price."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select

from aaa import validate
from aaa.context import Context
from aaa.db.models import AcctSession, Plan, Subscriber
from aaa.errors import ConflictError, ValidationError
from aaa.rates import format_rate, parse_pair, parse_rate, parse_size
from aaa.services import audit
from aaa.services.common import ensure_free, find
from aaa.services.subscribers import queue_session

_OPTIONAL_INTS = ("session_timeout", "idle_timeout", "interim_interval", "burst_time_seconds")


def as_dict(plan: Plan, subscribers: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "download": format_rate(plan.download_bps),
        "upload": format_rate(plan.upload_bps),
        "download_bps": plan.download_bps,
        "upload_bps": plan.upload_bps,
        "burst_download_bps": plan.burst_download_bps,
        "burst_upload_bps": plan.burst_upload_bps,
        "burst_threshold_download_bps": plan.burst_threshold_download_bps,
        "burst_threshold_upload_bps": plan.burst_threshold_upload_bps,
        "burst_time_seconds": plan.burst_time_seconds,
        "priority": plan.priority,
        "price": str(plan.price),
        "ipv4_pool": plan.ipv4_pool,
        "ipv6_pool": plan.ipv6_pool,
        "delegated_ipv6_pool": plan.delegated_ipv6_pool,
        "session_timeout": plan.session_timeout,
        "idle_timeout": plan.idle_timeout,
        "interim_interval": plan.interim_interval,
        "data_limit_bytes": plan.data_limit_bytes,
        "mikrotik_group": plan.mikrotik_group,
    }
    if subscribers is not None:
        data["subscribers"] = subscribers
    return data


def parse_price(text: str | Decimal) -> Decimal:
    try:
        value = Decimal(str(text).replace(",", "."))
    except InvalidOperation:
        raise ValidationError(f"invalid price {text!r}: use a number such as 99.90") from None
    if value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValidationError(f"invalid price {text!r}: a non-negative amount in reais with at most 2 decimals")
    return value.quantize(Decimal("0.01"))


def _apply(plan: Plan, fields: dict[str, Any]) -> None:
    """Validate and set plan fields given as admins type them (rates as ``100M``, sizes as ``500G``)."""
    for key, value in fields.items():
        if value is None:
            continue
        if key == "down":
            plan.download_bps = parse_rate(value, what="download rate")
        elif key == "up":
            plan.upload_bps = parse_rate(value, what="upload rate")
        elif key == "burst":
            plan.burst_download_bps, plan.burst_upload_bps = parse_pair(value, what="burst rate")
        elif key == "burst_threshold":
            plan.burst_threshold_download_bps, plan.burst_threshold_upload_bps = parse_pair(value, what="burst threshold")
        elif key == "priority":
            if not 1 <= int(value) <= 8:
                raise ValidationError(f"invalid priority {value}: 1 (highest) to 8 (lowest)")
            plan.priority = int(value)
        elif key == "price":
            plan.price = parse_price(value)
        elif key == "data_limit":
            plan.data_limit_bytes = parse_size(value)
        elif key in _OPTIONAL_INTS:
            setattr(plan, key, validate.positive(int(value), what=key.replace("_", " ")))
        elif key in ("ipv4_pool", "ipv6_pool", "delegated_ipv6_pool", "mikrotik_group"):
            setattr(plan, key, validate.name(value, what=key.replace("_", " ")) if value else None)
        else:
            raise ValidationError(f"unknown plan field {key!r}")
    if plan.burst_download_bps is not None and plan.burst_download_bps < plan.download_bps:
        raise ValidationError("invalid burst rate: must be at least the plan's rate")
    if plan.burst_upload_bps is not None and plan.burst_upload_bps < plan.upload_bps:
        raise ValidationError("invalid burst rate: must be at least the plan's rate")


def add_plan(ctx: Context, *, name: str, down: str, up: str, actor: str, **fields: Any) -> dict[str, Any]:
    name = validate.name(name, what="plan name")
    plan = Plan(name=name, price=Decimal("0.00"))
    _apply(plan, {"down": down, "up": up, **fields})
    with ctx.transaction() as uow:
        ensure_free(uow.session, Plan, Plan.name, name, "plan")
        uow.session.add(plan)
        uow.session.flush()
        audit.record(uow, actor=actor, action="plan.add", target=name)
        return as_dict(plan, 0)


def _counts(session: Any) -> dict[int, int]:
    rows = session.execute(select(Subscriber.plan_id, func.count()).group_by(Subscriber.plan_id)).all()
    return {plan_id: int(n) for plan_id, n in rows}


def list_plans(ctx: Context) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        counts = _counts(s)
        return [as_dict(p, counts.get(p.id, 0)) for p in s.scalars(select(Plan).order_by(Plan.name))]


def show_plan(ctx: Context, name: str) -> dict[str, Any]:
    with ctx.sessions() as s:
        plan = find(s, Plan, Plan.name, name, "plan")
        return as_dict(plan, _counts(s).get(plan.id, 0))


def update_plan(ctx: Context, name: str, *, actor: str, **fields: Any) -> dict[str, Any]:
    """Change a plan. Open sessions of its subscribers are queued for a CoA with the new values (a
    plan used by thousands is carried out by the outbox with bounded concurrency); the result's
    ``outbox`` lists the queued rows."""
    with ctx.transaction() as uow:
        plan = find(uow.session, Plan, Plan.name, name, "plan")
        _apply(plan, fields)
        uow.session.flush()
        sessions = uow.session.execute(
            select(AcctSession, Subscriber.id)
            .join(Subscriber, Subscriber.login == AcctSession.login)
            .where(Subscriber.plan_id == plan.id, AcctSession.stopped_at.is_(None))
        ).all()
        for row, subscriber_id in sessions:
            queue_session(uow, row, subscriber_id, cause="plan", tag=f"plan-{plan.id}-{plan.change_seq}")
        changed = sorted(k for k, v in fields.items() if v is not None)
        audit.record(uow, actor=actor, action="plan.update", target=name, detail={"fields": changed, "sessions": len(sessions)})
        return {**as_dict(plan), "outbox": uow.outbox_ids}


def delete_plan(ctx: Context, name: str, *, actor: str) -> None:
    with ctx.transaction() as uow:
        plan = find(uow.session, Plan, Plan.name, name, "plan")
        users = _counts(uow.session).get(plan.id, 0)
        if users:
            raise ConflictError(f"plan {name!r} is used by {users} subscriber(s); move them first")
        uow.session.delete(plan)
        audit.record(uow, actor=actor, action="plan.delete", target=name)
