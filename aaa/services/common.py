"""Helpers the service modules share: finding a row by name, duplicate checks, what refers to a row."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from aaa.db import load_models
from aaa.db.models import Base
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


def references(session: Session, row: Any) -> dict[str, int]:
    """How many rows of each table refer to ``row`` through a foreign key that does not cascade on
    delete, by table name (``{"invoices": 2}``): what keeps ``row`` from being deleted. Every model
    module is loaded first (:func:`aaa.db.load_models`), so billing's tables are counted without
    ``aaa`` importing ``billing``."""
    load_models()
    mapper = inspect(row).mapper
    target = mapper.local_table
    found: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is not target or (fk.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                continue
            value = getattr(row, mapper.get_property_by_column(fk.column).key)
            n = int(session.scalar(select(func.count()).select_from(table).where(fk.parent == value)) or 0)
            if n:
                found[table.name] = found.get(table.name, 0) + n
    return found
