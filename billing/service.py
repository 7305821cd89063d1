"""The billing service layer: what the CLI, the TUI and the invoicing plugin call.

Functions take the :class:`aaa.context.Context` first, keyword arguments after, an ``actor`` for
anything that changes state, and return plain dicts (amounts as "99.90" strings, dates ISO).
Issuing lives in :mod:`billing.issuing`, payments and the overdue check in :mod:`billing.payments`,
one-off charges and discounts in :mod:`billing.charges`;
this module re-exports them and adds listing, showing, the dashboard summary and the invoice document.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from aaa.context import Context
from aaa.db.models import Customer, Subscriber
from aaa.documents import format_cnpj, mask_document
from aaa.errors import ValidationError
from aaa.services import audit
from billing.boleto import Boleto, today_in_brazil
from billing.charges import add_charge, list_charges, remove_charge
from billing.issuing import run_month, second_copy
from billing.models import Invoice, InvoiceStatus, Payment
from billing.money import ZERO, quantize
from billing.payments import balance, cancel, import_return_file, mark_overdue, pay
from billing.records import as_dict, family, get_invoice, money, owed_dict
from billing.settings import load

STATUSES = tuple(s.value for s in InvoiceStatus)
#: The entry point name of the plugin that issues invoices; ``[plugins] disabled`` may list it.
INVOICING_PLUGIN = "invoicing"
#: What the dashboard counts: invoices someone still has to pay.
PENDING = (InvoiceStatus.OPEN.value, InvoiceStatus.OVERDUE.value)

__all__ = [
    "add_charge",
    "balance",
    "cancel",
    "import_return_file",
    "invoice_summary",
    "invoicing_enabled",
    "list_charges",
    "list_invoices",
    "mark_overdue",
    "pay",
    "remove_charge",
    "render_invoice_pdf",
    "run_month",
    "second_copy",
    "show_invoice",
]


def list_invoices(
    ctx: Context,
    *,
    status: str | None = None,
    customer: int | str | None = None,
    login: str | None = None,
    cycle: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Invoices, newest first; ``customer`` is an id or part of the name."""
    query = (
        select(Invoice)
        .options(joinedload(Invoice.customer), joinedload(Invoice.subscriber), selectinload(Invoice.payments))
        .order_by(Invoice.id.desc())
        .limit(limit)
    )
    if status:
        if status not in STATUSES:
            raise ValidationError(f"unknown invoice status {status!r}: one of {', '.join(STATUSES)}")
        query = query.where(Invoice.status == status)
    if customer is not None and str(customer).strip():
        text = str(customer).strip()
        if text.isdigit():
            query = query.where(Invoice.customer_id == int(text))
        else:
            query = query.join(Customer, Invoice.customer_id == Customer.id).where(
                func.lower(Customer.name).contains(text.lower())
            )
    if login:
        query = query.join(Subscriber, Invoice.subscriber_id == Subscriber.id).where(Subscriber.login == login)
    if cycle:
        query = query.where(Invoice.cycle == cycle)
    with ctx.sessions() as session:
        return [as_dict(i) for i in session.scalars(query).unique()]


def invoicing_enabled(ctx: Context) -> bool:
    """Whether the invoicing plugin is loaded. With it disabled nothing issues invoices or marks them
    overdue (no monthly run, no overdue check, no ``aaa invoice`` commands); the invoices on record
    can still be listed, paid and reissued through this module."""
    return bool(ctx.pm.has_plugin(INVOICING_PLUGIN))


