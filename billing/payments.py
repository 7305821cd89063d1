"""Money in and time passing: payments (by hand or from a CNAB 240 return file), the daily overdue
check and cancellation.

A payment is recorded on the invoice that is current in its family (a payment to a replaced
invoice, e.g. an old boleto paid at the bank, lands on its latest second copy). The invoice becomes
``paid`` when everything paid in the family covers what is owed on the payment date, fine and
interest included (:func:`billing.records.owed_on`); partial payments and over-payments are kept as
they are. Every payment fires ``aaa_invoice_paid`` once, after commit.

Bank references are unique, so a return file imported twice settles nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from aaa.context import Context, UnitOfWork
from aaa.db.models import utcnow
from aaa.errors import ConflictError, ValidationError
from aaa.services import audit
from billing import cnab240
from billing.boleto import today_in_brazil
from billing.businessdays import next_business_day
from billing.models import Invoice, InvoiceStatus, Payment, PaymentMethod
from billing.money import ZERO, quantize
from billing.records import (
    as_dict,
    current_member,
    family,
    get_invoice,
    money,
    owed_dict,
    owed_on,
    paid_total,
    payment_dict,
)
from billing.settings import InvoicingSettings, load

METHODS = tuple(m.value for m in PaymentMethod)
PAYABLE = (InvoiceStatus.OPEN.value, InvoiceStatus.OVERDUE.value)


def _record(
    uow: UnitOfWork,
    settings: InvoicingSettings,
    invoice: Invoice,
    *,
    amount: Any,
    paid_on: dt.date,
    actor: str,
    method: str,
    reference: str | None,
) -> dict[str, Any]:
    value = quantize(amount)
    if value <= ZERO:
        raise ValidationError(f"a payment must be greater than zero, got {value}")
    if method not in METHODS:
        raise ValidationError(f"unknown payment method {method!r}: one of {', '.join(METHODS)}")
    if invoice.status == InvoiceStatus.CANCELLED.value:
        raise ConflictError(f"invoice {invoice.id} is cancelled and cannot be paid")
    session = uow.session
    members = family(session, invoice)
    target = current_member(members)
    if target.status == InvoiceStatus.CANCELLED.value:
        raise ConflictError(f"invoice {target.id} is cancelled and cannot be paid")
    payment = Payment(
        invoice=target, amount=value, paid_on=paid_on, method=method, reference=reference, actor=actor
    )
    session.add(payment)
    session.flush()
    owed = owed_on(settings, members, paid_on)
    if target.status in PAYABLE and paid_total(members) >= owed.total:
        target.status = InvoiceStatus.PAID.value
        target.paid_on = paid_on
    session.flush()
    audit.record(
        uow,
        actor=actor,
        action="invoice.pay",
        target=str(target.id),
        detail={"amount": money(value), "method": method, "paid_on": paid_on.isoformat()},
    )
    invoice_data = as_dict(get_invoice(session, target.id))
    invoice_data["overdue_invoices_left"] = _overdue_left(session, target, members)
    payment_data = payment_dict(payment)
    uow.emit("aaa_invoice_paid", invoice=invoice_data, payment=payment_data)
    return {"invoice": invoice_data, "payment": payment_data, "owed": owed_dict(settings, members, paid_on)}


def _overdue_left(session: Any, target: Invoice, members: list[Invoice]) -> int:
    """How many other invoices of the same subscriber are still overdue (the policy reactivates only
    when none is)."""
    if target.subscriber_id is None:
        return 0
    return int(
        session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(
                Invoice.subscriber_id == target.subscriber_id,
                Invoice.status == InvoiceStatus.OVERDUE.value,
                Invoice.id.not_in([m.id for m in members]),
            )
        )
        or 0
    )


def pay(
    ctx: Context,
    invoice_id: int | str,
    amount: Any,
    paid_on: dt.date,
    *,
    actor: str,
    method: str = PaymentMethod.MANUAL.value,
    reference: str | None = None,
) -> dict[str, Any]:
    """Record a payment of ``amount`` made on ``paid_on``; returns the invoice, the payment and what
    was owed on that day (``owed.balance`` is what is still missing)."""
    settings = load(ctx)
    with ctx.transaction() as uow:
        invoice = get_invoice(uow.session, invoice_id, lock=True)
        result = _record(
            uow,
            settings,
            invoice,
            amount=amount,
            paid_on=paid_on,
            actor=actor,
            method=method,
            reference=reference,
        )
    return result


def cancel(ctx: Context, invoice_id: int | str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Cancel an open or overdue invoice that has no payments."""
    with ctx.transaction() as uow:
        invoice = get_invoice(uow.session, invoice_id, lock=True)
        if invoice.status not in PAYABLE:
            raise ConflictError(
                f"invoice {invoice.id} is {invoice.status}; only open or overdue invoices can be cancelled"
            )
        if invoice.payments:
            raise ConflictError(f"invoice {invoice.id} has payments; it cannot be cancelled")
        invoice.status = InvoiceStatus.CANCELLED.value
        invoice.note = (reason or "")[:255] or None
        audit.record(
            uow, actor=actor, action="invoice.cancel", target=str(invoice.id), detail={"reason": reason}
        )
        return as_dict(invoice)


