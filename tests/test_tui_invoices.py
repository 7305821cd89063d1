"""Pilot tests of the invoices screen: status filter, second copy, register payment, write the PDF;
finance may, operators and auditors only look."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from tui_support import (  # noqa: F401
    SIZE,
    confirm,
    demo_fixture,
    drive,
    errors,
    fill_form,
    log_in,
    notices,
    settle,
    wait_for,
)

from aaa.plugins import make_plugin_manager
from aaa.services import admins, audit
from billing import service as billing
from billing.boleto import today_in_brazil
from tui.app import AdminApp
from tui.widgets.dialogs import ConfirmDialog, FormDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def invoiced(demo):
    today = today_in_brazil()
    nxt = (today.replace(day=1) + dt.timedelta(days=32)).strftime("%Y-%m")
    billing.run_month(demo, nxt, actor="test", today=today)
    admins.add_admin(demo, username="fabio", password="financas1", role="finance", actor="test")
    admins.add_admin(demo, username="otto", password="operador1", role="operator", actor="test")
    assert billing.list_invoices(demo)
    return demo


async def open_invoices(pilot, user: str = "fabio", password: str = "financas1"):
    await log_in(pilot, user, password)
    await pilot.press("7")
    await wait_for(pilot, lambda: pilot.app.screen.rows)
    pilot.app.screen.query_one("#table").focus()
    return pilot.app.screen


async def open_payment_form(pilot):
    """Log in as finance, open the invoices screen and press g on the first invoice: its row."""
    screen = await open_invoices(pilot)
    invoice = screen.selected()
    await pilot.press("g")
    await pilot.pause()
    return invoice


@drive
async def test_status_filter_lists_only_that_status(invoiced):
    first = billing.list_invoices(invoiced)[-1]
    billing.pay(invoiced, first["id"], first["amount"], today_in_brazil(), actor="test")
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_invoices(pilot)
        screen.query_one("#filter-status").value = "paid"
        await wait_for(pilot, lambda: {r["status"] for r in screen.rows} == {"paid"})
        assert [r["id"] for r in screen.rows] == [first["id"]]


@drive
async def test_second_copy_with_a_new_due_date(invoiced):
    app = AdminApp(invoiced, language="en")
    due = today_in_brazil() + dt.timedelta(days=7)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_invoices(pilot)
        original = screen.selected()
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog)
        await fill_form(pilot, due_date=due.isoformat())
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        assert billing.show_invoice(invoiced, original["id"])["status"] == "renegotiated"
        copy = billing.list_invoices(invoiced)[0]
        assert (copy["parent_id"], copy["due_date"]) == (original["id"], due.isoformat())
        assert any("second copy" in n for n in notices(app))


@drive
async def test_register_a_payment_settles_the_invoice(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        invoice = await open_payment_form(pilot)
        await fill_form(pilot)  # the defaults: what is owed, paid today
        await confirm(pilot)
        assert billing.show_invoice(invoiced, invoice["id"])["status"] == "paid"


@drive
async def test_an_amount_typed_the_brazilian_way_is_read_as_reais(invoiced):
    app = AdminApp(invoiced, language="pt-BR")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        invoice = await open_payment_form(pilot)
        await fill_form(pilot, amount="1.234,56")
        await confirm(pilot)
        shown = billing.show_invoice(invoiced, invoice["id"])
        assert (shown["status"], shown["paid"]) == ("paid", "1234.56")


@drive
async def test_an_amount_that_is_not_money_is_a_notification_and_nothing_is_paid(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        invoice = await open_payment_form(pilot)
        await fill_form(pilot, amount="12x")
        await settle(pilot)
        assert any("not an amount in reais" in e for e in errors(app))
        assert billing.show_invoice(invoiced, invoice["id"])["status"] == "open"


@drive
async def test_bad_payment_date_is_a_notification_and_nothing_is_paid(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        invoice = await open_payment_form(pilot)
        await fill_form(pilot, paid_on="31/02/2026")
        await settle(pilot)
        assert any("invalid payment date" in e for e in errors(app))
        assert billing.show_invoice(invoiced, invoice["id"])["status"] == "open"


@drive
async def test_write_the_pdf_to_a_file_and_the_rendering_is_audited(invoiced, tmp_path):
    app = AdminApp(invoiced, language="en")
    target = tmp_path / "fatura.pdf"
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_invoices(pilot)
        invoice = screen.selected()
        await pilot.press("w")
        await pilot.pause()
        await fill_form(pilot, path=str(target))
        await settle(pilot)
        assert target.read_bytes().startswith(b"%PDF")
        entry = audit.list_entries(invoiced)[0]
        assert (entry["action"], entry["actor"], entry["target"]) == ("invoice.document", "admin:fabio", str(invoice["id"]))


@pytest.mark.parametrize(("user", "password"), [("otto", "operador1"), ("carla", "auditora1")])
@drive
async def test_operators_and_auditors_see_invoices_but_are_offered_no_changes(invoiced, user, password):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_invoices(pilot, user, password)
        for key in ("c", "g", "w"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen
        assert {"Second copy", "Register payment", "Write PDF"}.isdisjoint(c.title for c in app.get_system_commands(screen))
    with pytest.raises(admins.PermissionDenied):
        admins.require(admins.AdminSession(user, "operator" if user == "otto" else "auditor"), "invoice.edit")


@drive
async def test_amounts_are_written_the_brazilian_way_in_portuguese_and_the_english_way_in_english(invoiced):
    first = billing.list_invoices(invoiced)[0]
    for language, separator in (("pt-BR", ","), ("en", ".")):
        app = AdminApp(invoiced, language=language)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_invoices(pilot)
            amount = str(screen.query_one("#table").get_row_at(0)[5])
            assert amount == "R$ " + first["amount"].replace(".", separator)


@drive
async def test_the_screen_says_when_invoicing_is_disabled_and_still_lists_the_invoices(invoiced):
    without = dataclasses.replace(invoiced, pm=make_plugin_manager(["invoicing"]))
    for ctx, shown in ((invoiced, False), (without, True)):
        app = AdminApp(ctx, language="en")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_invoices(pilot)
            banner = screen.query_one("#invoicing-disabled")
            assert banner.display is shown and screen.rows
            assert "Invoicing is disabled" in str(banner.render())
