"""Billing storage: invoices, their items, payments, and the counter that numbers boletos.

One invoice per subscriber and billing cycle: the monthly run relies on the unique constraint
``uq_invoices_subscriber_cycle_copy`` over (subscriber_id, cycle, copy_number), where the original
invoice always has ``copy_number`` 0. Two runs at once (two threads, two nodes) both try to insert copy
0 and the database lets one win. A second copy (segunda via) is another row of the same table with
``kind`` "second_copy", ``copy_number`` 1, 2, ... and ``parent_id`` pointing at the original, so it
never collides with the original and shares every query, boleto and PIX column with it. A plain
three-column unique constraint was chosen over a partial unique index because it behaves the same
on SQLite and PostgreSQL and Alembic compares it exactly (``aaa db check``).

Amounts are ``Numeric(12, 2)`` read as ``Decimal``; due, issue and payment dates are calendar dates
in America/Sao_Paulo stored as ``Date``; timestamps are UTC (``UTCDateTime``).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aaa.db.models import Base, Customer, Subscriber, TimestampMixin, utcnow


class InvoiceStatus(enum.StrEnum):
    """Where an invoice stands. ``renegotiated``: replaced by a second copy (or an agreement)."""

    OPEN = "open"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"
    RENEGOTIATED = "renegotiated"


class InvoiceKind(enum.StrEnum):
    ORIGINAL = "original"
    SECOND_COPY = "second_copy"


class ItemKind(enum.StrEnum):
    """What a line of an invoice charges. ``late_fee`` is the fine and interest a second copy adds."""

    PLAN = "plan"
    PRORATA = "prorata"
    INSTALLATION = "installation"
    EQUIPMENT = "equipment"
    DISCOUNT = "discount"
    LATE_FEE = "late_fee"
    OTHER = "other"


#: The item kinds an admin may add by hand as a one-off charge (``aaa billing charge add``).
CHARGE_KINDS = (ItemKind.INSTALLATION.value, ItemKind.EQUIPMENT.value, ItemKind.DISCOUNT.value, ItemKind.OTHER.value)


class PaymentMethod(enum.StrEnum):
    MANUAL = "manual"
    CNAB = "cnab"
    PIX = "pix"


class Invoice(TimestampMixin, Base):
    """A bill for one subscriber and one billing cycle, with its boleto and PIX payload."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("subscriber_id", "cycle", "copy_number", name="uq_invoices_subscriber_cycle_copy"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    cycle: Mapped[str] = mapped_column(String(7), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=InvoiceKind.ORIGINAL.value)
    copy_number: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date, index=True)
    amount: Mapped[Decimal] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.OPEN.value, index=True)
    nosso_numero: Mapped[str] = mapped_column(String(20), unique=True)
    bank_code: Mapped[str] = mapped_column(String(3))
    boleto_barcode: Mapped[str] = mapped_column(String(44))
    boleto_linha: Mapped[str] = mapped_column(String(47))
    pix_payload: Mapped[str | None] = mapped_column(Text)
    pix_txid: Mapped[str | None] = mapped_column(String(25), unique=True)
    paid_on: Mapped[dt.date | None] = mapped_column(Date)
    overdue_at: Mapped[dt.datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(255))
    customer: Mapped[Customer] = relationship()
    subscriber: Mapped[Subscriber] = relationship()
    parent: Mapped[Invoice | None] = relationship(remote_side=[id])
    items: Mapped[list[InvoiceItem]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceItem.id"
    )
    payments: Mapped[list[Payment]] = relationship(back_populates="invoice", order_by="Payment.id")


class InvoiceItem(Base):
    """One line of an invoice; a discount has a negative unit price."""

    __tablename__ = "invoice_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal] = mapped_column()
    invoice: Mapped[Invoice] = relationship(back_populates="items")


class Payment(Base):
    """Money received for an invoice. ``reference`` (bank or PIX id) is unique, so importing the
    same return file twice records nothing new."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column()
    paid_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(8))
    reference: Mapped[str | None] = mapped_column(String(128), unique=True)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    invoice: Mapped[Invoice] = relationship(back_populates="payments")


class Charge(TimestampMixin, Base):
    """A one-off charge or discount waiting for a subscriber's next invoice (installation, equipment,
    a discount, anything else).

    ``amount`` is always positive; a ``discount`` is subtracted. ``cycle`` (optional, "2026-12") holds
    it back until the invoice of that cycle or a later one. The monthly run moves it onto an invoice
    as an item in the same transaction that inserts the invoice and sets ``invoice_id``, so it is
    invoiced exactly once; a charge with ``invoice_id`` can no longer be removed.
    """

    __tablename__ = "billing_charges"
    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column()
    cycle: Mapped[str | None] = mapped_column(String(7))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    subscriber: Mapped[Subscriber] = relationship()
    invoice: Mapped[Invoice | None] = relationship()


class BillingCounter(Base):
    """Named counters (``nosso_numero``). Taking a number locks the row until the transaction ends, so
    numbers are handed out in order and a rolled-back invoice gives its number back (no gaps)."""

    __tablename__ = "billing_counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
