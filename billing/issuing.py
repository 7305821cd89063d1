"""Issuing invoices: the monthly run, second copies, nosso número numbering, boleto and PIX per invoice.

The monthly run issues one invoice per billable subscriber (status active, notified, reduced or
suspended, with a customer) and cycle. Each invoice is its own transaction that starts by taking
the next nosso número (a row lock on ``billing_counters``) and then inserts copy 0 of
(subscriber, cycle); when another run got there first the unique constraint refuses the insert,
the transaction rolls back (giving the number back) and the subscriber is counted as already
issued. So running twice, or on two nodes at once, issues one invoice each.

Due dates: the customer's due day (from ``due_days``) in the cycle's month. An invoice is never due
before the day it is issued: a cycle whose due date has passed (a subscriber who joined after it)
is due on the same day of the following month. A subscriber who joined inside the cycle gets a
pro-rata charge for the days from joining to the month's end when ``prorata`` is on.

One-off charges and discounts waiting for the subscriber (:mod:`billing.charges`) become items of
the invoice in the transaction that inserts it, so they are invoiced exactly once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aaa.context import Context
from aaa.db.models import Customer, Plan, Subscriber, SubscriberStatus
from aaa.errors import ConflictError, ValidationError
from aaa.services import audit
from billing import boleto, charges, pix
from billing.boleto import SAO_PAULO, today_in_brazil
from billing.cycle import Cycle, cycle_of, due_date, first_invoice, parse_cycle
from billing.models import BillingCounter, Charge, Invoice, InvoiceItem, InvoiceKind, InvoiceStatus, ItemKind
from billing.money import ZERO, quantize
from billing.records import SETTLED, as_dict, family, get_invoice, owed_on, paid_total
from billing.settings import InvoicingSettings, load

BILLABLE = (
    SubscriberStatus.ACTIVE.value,
    SubscriberStatus.NOTIFIED.value,
    SubscriberStatus.REDUCED.value,
    SubscriberStatus.SUSPENDED.value,
)
NOSSO_NUMERO_COUNTER = "nosso_numero"
TXID_PREFIX = "AAA"


def next_counter(session: Session, name: str) -> int:
    """Increment counter ``name`` in the caller's transaction and return its new value (from 1).

    The UPDATE locks the row until the transaction ends; the first use inserts it (a concurrent
    first use loses the insert race and increments instead).
    """
    bump = (
        update(BillingCounter)
        .where(BillingCounter.name == name)
        .values(value=BillingCounter.value + 1)
        .returning(BillingCounter.value)
        .execution_options(synchronize_session=False)
    )
    value = session.execute(bump).scalar_one_or_none()
    if value is not None:
        return int(value)
    try:
        with session.begin_nested():
            session.add(BillingCounter(name=name, value=1))
        return 1
    except IntegrityError:
        return int(session.execute(bump).scalar_one())


def allocate_nosso_numero(session: Session, settings: InvoicingSettings) -> str:
    """The next nosso número, zero-padded to the digits the bank's layout gives the sequence."""
    value = next_counter(session, NOSSO_NUMERO_COUNTER)
    digits = settings.sequence_digits
    if value >= 10**digits:
        raise ConflictError(f"the nosso número sequence is exhausted ({digits} digits); ask the bank for a new convênio")
    return str(value).zfill(digits)


def _fit(text: str, limit: int) -> str:
    return pix.to_ascii(text)[:limit].strip()


def attach_documents(settings: InvoicingSettings, invoice: Invoice) -> None:
    """Fill the invoice's boleto (barcode, linha digitável) and PIX payload from its amount, due date
    and nosso número."""
    layout = settings.layout()
    slip = boleto.build(layout, invoice.amount, invoice.due_date, invoice.nosso_numero)
    invoice.bank_code = layout.bank_code
    invoice.boleto_barcode = slip.barcode
    invoice.boleto_linha = slip.linha
    invoice.pix_txid = f"{TXID_PREFIX}{invoice.nosso_numero}"
    invoice.pix_payload = pix.build(
        key=settings.pix_key,
        name=_fit(settings.beneficiary_name, pix.MAX_NAME),
        city=_fit(settings.beneficiary_city, pix.MAX_CITY),
        amount=invoice.amount,
        txid=invoice.pix_txid,
    )


