"""The monthly run: one invoice per billable subscriber and cycle, however often and however many
nodes run it; pro-rata first invoices; the scheduled issue window; settings checks."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from invoicing_support import (  # noqa: F401  (fixtures)
    PRICE,
    billing_data_fixture,
    by_login,
    configured,
    joined_on,
    recorder_fixture,
)

from aaa.errors import ConfigError
from billing import boleto, pix, service
from billing.cycle import prorate
from billing.settings import InvoicingSettings

DEC_1 = dt.date(2026, 12, 1)


def test_monthly_run_twice_issues_one_invoice_each(billing_data, recorder, actor):
    first = service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    second = service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    assert (first["issued"], second["issued"], second["already_issued"]) == (2, 0, 2)
    rows = by_login(service.list_invoices(billing_data))
    assert set(rows) == {"maria", "joao"}
    assert rows["maria"]["due_date"] == "2026-12-10" and rows["joao"]["due_date"] == "2026-12-15"
    assert rows["maria"]["amount"] == PRICE and rows["maria"]["status"] == "open"
    assert len(recorder.of("issued")) == 2


def test_two_runs_at_once_still_issue_one_invoice_each(billing_data, actor):
    barrier = threading.Barrier(2)
    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1))
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sum(r["issued"] for r in results) == 2
    rows = service.list_invoices(billing_data)
    assert sorted(r["login"] for r in rows) == ["joao", "maria"]
    assert len({r["nosso_numero"] for r in rows}) == 2


def test_issued_invoice_carries_a_valid_boleto_and_pix(billing_data, actor):
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    invoice = by_login(service.list_invoices(billing_data))["maria"]
    slip = boleto.parse(invoice["linha_digitavel"], today=DEC_1)
    assert slip.amount == Decimal(PRICE) and slip.due_date == dt.date(2026, 12, 10) and slip.bank_code == "001"
    payload = pix.parse(invoice["pix_payload"])
    assert payload.amount == Decimal(PRICE) and payload.txid == invoice["pix_txid"]


def test_first_invoice_is_pro_rata_for_a_subscriber_who_joined_inside_the_cycle(billing_data, actor):
    joined_on(billing_data, "maria", dt.date(2026, 12, 21))
    service.run_month(billing_data, "2026-12", actor=actor, today=dt.date(2026, 12, 21))
    invoice = service.show_invoice(billing_data, by_login(service.list_invoices(billing_data))["maria"]["id"])
    expected = prorate(Decimal(PRICE), dt.date(2026, 12, 21)).amount
    assert Decimal(invoice["amount"]) == expected == Decimal("35.45")
    assert [i["kind"] for i in invoice["items"]] == ["prorata"]
    assert invoice["due_date"] == "2027-01-10", "a due date already past moves to the next month"


def test_pro_rata_off_charges_the_whole_month(billing_data, actor):
    ctx = configured(billing_data, prorata=False)
    joined_on(ctx, "maria", dt.date(2026, 12, 21))
    service.run_month(ctx, "2026-12", actor=actor, today=dt.date(2026, 12, 21))
    assert by_login(service.list_invoices(ctx))["maria"]["amount"] == PRICE


def test_subscriber_who_joined_after_the_cycle_is_not_billed_for_it(billing_data, actor):
    joined_on(billing_data, "joao", dt.date(2027, 1, 3))
    result = service.run_month(billing_data, "2026-12", actor=actor, today=dt.date(2027, 1, 3))
    assert [i["login"] for i in result["invoices"]] == ["maria"]


def test_scheduled_run_issues_each_invoice_days_before_it_is_due(billing_data, actor):
    assert service.run_month(billing_data, None, actor=actor, today=dt.date(2026, 11, 29))["issued"] == 0
    on_30 = service.run_month(billing_data, None, actor=actor, today=dt.date(2026, 11, 30))
    assert [(i["login"], i["cycle"]) for i in on_30["invoices"]] == [("maria", "2026-12")]
    on_5 = service.run_month(billing_data, None, actor=actor, today=dt.date(2026, 12, 5))
    assert [(i["login"], i["cycle"]) for i in on_5["invoices"]] == [("joao", "2026-12")]


def test_customer_due_day_outside_the_offered_days_is_reported_not_billed(billing_data, actor):
    ctx = configured(billing_data, due_days=[5, 10], default_due_day=10)
    result = service.run_month(ctx, "2026-12", actor=actor, today=DEC_1)
    assert [i["login"] for i in result["invoices"]] == ["maria"]
    assert result["problems"] == [
        {"login": "joao", "cycle": "2026-12", "reason": "due day 15 is not one of the configured due_days"}
    ]


def test_itau_layout_issues_itau_boletos(billing_data, actor):
    ctx = configured(billing_data, bank="341", agencia="0057", conta="12345", carteira="109")
    service.run_month(ctx, "2026-12", actor=actor, today=DEC_1)
    invoice = by_login(service.list_invoices(ctx))["maria"]
    assert boleto.parse(invoice["barcode"], today=DEC_1).bank_code == "341"
    assert len(invoice["nosso_numero"]) == 8


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"colour": "blue"}, "unknown key 'plugins.invoicing.colour'"),
        ({"fine_percent": 3}, "late fine must be between 0 and 2%"),
        ({"monthly_interest_percent": "1.5"}, "late interest must be between 0 and 1% a month"),
        ({"bank": "237"}, "'plugins.invoicing.bank' must be one of 001, 341"),
        ({"convenio": "12"}, "convênio must have 7 or 8 digits"),
        ({"due_days": [5, 31]}, "'plugins.invoicing.due_days' must list days between 1 and 28"),
        ({"prorata": "yes"}, "'plugins.invoicing.prorata' has the wrong type"),
        ({"beneficiary_cnpj": "11.222.333/0001-00"}, "is not a valid CNPJ"),
    ],
)
def test_bad_invoicing_settings_are_one_line_naming_the_key(table, message):
    with pytest.raises(ConfigError, match=message) as info:
        InvoicingSettings.from_config(table, "etc/aaa.toml")
    assert "\n" not in str(info.value) and str(info.value).startswith("etc/aaa.toml")


def test_plugin_registers_idempotent_jobs(billing_data):
    jobs: dict[str, tuple[int, object]] = {}
    billing_data.pm.hook.aaa_register_jobs(register=lambda name, interval, fn: jobs.update({name: (interval, fn)}))
    assert set(jobs) >= {"invoicing.monthly_run", "invoicing.overdue_check"}
    run, overdue = jobs["invoicing.monthly_run"][1], jobs["invoicing.overdue_check"][1]
    run(billing_data)
    overdue(billing_data)
    assert run(billing_data)["issued"] == 0 and overdue(billing_data)["overdue"] == 0
