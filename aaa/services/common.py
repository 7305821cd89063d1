"""Helpers the service modules share: finding a row by name, duplicate checks."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from aaa.errors import ConflictError, NotFoundError

T = TypeVar("T")


def find(session: Session, model: type[T], column: InstrumentedAttribute[Any], value: Any, what: str) -> T:
    """The row whose ``column`` equals ``value``, or NotFoundError naming it."""
    row = session.scalars(select(model).where(column == value)).first()
    if row is None:
        raise NotFoundError(f"{what} {value!r} not found")
    return row


def ensure_free(session: Session, model: type[Any], column: InstrumentedAttribute[Any], value: Any, what: str, *, exclude_id: int | None = None) -> None:
    """ConflictError if another row already has ``value`` in a unique ``column``."""
    query = select(model.id).where(column == value)
    if exclude_id is not None:
        query = query.where(model.id != exclude_id)
    if session.scalar(query) is not None:
        raise ConflictError(f"{what} {value!r} already exists")


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
