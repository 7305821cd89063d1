"""Subscribers (logins): add, list, show, update, delete, and the state changes that reach routers.

A change of status or plan is recorded in ``subscriber_events`` with who caused it, fires its event
after commit, and queues one ``radius.reauthorize`` outbox row per open session, in the same
transaction, for the outbox worker in ``aaa serve`` to turn into CoA or Disconnect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from aaa import validate
from aaa.context import Context, UnitOfWork
from aaa.db.models import AcctSession, Customer, Plan, Subscriber, SubscriberEvent, SubscriberStatus, utcnow
from aaa.documents import validate_document
from aaa.errors import ConflictError, NotFoundError, ValidationError
from aaa.services import audit, outbox
from aaa.services.common import ensure_free, find, iso, references
from aaa.services.customers import normalize_phone

STATUSES = tuple(s.value for s in SubscriberStatus)
REAUTHORIZE = "radius.reauthorize"
DISCONNECT = "disconnect"  # the cause of a reauthorize row that must end the session whatever the policy says


def as_dict(sub: Subscriber) -> dict[str, Any]:
    """Never includes password material."""
    return {
        "id": sub.id,
        "login": sub.login,
        "plan": sub.plan.name,
        "status": sub.status,
        "static_ipv4": sub.static_ipv4,
        "delegated_ipv6_prefix": sub.delegated_ipv6_prefix,
        "mac_binding": sub.mac_binding,
        "simultaneous_use": sub.simultaneous_use,
        "customer_id": sub.customer_id,
        "customer_name": sub.customer.name if sub.customer else None,
        "status_changed_at": iso(sub.status_changed_at),
        "trust_unlock_until": iso(sub.trust_unlock_until),
        "created_at": iso(sub.created_at),
    }


def session_dict(row: AcctSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "nas_id": row.nas_id,
        "acct_session_id": row.acct_session_id,
        "login": row.login,
        "framed_ip": row.framed_ip,
        "calling_station_id": row.calling_station_id,
        "started_at": iso(row.started_at),
        "updated_at": iso(row.updated_at),
        "stopped_at": iso(row.stopped_at),
        "session_time": row.session_time,
        "input_octets": row.input_octets,
        "output_octets": row.output_octets,
        "terminate_cause": row.terminate_cause,
    }


def _load(session: Session, login: str) -> Subscriber:
    sub = session.scalars(
        select(Subscriber).options(joinedload(Subscriber.plan), joinedload(Subscriber.customer)).where(Subscriber.login == login)
    ).first()
    if sub is None:
        raise NotFoundError(f"subscriber {login!r} not found")
    return sub


def _password(text: str | None) -> str | None:
    if text is None:
        return None
    if not 1 <= len(text.encode()) <= 128:
        raise ValidationError("invalid password: 1-128 bytes")
    return text


def _apply(ctx: Context, session: Session, sub: Subscriber, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if value is None:
            continue
        if key == "password":
            sub.password_enc = ctx.vault.encrypt(_password(value) or "")
        elif key == "plan":
            sub.plan = find(session, Plan, Plan.name, value, "plan")
        elif key == "ip":
            ip = validate.ipv4(value, what="static IP") if value else None
            if ip:
                ensure_free(session, Subscriber, Subscriber.static_ipv4, ip, "static IP", exclude_id=sub.id)
            sub.static_ipv4 = ip
        elif key == "mac":
            sub.mac_binding = validate.mac(value) if value else None
        elif key == "ipv6_prefix":
            sub.delegated_ipv6_prefix = validate.ipv6_prefix(value) if value else None
        elif key == "simultaneous_use":
            sub.simultaneous_use = validate.positive(int(value), what="simultaneous use") or 1
        elif key == "customer_id":
            if session.get(Customer, int(value)) is None:
                raise NotFoundError(f"customer {value} not found")
            sub.customer_id = int(value)
        else:
            raise ValidationError(f"unknown subscriber field {key!r}")


def create(ctx: Context, uow: UnitOfWork, *, login: str, fields: dict[str, Any]) -> Subscriber:
    """A new subscriber in the caller's transaction."""
    login = validate.login(login)
    ensure_free(uow.session, Subscriber, Subscriber.login, login, "subscriber")
    if "plan" not in fields or not fields["plan"]:
        raise ValidationError("a plan is required")
    sub = Subscriber(login=login, status=SubscriberStatus.ACTIVE.value, simultaneous_use=1)
    _apply(ctx, uow.session, sub, fields)
    uow.session.add(sub)
    uow.session.flush()
    return sub


