"""The README's TUI walk-through, step by step, on the data ``aaa demo`` (``make run``) loads: log in as
the demo admin, find a subscriber by part of the name, suspend them and see the CoA in the outbox
screen, reactivate, issue a second copy of an invoice."""

from __future__ import annotations

import datetime as dt

import pytest
from tui_support import SIZE, confirm, drive, fill_form, log_in, open_detail, open_session, settle, wait_for

from aaa.demo import load_demo
from aaa.services import admins, subscribers
from billing import service as billing
from billing.boleto import today_in_brazil
from tui.app import AdminApp
from tui.screens.invoices import InvoicesScreen
from tui.screens.outbox import OutboxScreen
from tui.widgets.dialogs import ConfirmDialog, FormDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@drive
async def test_the_readme_walk_through_works_on_the_demo_data(ctx):
    load_demo(ctx, count=3, plugins=True)
    admins.ensure_demo_admin(ctx)
    open_session(ctx, "maria")  # Maria is online (the README starts her session with radclient)
    app = AdminApp(ctx, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "silva")
        assert app.screen.login == "maria"
        await pilot.press("s")
        await confirm(pilot)
        assert subscribers.show_subscriber(ctx, "maria")["status"] == "suspended"

        await pilot.press("6")
        await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen) and app.screen.query_one("DataTable").row_count == 1)

        await pilot.press("2")
        await pilot.pause()
        await pilot.press("enter")  # back on the results, Maria's row is still selected
        await wait_for(pilot, lambda: getattr(app.screen, "login", None) == "maria")
        await pilot.press("a")
        await confirm(pilot)
        assert subscribers.show_subscriber(ctx, "maria")["status"] == "active"

        await pilot.press("7")
        await wait_for(pilot, lambda: isinstance(app.screen, InvoicesScreen) and app.screen.query_one("DataTable").row_count == 2)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog)
        due = (today_in_brazil() + dt.timedelta(days=7)).isoformat()
        await fill_form(pilot, due_date=due)
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        await settle(pilot)
    copies = [i for i in billing.list_invoices(ctx) if i["kind"] == "second_copy"]
    assert len(copies) == 1 and copies[0]["due_date"] == due