def mark_overdue(ctx: Context, today: dt.date | None = None) -> dict[str, Any]:
    """Turn open invoices past due into ``overdue`` and fire ``aaa_invoice_overdue`` once for each.

    Past due means after the due date moved to the next business day (Lei 7.089/1983) plus
    ``overdue_grace_days``. The update only touches rows still ``open``, so two nodes running the
    check at once fire each event once.
    """
    settings = load(ctx)
    day = today or today_in_brazil()
    with ctx.sessions() as session:
        candidates = session.execute(
            select(Invoice.id, Invoice.due_date).where(
                Invoice.status == InvoiceStatus.OPEN.value, Invoice.due_date < day
            )
        ).all()
    grace = dt.timedelta(days=settings.overdue_grace_days)
    late = [row.id for row in candidates if next_business_day(row.due_date) + grace < day]
    marked: list[int] = []
    with ctx.transaction() as uow:
        for invoice_id in late:
            result = uow.session.execute(
                update(Invoice)
                .where(Invoice.id == invoice_id, Invoice.status == InvoiceStatus.OPEN.value)
                .values(status=InvoiceStatus.OVERDUE.value, overdue_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                marked.append(invoice_id)
        uow.session.expire_all()
        for invoice_id in marked:
            uow.emit("aaa_invoice_overdue", invoice=as_dict(get_invoice(uow.session, invoice_id)))
    return {"date": day.isoformat(), "overdue": len(marked), "invoice_ids": marked}


def sequence_from_bank(settings: InvoicingSettings, text: str) -> str | None:
    """Our stored nosso número for the one a bank reports (its own formatting), or None."""
    digits = re.sub(r"\D", "", text)
    width = settings.sequence_digits
    if settings.bank == "001":
        if len(digits) == 17 and digits.startswith(settings.convenio):
            return digits[len(settings.convenio) :]
    else:
        carteira = (settings.carteira or "109").zfill(3)
        if len(digits) == 12 and digits.startswith(carteira):
            digits = digits[3:]
        if len(digits) == 9:
            layout = settings.layout()
            dac = getattr(layout, "nosso_numero_dac", None)
            if dac is not None and dac(digits[:8]) == int(digits[8]):
                return digits[:8]
            return None
    if 0 < len(digits) <= width:
        return digits.zfill(width)
    return None


def import_return_file(ctx: Context, path: str | Path, *, actor: str) -> dict[str, Any]:
    """Settle invoices from a CNAB 240 return file (segments T/U, occurrences 06 and 17).

    Returns what was settled, what was already imported, and what could not be matched (unknown
    nosso número, another bank, a cancelled invoice) for someone to look at.
    """
    settings = load(ctx)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read return file {str(path)!r}: {exc.strerror or exc}") from None
    parsed = cnab240.parse_return_file(data)
    settled: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    already = 0
    for record in parsed.settlements:
        paid_on = record.occurrence_date or record.credit_date or parsed.generated or today_in_brazil()
        reported = record.nosso_numero.strip()
        reference = f"cnab:{parsed.bank_code}:{reported}:{record.occurrence}:{paid_on.isoformat()}"
        miss = {"nosso_numero": reported, "amount": money(record.amount_paid), "line": record.line}
        with ctx.sessions() as session:
            if session.scalar(select(Payment.id).where(Payment.reference == reference)) is not None:
                already += 1
                continue
            ours = sequence_from_bank(settings, reported)
            invoice_id = None
            if ours is not None:
                invoice_id = session.scalar(
                    select(Invoice.id).where(
                        Invoice.nosso_numero == ours, Invoice.bank_code == parsed.bank_code
                    )
                )
        if invoice_id is None:
            unmatched.append({**miss, "reason": "no invoice with this nosso número"})
            continue
        try:
            with ctx.transaction() as uow:
                invoice = get_invoice(uow.session, invoice_id, lock=True)
                result = _record(
                    uow,
                    settings,
                    invoice,
                    amount=record.amount_paid,
                    paid_on=paid_on,
                    actor=actor,
                    method=PaymentMethod.CNAB.value,
                    reference=reference,
                )
        except IntegrityError:
            already += 1
            continue
        except (ConflictError, ValidationError) as exc:
            unmatched.append({**miss, "reason": str(exc)})
            continue
        settled.append(
            {
                "invoice_id": result["invoice"]["id"],
                "nosso_numero": reported,
                "amount": money(record.amount_paid),
                "paid_on": paid_on.isoformat(),
                "status": result["invoice"]["status"],
            }
        )
    if settled or unmatched:
        with ctx.transaction() as uow:
            audit.record(
                uow,
                actor=actor,
                action="billing.import_return",
                target=Path(path).name,
                detail={"settled": len(settled), "unmatched": len(unmatched), "already": already},
            )
    return {
        "bank": parsed.bank_code,
        "records": len(parsed.records),
        "settled": settled,
        "already_imported": already,
        "unmatched": unmatched,
        "ignored": len(parsed.records) - len(parsed.settlements),
    }


def balance(ctx: Context, invoice_id: int | str, on: dt.date | None = None) -> dict[str, Any]:
    """What the invoice's family owes on ``on`` (default today), with fine, interest and payments."""
    settings = load(ctx)
    with ctx.sessions() as session:
        invoice = get_invoice(session, invoice_id)
        return owed_dict(settings, family(session, invoice), on or today_in_brazil())