def add_subscriber(ctx: Context, *, login: str, actor: str, **fields: Any) -> dict[str, Any]:
    """Fields: password, plan (required), ip, mac, ipv6_prefix, simultaneous_use, customer_id."""
    with ctx.transaction() as uow:
        sub = create(ctx, uow, login=login, fields=fields)
        audit.record(uow, actor=actor, action="subscriber.add", target=sub.login)
        return as_dict(sub)


def _document_key(text: str) -> str | None:
    try:
        return validate_document(text)[1]
    except ValidationError:
        return None


def _phone_key(text: str) -> str | None:
    try:
        return normalize_phone(text)
    except ValidationError:
        return None


def list_subscribers(
    ctx: Context,
    *,
    status: str | None = None,
    plan: str | None = None,
    search: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Filtered by status and plan; ``search`` matches login, customer name, IP, MAC, or exactly a
    customer's CPF/CNPJ or phone (through their keyed hashes)."""
    query = select(Subscriber).options(joinedload(Subscriber.plan), joinedload(Subscriber.customer)).order_by(Subscriber.login)
    if status:
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        query = query.where(Subscriber.status == status)
    if plan:
        query = query.join(Plan, Subscriber.plan_id == Plan.id).where(Plan.name == plan)
    if search:
        text = search.strip()
        conditions = [Subscriber.login.contains(text), Subscriber.static_ipv4 == text]
        try:
            conditions.append(Subscriber.mac_binding == validate.mac(text))
        except ValidationError:
            pass
        customer = [func.lower(Customer.name).contains(text.lower())]
        for kind, normalize in (("document", _document_key), ("phone", _phone_key)):
            key = normalize(text)
            if key is not None:
                column = Customer.document_hash if kind == "document" else Customer.phone_hash
                customer.append(column == ctx.vault.lookup_hash(key))
        conditions.append(Subscriber.customer_id.in_(select(Customer.id).where(or_(*customer))))
        query = query.where(or_(*conditions))
    with ctx.sessions() as s:
        return [as_dict(sub) for sub in s.scalars(query.limit(limit).offset(offset)).unique()]


def show_subscriber(ctx: Context, login: str, *, sessions: int = 20) -> dict[str, Any]:
    """The subscriber with its history (status and plan changes), recent sessions, and the newest
    outbox rows queued for it: whether each change has reached the router yet (``status`` pending,
    running, done or dead; what was sent and how the router answered)."""
    with ctx.sessions() as s:
        sub = _load(s, login)
        data = as_dict(sub)
        events = s.scalars(
            select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.id).order_by(SubscriberEvent.id.desc())
        )
        data["history"] = [
            {"at": iso(e.at), "kind": e.kind, "from": e.old_value, "to": e.new_value, "actor": e.actor, "reason": e.reason}
            for e in events
        ]
        recent = s.scalars(
            select(AcctSession).where(AcctSession.login == sub.login).order_by(AcctSession.started_at.desc()).limit(sessions)
        )
        data["sessions"] = [session_dict(r) for r in recent]
        data["outbox"] = [outbox.summary(r) for r in outbox.for_subscriber(s, sub.id)]
        return data


def update_subscriber(ctx: Context, login: str, *, actor: str, **fields: Any) -> dict[str, Any]:
    """Fields: password, ip, mac, ipv6_prefix, simultaneous_use, customer_id (plan: use set_plan)."""
    if "plan" in fields and fields["plan"] is not None:
        raise ValidationError("use set-plan to change a subscriber's plan")
    with ctx.transaction() as uow:
        sub = _load(uow.session, login)
        _apply(ctx, uow.session, sub, fields)
        audit.record(uow, actor=actor, action="subscriber.update", target=login, detail={"fields": sorted(k for k, v in fields.items() if v is not None)})
        return as_dict(sub)


#: How :func:`delete_subscriber` names the records that keep a subscriber (tables of other packages).
RECORD_NAMES = {"invoices": "invoice(s)", "billing_charges": "one-off charge(s)"}


