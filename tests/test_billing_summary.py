"""The dashboard's invoice summary (open and overdue: counts, face value, what is still owed) and
whether invoicing is enabled."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from invoicing_support import billing_data_fixture  # noqa: F401  (fixture)

from aaa.plugins import make_plugin_manager
from billing import service

DEC_1 = dt.date(2026, 12, 1)


@pytest.fixture
def december(billing_data, actor):
    """Maria's December invoice (due 10/12) overdue on 14/12, João's (due 15/12) open with R$ 50 paid."""
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    service.mark_overdue(billing_data, today=dt.date(2026, 12, 14))
    joao = next(i for i in service.list_invoices(billing_data) if i["login"] == "joao")
    service.pay(billing_data, joao["id"], Decimal("50.00"), dt.date(2026, 12, 5), actor=actor)
    return billing_data


def test_summary_of_no_invoices_is_zero_and_enabled(ctx):
    assert service.invoice_summary(ctx) == {
        "enabled": True,
        "open": {"count": 0, "amount": "0.00", "balance": "0.00", "earliest_due_date": None},
        "overdue": {"count": 0, "amount": "0.00", "balance": "0.00", "earliest_due_date": None},
    }


def test_summary_counts_open_and_overdue_with_face_value_and_balance(december):
    summary = service.invoice_summary(december)
    assert summary["open"] == {"count": 1, "amount": "99.90", "balance": "49.90", "earliest_due_date": "2026-12-15"}
    assert summary["overdue"] == {"count": 1, "amount": "99.90", "balance": "99.90", "earliest_due_date": "2026-12-10"}


def test_paid_and_renegotiated_invoices_are_not_counted(december, actor):
    maria = next(i for i in service.list_invoices(december) if i["login"] == "maria")
    service.second_copy(december, maria["id"], dt.date(2026, 12, 20), actor=actor, today=dt.date(2026, 12, 14))
    summary = service.invoice_summary(december)
    assert summary["overdue"]["count"] == 0  # the original is renegotiated now
    assert summary["open"]["count"] == 2 and Decimal(summary["open"]["amount"]) > Decimal("199.80")  # the copy adds fine and interest


def test_summary_says_when_the_invoicing_plugin_is_disabled(ctx):
    disabled = dataclasses.replace(ctx, pm=make_plugin_manager(["invoicing"]))
    assert service.invoicing_enabled(ctx) and not service.invoicing_enabled(disabled)
    assert service.invoice_summary(disabled)["enabled"] is False
