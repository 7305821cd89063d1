"""One-off charges and discounts: added by an admin, put on the next invoice by the monthly run exactly
once, held back to a cycle, removable only while pending, and never making an invoice's total zero
or negative."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from invoicing_support import PRICE, billing_data_fixture, by_login, joined_on  # noqa: F401  (fixtures)

from aaa.errors import AAAError, ConflictError, NotFoundError, ValidationError
from aaa.services import audit
from billing import boleto, pix, service

DEC_1 = dt.date(2026, 12, 1)
JAN_1 = dt.date(2027, 1, 1)


def _install(ctx, actor, login="maria", amount="150,00", **kw):
    return service.add_charge(ctx, login, description="Taxa de instalação", amount=amount, kind="installation", actor=actor, **kw)


def _invoice_of(ctx, login, cycle):
    rows = [r for r in service.list_invoices(ctx, login=login, cycle=cycle) if r["kind"] == "original"]
    assert len(rows) == 1
    return service.show_invoice(ctx, rows[0]["id"], on=DEC_1)


def test_a_charge_lands_on_the_next_invoice_once_after_two_runs(billing_data, actor):
    charge = _install(billing_data, actor)
    assert charge["status"] == "pending" and charge["amount"] == "150.00"
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    invoice = _invoice_of(billing_data, "maria", "2026-12")
    assert [(i["kind"], i["description"], i["total"]) for i in invoice["items"]][1:] == [
        ("installation", "Taxa de instalação", "150.00")
    ]
    assert invoice["amount"] == str(Decimal(PRICE) + Decimal("150.00"))
    assert boleto.parse(invoice["linha_digitavel"], today=DEC_1).amount == Decimal(invoice["amount"])
    assert pix.parse(invoice["pix_payload"]).amount == Decimal(invoice["amount"])
    [listed] = service.list_charges(billing_data, "maria")
    assert listed["status"] == "invoiced" and listed["invoice_id"] == invoice["id"]
    service.run_month(billing_data, "2027-01", actor=actor, today=JAN_1)
    january = _invoice_of(billing_data, "maria", "2027-01")
    assert [i["kind"] for i in january["items"]] == ["plan"], "a charge is never invoiced twice"


def test_a_charge_for_a_later_cycle_waits_for_it(billing_data, actor):
    _install(billing_data, actor, cycle="2027-01")
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    assert [i["kind"] for i in _invoice_of(billing_data, "maria", "2026-12")["items"]] == ["plan"]
    service.run_month(billing_data, "2027-01", actor=actor, today=JAN_1)
    assert [i["kind"] for i in _invoice_of(billing_data, "maria", "2027-01")["items"]] == ["plan", "installation"]


def test_a_discount_is_a_negative_item_and_lowers_the_total(billing_data, actor):
    _install(billing_data, actor)
    service.add_charge(billing_data, "maria", description="Desconto de fidelidade", amount="10", kind="discount", actor=actor)
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    invoice = _invoice_of(billing_data, "maria", "2026-12")
    assert [(i["kind"], i["total"]) for i in invoice["items"]] == [
        ("plan", PRICE), ("installation", "150.00"), ("discount", "-10.00"),
    ]
    assert Decimal(invoice["amount"]) == Decimal(PRICE) + Decimal("140.00")


def test_a_discount_not_smaller_than_the_plan_price_is_refused(billing_data, actor):
    with pytest.raises(ValidationError, match="must be smaller than the monthly price 99.90"):
        service.add_charge(billing_data, "maria", description="Mês grátis", amount=PRICE, kind="discount", actor=actor)
    assert service.list_charges(billing_data) == []


def test_a_discount_that_does_not_fit_a_small_invoice_waits_for_the_next(billing_data, actor):
    """Maria joins on 30 December: her pro-rata December invoice (2 days) cannot take a R$ 50 discount."""
    joined_on(billing_data, "maria", dt.date(2026, 12, 30))
    service.add_charge(billing_data, "maria", description="Desconto de boas-vindas", amount="50", kind="discount", actor=actor)
    service.run_month(billing_data, "2026-12", actor=actor, today=dt.date(2026, 12, 30))
    december = _invoice_of(billing_data, "maria", "2026-12")
    assert [i["kind"] for i in december["items"]] == ["prorata"] and Decimal(december["amount"]) > 0
    assert service.list_charges(billing_data, "maria")[0]["status"] == "pending"
    service.run_month(billing_data, "2027-01", actor=actor, today=JAN_1)
    january = _invoice_of(billing_data, "maria", "2027-01")
    assert Decimal(january["amount"]) == Decimal(PRICE) - Decimal("50")
    assert service.list_charges(billing_data, "maria")[0]["invoice_id"] == january["id"]


def test_remove_a_pending_charge_but_not_an_invoiced_one(billing_data, actor):
    first = _install(billing_data, actor)
    second = service.add_charge(billing_data, "joao", description="Roteador Wi-Fi 6", amount="299,90", kind="equipment", actor=actor)
    service.remove_charge(billing_data, str(second["id"]), actor=actor)
    assert [c["id"] for c in service.list_charges(billing_data)] == [first["id"]]
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    assert [i["kind"] for i in _invoice_of(billing_data, "joao", "2026-12")["items"]] == ["plan"]
    with pytest.raises(ConflictError, match=f"charge {first['id']} is already on invoice"):
        service.remove_charge(billing_data, first["id"], actor=actor)
    with pytest.raises(NotFoundError, match="charge 999 not found"):
        service.remove_charge(billing_data, 999, actor=actor)


def test_adding_and_removing_are_audited(billing_data, actor):
    charge = _install(billing_data, actor)
    service.remove_charge(billing_data, charge["id"], actor=actor)
    entries = [(e["actor"], e["action"], e["target"]) for e in audit.list_entries(billing_data)]
    assert (actor, "billing.charge_add", "maria") in entries
    assert (actor, "billing.charge_remove", "maria") in entries


@pytest.mark.parametrize(
    ("login", "fields", "error", "message"),
    [
        ("maria", {"amount": "12,3,4"}, ValidationError, "not an amount in reais: '12,3,4'"),
        ("maria", {"amount": "0"}, ValidationError, "the amount must be greater than zero"),
        ("maria", {"amount": "-5"}, ValidationError, "the amount must be greater than zero"),
        ("maria", {"kind": "gift"}, ValidationError, "unknown charge kind 'gift'"),
        ("maria", {"description": "   "}, ValidationError, "the description must not be empty"),
        ("maria", {"description": "x" * 201}, ValidationError, "at most 200"),
        ("maria", {"cycle": "2026-13"}, ValidationError, "billing cycle 2026-13 is not a valid month"),
        ("nobody", {}, NotFoundError, "subscriber 'nobody' not found"),
        ("hotspot1", {}, ConflictError, "has no customer and is not billed"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(billing_data, actor, login, fields, error, message):
    args = {"description": "Taxa de instalação", "amount": "150", "kind": "installation", **fields}
    with pytest.raises(error, match=message):
        service.add_charge(billing_data, login, actor=actor, **args)
    assert service.list_charges(billing_data) == []


def test_a_second_copy_keeps_the_charges(billing_data, actor):
    _install(billing_data, actor)
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    original = _invoice_of(billing_data, "maria", "2026-12")
    copy = service.second_copy(billing_data, original["id"], dt.date(2026, 12, 20), actor=actor, today=dt.date(2026, 12, 18))
    assert [i["kind"] for i in copy["items"]] == ["plan", "installation", "late_fee"]


def test_two_runs_at_once_invoice_a_charge_once(billing_data, actor):
    _install(billing_data, actor)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
        except AAAError as exc:  # reported below, on the test's thread
            errors.append(exc)
        except Exception as exc:  # noqa: BLE001  (same)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    rows = by_login(service.list_invoices(billing_data))
    assert Decimal(rows["maria"]["amount"]) == Decimal(PRICE) + 150
    items = service.show_invoice(billing_data, rows["maria"]["id"])["items"]
    assert [i["kind"] for i in items].count("installation") == 1