def delete_subscriber(ctx: Context, login: str, *, actor: str) -> None:
    """Delete a subscriber who is offline and has no billing records; ConflictError (one line) if it
    is online or invoices or charges refer to it, since those are kept (suspend it instead)."""
    with ctx.transaction() as uow:
        sub = _load(uow.session, login)
        if uow.session.scalar(select(AcctSession.id).where(AcctSession.login == login, AcctSession.stopped_at.is_(None)).limit(1)):
            raise ConflictError(f"subscriber {login!r} is online; disconnect or suspend first")
        kept = references(uow.session, sub)
        if kept:
            what = ", ".join(f"{n} {RECORD_NAMES.get(table, f'row(s) of {table}')}" for table, n in sorted(kept.items()))
            raise ConflictError(f"subscriber {login!r} has {what} on record and cannot be deleted; suspend it instead")
        uow.session.delete(sub)
        audit.record(uow, actor=actor, action="subscriber.delete", target=login)


def open_sessions(session: Session, login: str) -> list[AcctSession]:
    return list(session.scalars(select(AcctSession).where(AcctSession.login == login, AcctSession.stopped_at.is_(None))))


def queue_session(uow: UnitOfWork, row: AcctSession, subscriber_id: int | None, *, cause: str, tag: str) -> bool:
    """One ``radius.reauthorize`` row for an open session; ``tag`` makes the idempotency key."""
    payload = {
        "session_id": row.id,
        "login": row.login,
        "acct_session_id": row.acct_session_id,
        "framed_ip": row.framed_ip,
        "nas_id": row.nas_id,
        "cause": cause,
    }
    key = f"{REAUTHORIZE}:{row.id}:{tag}"
    return outbox.enqueue(uow, kind=REAUTHORIZE, key=key, payload=payload, nas_id=row.nas_id, subscriber_id=subscriber_id) is not None


def queue_reauthorize(uow: UnitOfWork, sub: Subscriber, *, cause: str, event_id: int) -> int:
    """One outbox row per open session of ``sub``; returns how many were queued."""
    return sum(queue_session(uow, row, sub.id, cause=cause, tag=str(event_id)) for row in open_sessions(uow.session, sub.login))


def record_event(uow: UnitOfWork, sub: Subscriber, *, kind: str, old: str | None, new: str | None, actor: str, reason: str | None) -> SubscriberEvent:
    event = SubscriberEvent(subscriber_id=sub.id, kind=kind, old_value=old, new_value=new, actor=actor, reason=reason)
    uow.session.add(event)
    uow.session.flush()
    return event


def change_status(uow: UnitOfWork, sub: Subscriber, new_status: str, *, actor: str, reason: str | None = None) -> bool:
    """Move ``sub`` to ``new_status`` in the caller's transaction; False if it already was there."""
    if new_status not in STATUSES:
        raise ValidationError(f"unknown status {new_status!r}: one of {', '.join(STATUSES)}")
    old = sub.status
    if old == new_status:
        return False
    sub.status = new_status
    sub.status_changed_at = utcnow()
    event = record_event(uow, sub, kind="status", old=old, new=new_status, actor=actor, reason=reason)
    queued = queue_reauthorize(uow, sub, cause=f"status:{new_status}", event_id=event.id)
    uow.emit("aaa_subscriber_state_changed", subscriber=as_dict(sub), old_status=old, new_status=new_status, actor=actor, reason=reason)
    audit.record(uow, actor=actor, action=f"subscriber.status.{new_status}", target=sub.login, detail={"from": old, "reason": reason, "sessions": queued})
    return True


