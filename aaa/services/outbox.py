"""The outbox: side effects written in the same transaction as the change that causes them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aaa.context import Context, UnitOfWork
from aaa.db.models import Outbox, OutboxStatus, utcnow
from aaa.errors import NotFoundError, ValidationError


def enqueue(
    uow: UnitOfWork,
    *,
    kind: str,
    key: str,
    payload: dict[str, Any],
    nas_id: int | None = None,
    subscriber_id: int | None = None,
    not_before: dt.datetime | None = None,
) -> Outbox | None:
    """Add a row unless one with the same idempotency key exists; returns the new row or None."""
    session = uow.session
    if session.scalar(select(Outbox.id).where(Outbox.idempotency_key == key)) is not None:
        return None
    row = Outbox(
        kind=kind,
        idempotency_key=key,
        payload=payload,
        nas_id=nas_id,
        subscriber_id=subscriber_id,
        next_attempt_at=not_before or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    uow.outbox_ids.append(row.id)
    return row


def as_dict(row: Outbox) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "key": row.idempotency_key,
        "nas_id": row.nas_id,
        "subscriber_id": row.subscriber_id,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "last_error": row.last_error,
        "payload": row.payload,
        "result": row.result,
        "created_at": row.created_at.isoformat(),
        "done_at": row.done_at.isoformat() if row.done_at else None,
    }


def for_subscriber(session: Session, subscriber_id: int, *, limit: int = 20) -> list[Outbox]:
    """The newest rows queued for one subscriber (CoA, Disconnect, messages), newest first."""
    query = select(Outbox).where(Outbox.subscriber_id == subscriber_id).order_by(Outbox.id.desc()).limit(limit)
    return list(session.scalars(query))


def summary(row: Outbox) -> dict[str, Any]:
    """A row in one line's worth of fields: whether a change has reached the router yet."""
    payload = row.payload or {}
    result = row.result or {}
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "cause": payload.get("cause"),
        "session": payload.get("acct_session_id"),
        "action": result.get("action"),
        "outcome": result.get("outcome"),
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "done_at": row.done_at.isoformat() if row.done_at else None,
    }


def list_rows(ctx: Context, *, failed: bool = False, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    with ctx.sessions() as session:
        query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
        if failed:
            query = query.where(Outbox.status.in_([OutboxStatus.FAILED.value, OutboxStatus.DEAD.value]))
        elif status:
            if status not in {s.value for s in OutboxStatus}:
                raise ValidationError(f"unknown outbox status {status!r}")
            query = query.where(Outbox.status == status)
        return [as_dict(r) for r in session.scalars(query)]


def progress(ctx: Context, ids: list[int]) -> dict[str, int]:
    """How many of the rows ``ids`` are in each status (for ``--wait``)."""
    from sqlalchemy import func

    result: dict[str, int] = {}
    with ctx.sessions() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for status, n in session.execute(select(Outbox.status, func.count()).where(Outbox.id.in_(chunk)).group_by(Outbox.status)):
                result[status] = result.get(status, 0) + int(n)
    return result


def counts(ctx: Context) -> dict[str, int]:
    from sqlalchemy import func

    with ctx.sessions() as session:
        rows = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
    return {status: int(n) for status, n in rows}


def retry(ctx: Context, row_id: int, *, actor: str) -> dict[str, Any]:
    """Put a failed or dead row back in the queue, due now, with its attempts reset."""
    from aaa.services import audit

    with ctx.transaction() as uow:
        row = uow.session.get(Outbox, row_id)
        if row is None:
            raise NotFoundError(f"outbox row {row_id} not found")
        if row.status in (OutboxStatus.PENDING.value, OutboxStatus.RUNNING.value):
            raise ValidationError(f"outbox row {row_id} is {row.status}, not failed")
        row.status = OutboxStatus.PENDING.value
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.lease_until = None
        row.claimed_by = None
        audit.record(uow, actor=actor, action="outbox.retry", target=str(row_id))
        return as_dict(row)
