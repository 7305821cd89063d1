"""Customers (the person or company on the contract): personal data encrypted, masked unless revealed.

CPF/CNPJ, phone and address are stored encrypted; CPF/CNPJ and phone also as keyed hashes so they
can be searched without decrypting. Showing them in clear is an explicit ``reveal`` that lands in the
audit log with who and when (LGPD).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, or_, select

from aaa import validate
from aaa.context import Context
from aaa.db.models import Customer, Subscriber, utcnow
from aaa.documents import mask_document, validate_document
from aaa.errors import ConflictError, NotFoundError, ValidationError
from aaa.services import audit
from aaa.services.common import iso

_PHONE = re.compile(r"^\+?\d{10,15}$")


def normalize_phone(text: str) -> str:
    """E.164 without the plus for Brazilian numbers: ``(11) 98765-4321`` -> ``5511987654321``."""
    digits = re.sub(r"[\s().\-]", "", text)
    if not _PHONE.match(digits):
        raise ValidationError("invalid phone number: 10-15 digits with area code, e.g. +55 11 98765-4321")
    digits = digits.lstrip("+")
    if len(digits) in (10, 11):
        digits = "55" + digits
    return digits


def mask_phone(phone: str | None) -> str | None:
    return None if phone is None else "*" * (len(phone) - 4) + phone[-4:]


def as_dict(ctx: Context, c: Customer, *, reveal: bool = False) -> dict[str, Any]:
    document = ctx.vault.decrypt_optional(c.document_enc)
    phone = ctx.vault.decrypt_optional(c.phone_enc)
    address = ctx.vault.decrypt_optional(c.address_enc)
    return {
        "id": c.id,
        "name": c.name,
        "document_kind": c.document_kind,
        "document": document if reveal else (mask_document(c.document_kind, document) if document and c.document_kind else None),  # type: ignore[arg-type]
        "phone": phone if reveal else mask_phone(phone),
        "email": c.email,
        "address": address if reveal else ("***" if address else None),
        "due_day": c.due_day,
        "consent_whatsapp": c.consent_whatsapp,
        "consent_marketing": c.consent_marketing,
        "created_at": iso(c.created_at),
    }


def _apply(ctx: Context, session: Any, c: Customer, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if value is None:
            continue
        if key == "name":
            c.name = validate.name(value, what="customer name", max_length=200)
        elif key == "document":
            kind, normalized = validate_document(value)
            digest = ctx.vault.lookup_hash(normalized)
            clash = session.scalar(select(Customer.id).where(Customer.document_hash == digest, Customer.id != (c.id or -1)))
            if clash is not None:
                raise ConflictError(f"a customer with this {kind.upper()} already exists (id {clash})")
            c.document_kind, c.document_enc, c.document_hash = kind, ctx.vault.encrypt(normalized), digest
        elif key == "phone":
            phone = normalize_phone(value)
            c.phone_enc, c.phone_hash = ctx.vault.encrypt(phone), ctx.vault.lookup_hash(phone)
        elif key == "address":
            c.address_enc = ctx.vault.encrypt(value)
        elif key == "email":
            if "@" not in value:
                raise ValidationError(f"invalid e-mail {value!r}")
            c.email = value
        elif key == "due_day":
            if not 1 <= int(value) <= 28:
                raise ValidationError(f"invalid due day {value}: 1-28")
            c.due_day = int(value)
        elif key in ("consent_whatsapp", "consent_marketing"):
            setattr(c, key, bool(value))
            c.consent_at = utcnow()
        else:
            raise ValidationError(f"unknown customer field {key!r}")


def create(ctx: Context, uow: Any, fields: dict[str, Any]) -> Customer:
    """A new customer in the caller's transaction (used by add_customer, the subscriber import, demo)."""
    c = Customer(name="")
    _apply(ctx, uow.session, c, fields)
    if not c.name:
        raise ValidationError("customer name is required")
    uow.session.add(c)
    uow.session.flush()
    return c


def add_customer(ctx: Context, *, actor: str, **fields: Any) -> dict[str, Any]:
    with ctx.transaction() as uow:
        c = create(ctx, uow, fields)
        audit.record(uow, actor=actor, action="customer.add", target=str(c.id))
        return as_dict(ctx, c)


def _get(session: Any, customer_id: int) -> Customer:
    c = session.get(Customer, customer_id)
    if c is None:
        raise NotFoundError(f"customer {customer_id} not found")
    return c


def show_customer(ctx: Context, customer_id: int, *, actor: str, reveal: bool = False) -> dict[str, Any]:
    """A customer, masked; ``reveal=True`` shows personal data in clear and is audited."""
    with ctx.transaction() as uow:
        c = _get(uow.session, customer_id)
        if reveal:
            audit.record(uow, actor=actor, action="customer.reveal", target=str(customer_id))
        return as_dict(ctx, c, reveal=reveal)


def find_customers(ctx: Context, text: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """By part of the name, or exactly by CPF/CNPJ or phone (through their keyed hashes)."""
    conditions = [func.lower(Customer.name).contains(text.lower())]
    try:
        _, normalized = validate_document(text)
        conditions.append(Customer.document_hash == ctx.vault.lookup_hash(normalized))
    except ValidationError:
        pass
    try:
        conditions.append(Customer.phone_hash == ctx.vault.lookup_hash(normalize_phone(text)))
    except ValidationError:
        pass
    with ctx.sessions() as s:
        rows = s.scalars(select(Customer).where(or_(*conditions)).order_by(Customer.name).limit(limit))
        return [as_dict(ctx, c) for c in rows]


def list_customers(ctx: Context, *, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        rows = s.scalars(select(Customer).order_by(Customer.id).limit(limit).offset(offset))
        return [as_dict(ctx, c) for c in rows]


def update_customer(ctx: Context, customer_id: int, *, actor: str, **fields: Any) -> dict[str, Any]:
    with ctx.transaction() as uow:
        c = _get(uow.session, customer_id)
        _apply(ctx, uow.session, c, fields)
        audit.record(uow, actor=actor, action="customer.update", target=str(customer_id), detail={"fields": sorted(k for k, v in fields.items() if v is not None)})
        return as_dict(ctx, c)


def delete_customer(ctx: Context, customer_id: int, *, actor: str) -> None:
    with ctx.transaction() as uow:
        c = _get(uow.session, customer_id)
        if uow.session.scalar(select(func.count()).where(Subscriber.customer_id == customer_id)):
            raise ConflictError(f"customer {customer_id} still has subscribers")
        uow.session.delete(c)
        audit.record(uow, actor=actor, action="customer.delete", target=str(customer_id))
