"""Deleting a subscriber: refused in one line while invoices or one-off charges refer to it (they are
billing records and are kept), done when nothing does."""

from __future__ import annotations

import datetime as dt

import pytest
from invoicing_support import billing_data_fixture  # noqa: F401  (fixture)

from aaa.errors import ConflictError
from aaa.services import subscribers
from billing import service


def test_deleting_a_subscriber_with_invoices_is_refused_in_one_line(billing_data, actor):
    service.run_month(billing_data, "2026-12", actor=actor, today=dt.date(2026, 12, 1))
    with pytest.raises(ConflictError) as refused:
        subscribers.delete_subscriber(billing_data, "maria", actor=actor)
    assert str(refused.value) == "subscriber 'maria' has 1 invoice(s) on record and cannot be deleted; suspend it instead"
    assert subscribers.show_subscriber(billing_data, "maria")["login"] == "maria"


def test_deleting_a_subscriber_with_a_pending_charge_is_refused(billing_data, actor):
    service.add_charge(billing_data, "ex", kind="installation", amount="150.00", description="Instalação", actor=actor)
    with pytest.raises(ConflictError, match=r"1 one-off charge\(s\) on record"):
        subscribers.delete_subscriber(billing_data, "ex", actor=actor)


def test_a_subscriber_without_billing_records_is_deleted_with_its_history(billing_data, actor):
    subscribers.suspend(billing_data, "hotspot1", actor=actor)  # history rows cascade, they do not block
    subscribers.delete_subscriber(billing_data, "hotspot1", actor=actor)
    assert "hotspot1" not in {s["login"] for s in subscribers.list_subscribers(billing_data)}
