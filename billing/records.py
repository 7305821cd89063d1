"""Reading invoices: loading one by id, its family (original and second copies), what is owed on a date,
and the plain dicts the service layer, the CLI (``--json``) and the plugin hooks hand out.

An invoice's *family* is its original and every second copy of it. Payments are recorded on the
member that was paid; what the family owes on a day is the original amount plus the fine and
interest from :func:`billing.latefee.amount_due` up to that day, or up to the due date of the latest
second copy when paying on or before it (a second copy's face value already holds them).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from aaa.errors import NotFoundError, ValidationError
from billing.boleto import format_linha
from billing.businessdays import next_business_day
from billing.latefee import Breakdown, amount_due
from billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment
from billing.money import ZERO, quantize
from billing.settings import InvoicingSettings

SETTLED = (InvoiceStatus.PAID.value, InvoiceStatus.CANCELLED.value, InvoiceStatus.RENEGOTIATED.value)


def parse_invoice_id(value: int | str) -> int:
    """An invoice id from an int or typed text ("42", "000042"); ValidationError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) == 0:
        raise ValidationError(f"invoice id must be a positive number, got {value!r}")
    return int(text)


def get_invoice(session: Session, invoice_id: int | str, *, lock: bool = False) -> Invoice:
    """The invoice with its customer, subscriber, items and payments; NotFoundError if absent.

    ``lock`` takes a row lock on PostgreSQL (SELECT ... FOR UPDATE) so payments to one invoice
    are counted one after the other.
    """
    number = parse_invoice_id(invoice_id)
    query = (
        select(Invoice)
        .where(Invoice.id == number)
        .options(
            joinedload(Invoice.customer),
            joinedload(Invoice.subscriber),
            selectinload(Invoice.items),
            selectinload(Invoice.payments),
        )
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Invoice)
    invoice = session.scalars(query).first()
    if invoice is None:
        raise NotFoundError(f"invoice {number} not found")
    return invoice


def root_of(invoice: Invoice) -> Invoice:
    """The original invoice of a family."""
    return invoice.parent if invoice.parent_id is not None and invoice.parent is not None else invoice


def family(session: Session, invoice: Invoice) -> list[Invoice]:
    """The original and its second copies, in issue order."""
    root = root_of(invoice)
    copies = session.scalars(
        select(Invoice)
        .where(Invoice.parent_id == root.id)
        .options(selectinload(Invoice.payments), selectinload(Invoice.items))
        .order_by(Invoice.copy_number)
    ).all()
    return [root, *copies]


def current_member(members: list[Invoice]) -> Invoice:
    """The member a payment now applies to: the latest one not replaced by a second copy."""
    live = [m for m in members if m.status != InvoiceStatus.RENEGOTIATED.value]
    return live[-1] if live else members[-1]


def paid_total(members: list[Invoice]) -> Decimal:
    return quantize(sum((p.amount for m in members for p in m.payments), ZERO))


def owed_on(settings: InvoicingSettings, members: list[Invoice], day: dt.date) -> Breakdown:
    """What the family owes in all (before payments) when paid on ``day``."""
    root = members[0]
    copies = [m for m in members if m.kind == InvoiceKind.SECOND_COPY.value]
    counted_until = day
    if copies:
        latest_due = copies[-1].due_date
        if day <= next_business_day(latest_due):
            counted_until = max(day, latest_due)
    return amount_due(
        root.amount,
        root.due_date,
        counted_until,
        fine_pct=settings.fine_pct,
        monthly_interest_pct=settings.interest_pct,
        basis=settings.day_basis,
    )


def money(value: Decimal | None) -> str | None:
    """Amounts in dicts are strings with two decimals ("99.90"), exact in JSON."""
    return None if value is None else f"{quantize(value):.2f}"


def payment_dict(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "invoice_id": payment.invoice_id,
        "amount": money(payment.amount),
        "paid_on": payment.paid_on.isoformat(),
        "method": payment.method,
        "reference": payment.reference,
        "actor": payment.actor,
    }


def as_dict(invoice: Invoice, *, detail: bool = False) -> dict[str, Any]:
    """The invoice as ``aaa invoice show --json`` prints it (items and payments with ``detail``)."""
    data: dict[str, Any] = {
        "id": invoice.id,
        "number": f"{invoice.id:06d}",
        "cycle": invoice.cycle,
        "kind": invoice.kind,
        "copy_number": invoice.copy_number,
        "parent_id": invoice.parent_id,
        "customer_id": invoice.customer_id,
        "customer_name": invoice.customer.name if invoice.customer else None,
        "subscriber_id": invoice.subscriber_id,
        "login": invoice.subscriber.login if invoice.subscriber else None,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "amount": money(invoice.amount),
        "paid": money(sum((p.amount for p in invoice.payments), ZERO)),
        "status": invoice.status,
        "paid_on": invoice.paid_on.isoformat() if invoice.paid_on else None,
        "nosso_numero": invoice.nosso_numero,
        "bank_code": invoice.bank_code,
        "linha_digitavel": format_linha(invoice.boleto_linha),
        "barcode": invoice.boleto_barcode,
        "pix_txid": invoice.pix_txid,
        "pix_payload": invoice.pix_payload,
    }
    if detail:
        data["items"] = [
            {
                "kind": item.kind,
                "description": item.description,
                "quantity": item.quantity,
                "unit_price": money(item.unit_price),
                "total": money(item.unit_price * item.quantity),
            }
            for item in invoice.items
        ]
        data["payments"] = [payment_dict(p) for p in invoice.payments]
    return data


def owed_dict(settings: InvoicingSettings, members: list[Invoice], day: dt.date) -> dict[str, Any]:
    """What is owed on ``day``: principal, fine, interest, total, already paid and the balance."""
    breakdown = owed_on(settings, members, day)
    paid = paid_total(members)
    return {
        "on": day.isoformat(),
        "principal": money(breakdown.principal),
        "fine": money(breakdown.fine),
        "interest": money(breakdown.interest),
        "total": money(breakdown.total),
        "paid": money(paid),
        "balance": money(max(breakdown.total - paid, ZERO)),
    }