def set_status(ctx: Context, login: str, new_status: str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Change the status; the result's ``outbox`` lists the rows queued for open sessions."""
    with ctx.transaction() as uow:
        sub = _load(uow.session, login)
        change_status(uow, sub, new_status, actor=actor, reason=reason)
        return {**as_dict(sub), "outbox": uow.outbox_ids}


def suspend(ctx: Context, login: str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    return set_status(ctx, login, SubscriberStatus.SUSPENDED.value, actor=actor, reason=reason or "suspended by admin")


def reactivate(ctx: Context, login: str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    return set_status(ctx, login, SubscriberStatus.ACTIVE.value, actor=actor, reason=reason or "reactivated by admin")


def set_plan(ctx: Context, login: str, plan: str, *, actor: str) -> dict[str, Any]:
    """Move a subscriber to another plan; open sessions get it through CoA (or reconnect)."""
    with ctx.transaction() as uow:
        sub = _load(uow.session, login)
        new_plan = find(uow.session, Plan, Plan.name, plan, "plan")
        old_name = sub.plan.name
        if new_plan.id == sub.plan_id:
            return {**as_dict(sub), "outbox": []}
        sub.plan = new_plan
        event = record_event(uow, sub, kind="plan", old=old_name, new=new_plan.name, actor=actor, reason=None)
        queued = queue_reauthorize(uow, sub, cause="plan", event_id=event.id)
        uow.emit("aaa_subscriber_plan_changed", subscriber=as_dict(sub), old_plan=old_name, new_plan=new_plan.name, actor=actor)
        audit.record(uow, actor=actor, action="subscriber.set_plan", target=login, detail={"from": old_name, "to": new_plan.name, "sessions": queued})
        return {**as_dict(sub), "outbox": uow.outbox_ids}


def disconnect(ctx: Context, login: str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """End every open session of ``login`` now (Disconnect-Request); the router may log it in again."""
    with ctx.transaction() as uow:
        sub = _load(uow.session, login)
        event = record_event(uow, sub, kind="disconnect", old=None, new=None, actor=actor, reason=reason)
        queued = queue_reauthorize(uow, sub, cause=DISCONNECT, event_id=event.id)
        audit.record(uow, actor=actor, action="subscriber.disconnect", target=login, detail={"sessions": queued})
        return {**as_dict(sub), "outbox": uow.outbox_ids}


def count_by_status(ctx: Context) -> dict[str, int]:
    with ctx.sessions() as s:
        rows = s.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all()
    return {status: int(n) for status, n in rows}


SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def billing_cycle(now: dt.datetime) -> str:
    """The billing cycle (month, in São Paulo time) of ``now``: ``2026-11``."""
    return now.astimezone(SAO_PAULO).strftime("%Y-%m")


def trust_unlock(ctx: Context, login: str, *, actor: str, days: int = 3, now: dt.datetime | None = None) -> dict[str, Any]:
    """Unlock a suspended subscriber for ``days`` on trust, once per billing cycle.

    The status stays ``suspended``: the policy serves the plan while ``trust_unlock_until`` is in the
    future, and :func:`expire_trust_unlocks` sends the session back to the suspended treatment when it
    passes unpaid (payment reactivates for good).
    """
    now = now or utcnow()
    if not 1 <= days <= 15:
        raise ValidationError(f"invalid trust-unlock period {days}: 1-15 days")
    with ctx.transaction() as uow:
        sub = _load(uow.session, login)
        if sub.status != SubscriberStatus.SUSPENDED.value:
            raise ValidationError(f"subscriber {login!r} is {sub.status}, not suspended: nothing to unlock")
        cycle = billing_cycle(now)
        if sub.trust_unlock_cycle == cycle:
            raise ConflictError(f"subscriber {login!r} already used the trust unlock of cycle {cycle}")
        sub.trust_unlock_until = now + dt.timedelta(days=days)
        sub.trust_unlock_cycle = cycle
        event = record_event(uow, sub, kind="trust-unlock", old=None, new=iso(sub.trust_unlock_until), actor=actor, reason=f"{days} day(s)")
        queue_reauthorize(uow, sub, cause="trust-unlock", event_id=event.id)
        audit.record(uow, actor=actor, action="subscriber.trust_unlock", target=login, detail={"days": days, "cycle": cycle})
        return {**as_dict(sub), "outbox": uow.outbox_ids}


def expire_trust_unlocks(ctx: Context, now: dt.datetime | None = None) -> int:
    """Send subscribers whose trust unlock ran out unpaid back to the suspended treatment (a job)."""
    now = now or utcnow()
    expired = 0
    with ctx.transaction() as uow:
        rows = uow.session.scalars(
            select(Subscriber).options(joinedload(Subscriber.plan)).where(
                Subscriber.trust_unlock_until.is_not(None), Subscriber.trust_unlock_until <= now
            )
        ).all()
        for sub in rows:
            sub.trust_unlock_until = None
            if sub.status != SubscriberStatus.SUSPENDED.value:
                continue
            event = record_event(uow, sub, kind="trust-unlock-expired", old=None, new=None, actor="job:trust-unlock", reason="unpaid at the end of the period")
            queue_reauthorize(uow, sub, cause="status:suspended", event_id=event.id)
            expired += 1
    return expired
