"""One-off charges and discounts: what an admin adds by hand for a subscriber's next invoice.

An installation fee, equipment (a router, an ONU), a discount or anything else is stored as a pending
:class:`billing.models.Charge`. The monthly run (:mod:`billing.issuing`) puts every pending charge of a
subscriber on the next invoice it issues them, as an item, and marks the charge with the invoice in
the same transaction: a charge lands on exactly one invoice however often the run repeats, and when
the invoice's insert loses (already issued) the charge stays pending. ``cycle`` holds a charge back
until the invoice of that cycle or a later one.

Discounts never make an invoice's total zero or negative:

- a discount must be smaller than the monthly price of the subscriber's plan (a whole month free is
  done by cancelling that month's invoice instead); adding a larger one is refused;
- at issue time discounts are applied whole, oldest first, only while the total stays above zero; a
  discount that does not fit (say, on a small pro-rata first invoice) stays pending for the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from aaa.context import Context
from aaa.db.models import Subscriber
from aaa.errors import ConflictError, NotFoundError, ValidationError
from aaa.services import audit
from billing.cycle import parse_cycle
from billing.models import CHARGE_KINDS, Charge, InvoiceItem, ItemKind
from billing.money import ZERO, parse_brl, quantize
from billing.records import money

MAX_DESCRIPTION = 200


def _amount(value: Decimal | str) -> Decimal:
    amount = parse_brl(value) if isinstance(value, str) else quantize(Decimal(value))
    if amount <= ZERO:
        raise ValidationError(f"the amount must be greater than zero, got {money(amount)} (a discount is --kind discount with a positive amount)")
    if amount >= Decimal("100000000"):
        raise ValidationError(f"the amount {money(amount)} is too large")
    return amount


def _kind(kind: str) -> str:
    if kind not in CHARGE_KINDS:
        raise ValidationError(f"unknown charge kind {kind!r}: one of {', '.join(CHARGE_KINDS)}")
    return kind


def _description(text: str) -> str:
    value = " ".join(str(text).split())
    if not value:
        raise ValidationError("the description must not be empty")
    if len(value) > MAX_DESCRIPTION:
        raise ValidationError(f"the description is {len(value)} characters long; at most {MAX_DESCRIPTION}")
    return value


def parse_charge_id(value: int | str) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) == 0:
        raise ValidationError(f"charge id must be a positive number, got {value!r}")
    return int(text)


def as_dict(charge: Charge) -> dict[str, Any]:
    """A charge as ``aaa billing charge list --json`` prints it (discounts as positive amounts)."""
    return {
        "id": charge.id,
        "login": charge.subscriber.login if charge.subscriber else None,
        "kind": charge.kind,
        "description": charge.description,
        "amount": money(charge.amount),
        "cycle": charge.cycle,
        "status": "pending" if charge.invoice_id is None else "invoiced",
        "invoice_id": charge.invoice_id,
        "actor": charge.actor,
        "created_at": charge.created_at.isoformat() if charge.created_at else None,
    }


def add_charge(
    ctx: Context,
    login: str,
    *,
    description: str,
    amount: Decimal | str,
    kind: str = ItemKind.OTHER.value,
    cycle: str | None = None,
    actor: str,
) -> dict[str, Any]:
    """Add a pending one-off charge (or discount) to ``login``'s next invoice (of ``cycle`` or later)."""
    value = _amount(amount)
    kind = _kind(kind)
    text = _description(description)
    key = parse_cycle(cycle).key if cycle else None
    with ctx.transaction() as uow:
        session = uow.session
        subscriber = session.scalars(
            select(Subscriber).where(Subscriber.login == login).options(joinedload(Subscriber.plan))
        ).first()
        if subscriber is None:
            raise NotFoundError(f"subscriber {login!r} not found")
        if subscriber.customer_id is None:
            raise ConflictError(f"subscriber {login!r} has no customer and is not billed; link a customer first")
        if kind == ItemKind.DISCOUNT.value:
            price = quantize(subscriber.plan.price or ZERO)
            if value >= price:
                raise ValidationError(
                    f"a discount of {money(value)} must be smaller than the monthly price {money(price)} of plan "
                    f"{subscriber.plan.name!r} of {login!r}; to waive a whole month, cancel that month's invoice"
                )
        charge = Charge(subscriber_id=subscriber.id, kind=kind, description=text, amount=value, cycle=key, actor=actor)
        session.add(charge)
        session.flush()
        audit.record(
            uow, actor=actor, action="billing.charge_add", target=login,
            detail={"charge": charge.id, "kind": kind, "amount": money(value), "cycle": key},
        )
        charge.subscriber = subscriber
        return as_dict(charge)