def _br(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


@dataclass(frozen=True)
class _Draft:
    subscriber_id: int
    customer_id: int
    login: str
    cycle: str
    due_date: dt.date
    item: InvoiceItem


def _not_before(cycle: Cycle, due_day: int, today: dt.date) -> dt.date:
    """The cycle's due date, moved a month at a time until it is not before ``today``."""
    month = cycle
    due = due_date(month, due_day)
    while due < today:
        month = month.next()
        due = due_date(month, due_day)
    return due


def _draft(settings: InvoicingSettings, cycle: Cycle, row: Any, today: dt.date, forced: bool) -> _Draft | str | None:
    """The invoice to issue for one subscriber, a reason it cannot be, or None when not due yet."""
    due_day = row.due_day or settings.default_due_day
    if due_day not in settings.due_days:
        return f"due day {due_day} is not one of the configured due_days"
    cycle_due = due_date(cycle, due_day)
    issue_day = cycle_due - dt.timedelta(days=settings.issue_days_before_due)
    joined = row.created_at.astimezone(SAO_PAULO).date()
    if joined > cycle.last_day:
        return None
    if not forced and (today < issue_day or (today > cycle_due and joined < issue_day)):
        return None
    price = quantize(row.price)
    if joined > cycle.first_day:
        share = first_invoice(price, joined, settings.prorata, settings.day_count)
        amount = share.amount
        if settings.prorata and amount != price:
            kind = ItemKind.PRORATA.value
            description = (
                f"{row.plan_name} - proporcional de {_br(share.start)} a {_br(share.end)} ({share.days_used} dias)"
            )
        else:
            kind, description = ItemKind.PLAN.value, f"{row.plan_name} - mensalidade {cycle.month:02d}/{cycle.year}"
    else:
        amount = price
        kind, description = ItemKind.PLAN.value, f"{row.plan_name} - mensalidade {cycle.month:02d}/{cycle.year}"
    if amount <= ZERO:
        return None
    item = InvoiceItem(kind=kind, description=description, quantity=1, unit_price=amount)
    return _Draft(row.id, row.customer_id, row.login, cycle.key, _not_before(cycle, due_day, today), item)


def _issue(ctx: Context, settings: InvoicingSettings, draft: _Draft, today: dt.date) -> dict[str, Any]:
    with ctx.transaction() as uow:
        session = uow.session
        nosso_numero = allocate_nosso_numero(session, settings)
        plan_total = quantize(draft.item.unit_price * draft.item.quantity)
        extra, taken = charges.items_for(charges.pending_for(session, draft.subscriber_id, draft.cycle), plan_total)
        items = [draft.item, *extra]
        invoice = Invoice(
            customer_id=draft.customer_id,
            subscriber_id=draft.subscriber_id,
            cycle=draft.cycle,
            kind=InvoiceKind.ORIGINAL.value,
            copy_number=0,
            issue_date=today,
            due_date=draft.due_date,
            amount=quantize(sum((i.unit_price * i.quantity for i in items), ZERO)),
            status=InvoiceStatus.OPEN.value,
            nosso_numero=nosso_numero,
        )
        invoice.items = items
        attach_documents(settings, invoice)
        session.add(invoice)
        session.flush()
        if taken:
            ids = [c.id for c in taken]
            moved = session.execute(
                update(Charge)
                .where(Charge.id.in_(ids), Charge.invoice_id.is_(None))
                .values(invoice_id=invoice.id)
                .execution_options(synchronize_session=False)
            )
            if getattr(moved, "rowcount", 0) != len(ids):
                raise ConflictError(f"the one-off charges of {draft.login!r} were invoiced meanwhile; run again")
        data = as_dict(get_invoice(session, invoice.id), detail=True)
        uow.emit("aaa_invoice_issued", invoice=data)
    return data


def _cycles(cycle: Cycle | str | None, today: dt.date) -> list[Cycle]:
    if cycle is None:
        return [cycle_of(today), cycle_of(today).next()]
    return [parse_cycle(cycle) if isinstance(cycle, str) else cycle]


def run_month(
    ctx: Context, cycle: Cycle | str | None = None, *, actor: str, today: dt.date | None = None
) -> dict[str, Any]:
    """Issue the invoices due for ``cycle`` ("2026-12"), idempotently.

    Without ``cycle`` (the scheduled run) it looks at this month and the next and issues what is within
    ``issue_days_before_due`` of its due date; a cycle already past its due date is issued only to
    subscribers who joined after its issue day (their first invoice), never backfilled for the rest.
    With ``cycle`` it issues that cycle for everyone now.
    Returns counts, the invoices issued and the subscribers that could not be billed, with why.
    """
    settings = load(ctx)
    day = today or today_in_brazil()
    cycles = _cycles(cycle, day)
    keys = [c.key for c in cycles]
    with ctx.sessions() as session:
        rows = session.execute(
            select(
                Subscriber.id,
                Subscriber.login,
                Subscriber.customer_id,
                Subscriber.created_at,
                Customer.due_day,
                Plan.price,
                Plan.name.label("plan_name"),
            )
            .join(Customer, Subscriber.customer_id == Customer.id)
            .join(Plan, Subscriber.plan_id == Plan.id)
            .where(Subscriber.status.in_(BILLABLE))
            .order_by(Subscriber.id)
        ).all()
        existing = set(
            session.execute(
                select(Invoice.subscriber_id, Invoice.cycle).where(Invoice.cycle.in_(keys), Invoice.copy_number == 0)
            ).all()
        )
    issued: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    already = 0
    for month in cycles:
        for row in rows:
            if (row.id, month.key) in existing:
                already += 1
                continue
            draft = _draft(settings, month, row, day, forced=cycle is not None)
            if draft is None:
                continue
            if isinstance(draft, str):
                problems.append({"login": row.login, "cycle": month.key, "reason": draft})
                continue
            try:
                issued.append(_issue(ctx, settings, draft, day))
            except IntegrityError:
                already += 1
            except ConflictError as exc:
                problems.append({"login": row.login, "cycle": month.key, "reason": str(exc)})
    if issued:
        with ctx.transaction() as uow:
            audit.record(
                uow, actor=actor, action="billing.run", target=",".join(keys),
                detail={"issued": len(issued), "already_issued": already},
            )
    return {
        "cycles": keys,
        "date": day.isoformat(),
        "issued": len(issued),
        "already_issued": already,
        "problems": problems,
        "invoices": [{k: i[k] for k in ("id", "login", "cycle", "due_date", "amount")} for i in issued],
    }


def second_copy(
    ctx: Context, invoice_id: int | str, new_due_date: dt.date, *, actor: str, today: dt.date | None = None
) -> dict[str, Any]:
    """A second copy (segunda via) due on ``new_due_date``: the balance with fine and interest up to
    that day, a new nosso número, boleto and PIX. The replaced invoice becomes ``renegotiated``."""
    settings = load(ctx)
    day = today or today_in_brazil()
    if new_due_date < day:
        raise ValidationError(f"the new due date {new_due_date.isoformat()} is in the past")
    with ctx.transaction() as uow:
        session = uow.session
        nosso_numero = allocate_nosso_numero(session, settings)
        invoice = get_invoice(session, invoice_id, lock=True)
        if invoice.status in SETTLED:
            raise ConflictError(f"invoice {invoice.id} is {invoice.status}; a second copy is only for open or overdue invoices")
        members = family(session, invoice)
        root = members[0]
        owed = owed_on(settings, members, new_due_date)
        paid = paid_total(members)
        items = [
            InvoiceItem(kind=i.kind, description=i.description, quantity=i.quantity, unit_price=i.unit_price)
            for i in root.items
        ]
        late = quantize(owed.fine + owed.interest)
        if late > ZERO:
            items.append(InvoiceItem(
                kind=ItemKind.LATE_FEE.value, quantity=1, unit_price=late,
                description=f"Multa e juros de mora até {_br(new_due_date)} (vencimento original {_br(root.due_date)})",
            ))
        if paid > ZERO:
            items.append(InvoiceItem(
                kind=ItemKind.DISCOUNT.value, quantity=1, unit_price=-paid, description="Valor já pago",
            ))
        amount = quantize(sum((i.unit_price * i.quantity for i in items), Decimal("0")))
        if amount <= ZERO:
            raise ConflictError(f"invoice {invoice.id} has nothing left to pay")
        copy = Invoice(
            customer_id=root.customer_id,
            subscriber_id=root.subscriber_id,
            cycle=root.cycle,
            kind=InvoiceKind.SECOND_COPY.value,
            copy_number=max(m.copy_number for m in members) + 1,
            parent_id=root.id,
            issue_date=day,
            due_date=new_due_date,
            amount=amount,
            status=InvoiceStatus.OPEN.value,
            nosso_numero=nosso_numero,
        )
        copy.items = items
        attach_documents(settings, copy)
        for member in members:
            if member.status not in SETTLED:
                member.status = InvoiceStatus.RENEGOTIATED.value
        session.add(copy)
        session.flush()
        audit.record(uow, actor=actor, action="invoice.second_copy", target=str(root.id), detail={"copy": copy.id})
        data = as_dict(get_invoice(session, copy.id), detail=True)
        uow.emit("aaa_invoice_issued", invoice=data)
    return data