def invoice_summary(ctx: Context) -> dict[str, Any]:
    """Open and overdue invoices for the dashboard: for each, how many, their face value
    (``amount``), what is still owed on them (``balance``: face value less the payments recorded on
    them, before fine and interest) and the earliest due date; and whether invoicing is
    ``enabled``. Two grouped queries on the indexed ``status`` column, so it stays cheap."""
    counts = {status: (0, ZERO) for status in PENDING}
    paid = dict.fromkeys(PENDING, ZERO)
    with ctx.sessions() as session:
        rows = session.execute(
            select(Invoice.status, func.count(), func.sum(Invoice.amount), func.min(Invoice.due_date))
            .where(Invoice.status.in_(PENDING))
            .group_by(Invoice.status)
        ).all()
        payments = session.execute(
            select(Invoice.status, func.sum(Payment.amount))
            .join(Payment, Payment.invoice_id == Invoice.id)
            .where(Invoice.status.in_(PENDING))
            .group_by(Invoice.status)
        ).all()
    earliest: dict[str, dt.date | None] = dict.fromkeys(PENDING)
    for status, count, amount, due in rows:
        counts[status] = (int(count), quantize(Decimal(str(amount or 0))))
        earliest[status] = due
    for status, amount in payments:
        paid[status] = quantize(Decimal(str(amount or 0)))
    summary: dict[str, Any] = {"enabled": invoicing_enabled(ctx)}
    for status in PENDING:
        count, total = counts[status]
        first_due = earliest[status]
        summary[status] = {
            "count": count,
            "amount": money(total),
            "balance": money(max(total - paid[status], ZERO)),
            "earliest_due_date": first_due.isoformat() if first_due else None,
        }
    return summary


def show_invoice(ctx: Context, invoice_id: int | str, *, on: dt.date | None = None) -> dict[str, Any]:
    """One invoice with items, payments and what its family owes on ``on`` (default today)."""
    settings = load(ctx)
    with ctx.sessions() as session:
        invoice = get_invoice(session, invoice_id)
        data = as_dict(invoice, detail=True)
        data["owed"] = owed_dict(settings, family(session, invoice), on or today_in_brazil())
        return data


def render_invoice_pdf(ctx: Context, invoice_id: int | str, *, actor: str = "system") -> bytes:
    """The invoice document as PDF bytes: customer name and address in clear (decrypted, and the
    access audited), CPF/CNPJ masked, items (a discount is its own line with a negative value, under
    the description it was given), late-payment rules, boleto and PIX."""
    # jinja2 and fpdf2 cost 0.4 s to import: only the PDF needs them, not every `aaa` command.
    from billing import render

    settings = load(ctx)
    layout = settings.layout()
    with ctx.transaction() as uow:
        invoice = get_invoice(uow.session, invoice_id)
        customer = invoice.customer
        document = ctx.vault.decrypt_optional(customer.document_enc)
        address = ctx.vault.decrypt_optional(customer.address_enc) or ""
        masked = mask_document(customer.document_kind, document) if document and customer.document_kind else ""  # type: ignore[arg-type]
        items = [
            render.InvoiceItem(description=i.description, unit_price=quantize(i.unit_price), quantity=i.quantity)
            for i in invoice.items
        ]
        slip = Boleto(
            bank_code=invoice.bank_code,
            amount=quantize(invoice.amount),
            due_date=invoice.due_date,
            nosso_numero=invoice.nosso_numero,
            barcode=invoice.boleto_barcode,
            linha=invoice.boleto_linha,
        )
        view = render.InvoiceView(
            number=f"{invoice.id:06d}",
            cycle=f"{invoice.cycle[5:7]}/{invoice.cycle[0:4]}",
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            issuer_name=settings.beneficiary_name,
            issuer_document=format_cnpj(settings.beneficiary_cnpj) if settings.beneficiary_cnpj else "",
            issuer_address=settings.beneficiary_address or settings.beneficiary_city,
            customer_name=customer.name,
            customer_document=masked,
            customer_address=address,
            items=items,
            fine_pct=settings.fine_pct,
            monthly_interest_pct=settings.interest_pct,
            boleto=slip,
            bank_name=settings.bank_name,
            nosso_numero=layout.nosso_numero_display(invoice.nosso_numero),
            pix_payload=invoice.pix_payload,
        )
        if view.total != quantize(invoice.amount):
            raise ValidationError(f"invoice {invoice.id}: items add up to {view.total}, not {invoice.amount}")
        audit.record(uow, actor=actor, action="invoice.document", target=str(invoice.id))
    return render.render_pdf(view)


def total_of(items: list[dict[str, Any]]) -> Decimal:
    """The sum of the ``amount`` of invoice dicts (for reports)."""
    return quantize(sum((Decimal(i["amount"]) for i in items), ZERO))