def list_charges(ctx: Context, login: str | None = None, *, pending_only: bool = False) -> list[dict[str, Any]]:
    """Charges, newest first; of one subscriber with ``login`` (NotFoundError when it does not exist)."""
    query = select(Charge).options(joinedload(Charge.subscriber)).order_by(Charge.id.desc())
    if pending_only:
        query = query.where(Charge.invoice_id.is_(None))
    with ctx.sessions() as session:
        if login is not None:
            subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.login == login))
            if subscriber_id is None:
                raise NotFoundError(f"subscriber {login!r} not found")
            query = query.where(Charge.subscriber_id == subscriber_id)
        return [as_dict(c) for c in session.scalars(query)]


def remove_charge(ctx: Context, charge_id: int | str, *, actor: str) -> dict[str, Any]:
    """Delete a charge that is still pending; one already on an invoice stays (cancel the invoice)."""
    number = parse_charge_id(charge_id)
    with ctx.transaction() as uow:
        session = uow.session
        charge = session.scalars(select(Charge).where(Charge.id == number).options(joinedload(Charge.subscriber))).first()
        if charge is None:
            raise NotFoundError(f"charge {number} not found")
        data = as_dict(charge)
        if charge.invoice_id is not None:
            raise ConflictError(f"charge {number} is already on invoice {charge.invoice_id} and cannot be removed")
        session.expunge(charge)
        removed = session.execute(
            delete(Charge)
            .where(Charge.id == number, Charge.invoice_id.is_(None))
            .execution_options(synchronize_session=False)
        )
        if getattr(removed, "rowcount", 0) != 1:
            raise ConflictError(f"charge {number} was invoiced meanwhile and cannot be removed")
        audit.record(
            uow, actor=actor, action="billing.charge_remove", target=data["login"] or str(number),
            detail={"charge": number, "kind": data["kind"], "amount": data["amount"]},
        )
    return data


def pending_for(session: Session, subscriber_id: int, cycle: str) -> list[Charge]:
    """The charges waiting for ``subscriber_id``'s invoice of ``cycle``, oldest first, locked on
    PostgreSQL until the transaction ends."""
    query = (
        select(Charge)
        .where(
            Charge.subscriber_id == subscriber_id,
            Charge.invoice_id.is_(None),
            (Charge.cycle.is_(None)) | (Charge.cycle <= cycle),
        )
        .order_by(Charge.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return list(session.scalars(query))


def items_for(charges: Sequence[Charge], subtotal: Decimal) -> tuple[list[InvoiceItem], list[Charge]]:
    """The invoice items for ``charges`` on an invoice whose other items add up to ``subtotal``, and
    the charges they come from. Charges are added first; then each discount, oldest first, only if the
    total stays above zero (one that does not fit stays pending)."""
    taken = [c for c in charges if c.kind != ItemKind.DISCOUNT.value]
    total = subtotal + sum((c.amount for c in taken), ZERO)
    for charge in charges:
        if charge.kind == ItemKind.DISCOUNT.value and total - charge.amount > ZERO:
            taken.append(charge)
            total -= charge.amount
    taken.sort(key=lambda c: c.id)
    items = [
        InvoiceItem(
            kind=c.kind,
            description=c.description,
            quantity=1,
            unit_price=-quantize(c.amount) if c.kind == ItemKind.DISCOUNT.value else quantize(c.amount),
        )
        for c in taken
    ]
    return items, taken
