"""Pilot tests of the subscriber detail's invoices table, the second copy issued from it (finance and
admins), and deleting a subscriber (admins; refused in one line while invoices refer to it)."""

from __future__ import annotations

import datetime as dt

import pytest
from invoicing_support import billing_data_fixture  # noqa: F401  (fixture)
from tui_support import SIZE, confirm, drive, errors, fill_form, log_in, notices, open_detail, wait_for

from aaa.services import admins, audit, subscribers
from billing import service as billing
from billing.boleto import today_in_brazil
from tui.app import AdminApp
from tui.screens.subscribers import SubscribersScreen
from tui.widgets.dialogs import ConfirmDialog, FormDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def invoiced(billing_data, actor):
    """Maria's and João's December invoices; the demo admin, fabio (finance), otto (operator), carla (auditor)."""
    billing.run_month(billing_data, "2026-12", actor=actor, today=dt.date(2026, 12, 1))
    admins.ensure_demo_admin(billing_data)
    for username, password, role in (("fabio", "financas1", "finance"), ("otto", "operador1", "operator"), ("carla", "auditora1", "auditor")):
        admins.add_admin(billing_data, username=username, password=password, role=role, actor="test")
    return billing_data


def invoice_rows(detail) -> list[list[str]]:
    table = detail.query_one("#invoices")
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@drive
async def test_detail_lists_the_subscribers_invoices_only(invoiced):
    maria = billing.list_invoices(invoiced, login="maria")[0]
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        assert invoice_rows(detail) == [[maria["number"], "2026-12", "2026-12-10", "R$ 99.90", "R$ 0.00", "open"]]


@drive
async def test_detail_writes_invoice_amounts_the_brazilian_way_in_portuguese(invoiced):
    app = AdminApp(invoiced, language="pt-BR")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        assert invoice_rows(detail)[0][3:5] == ["R$ 99,90", "R$ 0,00"]


@drive
async def test_second_copy_from_the_detail_is_a_new_invoice_audited_and_shown(invoiced):
    original = billing.list_invoices(invoiced, login="maria")[0]
    due = today_in_brazil() + dt.timedelta(days=7)
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot, "fabio", "financas1")
        detail = await open_detail(pilot, "maria")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog)
        await fill_form(pilot, due_date=due.isoformat())
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        await wait_for(pilot, lambda: detail.query_one("#invoices").row_count == 2)
        copy = billing.list_invoices(invoiced, login="maria")[0]
        assert (copy["kind"], copy["parent_id"], copy["due_date"]) == ("second_copy", original["id"], due.isoformat())
        assert billing.show_invoice(invoiced, original["id"])["status"] == "renegotiated"
        entry = audit.list_entries(invoiced)[0]
        assert (entry["action"], entry["actor"], entry["target"]) == ("invoice.second_copy", "admin:fabio", str(original["id"]))
        notice = f"second copy {copy['number']} issued, due {due.isoformat()}, R$ {copy['amount']}"
        assert notice in notices(app)
        assert [row[0] for row in invoice_rows(detail)] == [copy["number"], original["number"]]
        assert [row[5] for row in invoice_rows(detail)] == ["open", "renegotiated"]


@drive
async def test_c_asks_about_the_invoice_picked_in_the_table(invoiced, actor):
    original = billing.list_invoices(invoiced, login="maria")[0]
    billing.second_copy(invoiced, original["id"], today_in_brazil() + dt.timedelta(days=3), actor=actor)
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "fabio", "financas1")
        detail = await open_detail(pilot, "maria")
        await pilot.press("i", "down", "c")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog) and original["number"] in app.screen.form_title
        assert detail.query_one("#invoices").cursor_row == 1


@drive
async def test_a_bad_due_date_for_the_second_copy_is_a_notification_and_issues_nothing(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot, "fabio", "financas1")
        await open_detail(pilot, "maria")
        await pilot.press("c")
        await pilot.pause()
        await fill_form(pilot, due_date="10/12/2026")
        assert any("invalid due date" in e for e in errors(app))
        assert len(billing.list_invoices(invoiced, login="maria")) == 1


@pytest.mark.parametrize(("user", "password"), [("otto", "operador1"), ("carla", "auditora1")])
@drive
async def test_operators_and_auditors_see_invoices_but_are_not_offered_a_second_copy(invoiced, user, password):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, user, password)
        detail = await open_detail(pilot, "maria")
        assert detail.query_one("#invoices").row_count == 1
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is detail
        assert "Second copy" not in {c.title for c in app.get_system_commands(detail)}


@drive
async def test_deleting_a_subscriber_with_invoices_is_refused_with_the_services_one_line(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        assert errors(app) == ["subscriber 'maria' has 1 invoice(s) on record and cannot be deleted; suspend it instead"]
        assert app.screen is detail and subscribers.show_subscriber(invoiced, "maria")["login"] == "maria"


@drive
async def test_deleting_a_subscriber_without_records_goes_back_to_the_refreshed_list(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "hotspot")
        await pilot.press("x")
        await confirm(pilot)
        assert isinstance(app.screen, SubscribersScreen)
        await wait_for(pilot, lambda: app.screen.query_one("#subscribers").row_count == 0)
        assert "subscriber hotspot1 deleted" in notices(app)
        assert audit.list_entries(invoiced)[0]["action"] == "subscriber.delete"


@drive
async def test_only_admins_are_offered_delete(invoiced):
    app = AdminApp(invoiced, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "fabio", "financas1")
        detail = await open_detail(pilot, "hotspot")
        await pilot.press("x")
        await pilot.pause()
        assert app.screen is detail and "Delete" not in {c.title for c in app.get_system_commands(detail)}
    assert "hotspot1" in {s["login"] for s in subscribers.list_subscribers(invoiced)}
