"""Pilot tests of the NAS and plans screens: add and edit through the form, the NAS activity check,
service errors as notifications, and that only admins are offered (and allowed) the changes."""

from __future__ import annotations

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
    open_session,
    settle,
)

from aaa.services import audit, nas, outbox, plans
from tui.app import AdminApp
from tui.widgets.dialogs import ConfirmDialog, FormDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


async def go(pilot, key: str):
    await pilot.press(key)
    await settle(pilot)
    return pilot.app.screen


@drive
async def test_add_a_nas_from_the_form_keeps_the_secret_hidden(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        screen = await go(pilot, "4")
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog) and app.screen.query_one("#field-secret").password
        await fill_form(pilot, name="bng-norte", address="10.9.9.1", secret="s3gredo!", coa_port="1700", require_message_authenticator=False)
        await settle(pilot)
        added = nas.show_nas(demo, "bng-norte")
        assert (added["address"], added["coa_port"], added["require_message_authenticator"]) == ("10.9.9.1", 1700, False)
        assert "bng-norte" in [r["name"] for r in screen.rows] and "NAS bng-norte added" in notices(app)
        assert "s3gredo!" not in repr(screen.rows)


@drive
async def test_edit_a_nas_without_a_new_secret_keeps_the_old_one(demo):
    first = nas.list_nas(demo)[0]["name"]
    with demo.sessions() as s:
        from aaa.db.models import Nas

        old_secret = s.query(Nas).filter_by(name=first).one().secret_enc
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await go(pilot, "4")
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot, coa_port="3800")
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        assert nas.show_nas(demo, first)["coa_port"] == 3800
        with demo.sessions() as s:
            assert s.query(Nas).filter_by(name=first).one().secret_enc == old_secret
        assert audit.list_entries(demo)[0]["detail"]["fields"] == ["address", "coa_port", "require_message_authenticator"]


@drive
async def test_bad_nas_address_and_port_are_one_line_notifications(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await go(pilot, "4")
        await pilot.press("n")
        await pilot.pause()
        await fill_form(pilot, name="x", address="10.0.0.300", secret="s")
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        await fill_form(pilot, name="y", address="10.0.0.3", secret="s", coa_port="abc")
        await settle(pilot)
        assert any("NAS address" in e for e in errors(app)) and any("invalid CoA port 'abc'" in e for e in errors(app))
        assert {"x", "y"}.isdisjoint(n["name"] for n in nas.list_nas(demo))


@drive
async def test_nas_check_shows_its_latest_activity_and_open_sessions(demo):
    open_session(demo, "maria")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        screen = await go(pilot, "4")
        await pilot.press("c")
        await settle(pilot)
        assert screen.activity["open_sessions"] == 1 and screen.activity["last_accounting_at"]
        assert screen.activity["probe"]["outcome"] in ("unreachable", "no-answer")  # nothing answers on 127.0.0.1:3799
        assert any("1 open session(s)" in n for n in notices(app))


@drive
async def test_add_a_plan_with_rates_as_typed(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        screen = await go(pilot, "5")
        await pilot.press("n")
        await pilot.pause()
        await fill_form(pilot, name="Fibra 1G", down="1G", up="500M", price="199,90")
        await settle(pilot)
        plan = plans.show_plan(demo, "Fibra 1G")
        assert (plan["download_bps"], plan["upload_bps"], plan["price"], plan["subscribers"]) == (10**9, 500 * 10**6, "199.90", 0)
        assert [r["subscribers"] for r in screen.rows if r["name"] == "Fibra 1G"] == [0]


@drive
async def test_bad_rate_shows_the_services_error_and_adds_nothing(demo):
    count = len(plans.list_plans(demo))
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await go(pilot, "5")
        await pilot.press("n")
        await pilot.pause()
        await fill_form(pilot, name="Ruim", down="100 lightyears", up="1M")
        await settle(pilot)
        assert any("download rate" in e for e in errors(app)) and app.is_running
        assert len(plans.list_plans(demo)) == count


@drive
async def test_edit_a_plan_in_use_queues_a_coa_for_its_open_sessions(demo):
    open_session(demo, "maria")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        screen = await go(pilot, "5")
        row = next(r for r in screen.rows if r["name"] == "Fibra 300M")
        screen.query_one("#table").move_cursor(row=screen.rows.index(row))
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot, down="400M")
        await confirm(pilot)
        assert plans.show_plan(demo, "Fibra 300M")["download"] == "400M"
        assert [r["payload"]["cause"] for r in outbox.list_rows(demo)] == ["plan"]
        assert any("1 CoA row(s)" in n for n in notices(app))


@drive
async def test_operator_is_not_offered_nas_or_plan_changes(demo):
    from aaa.services import admins

    admins.add_admin(demo, username="otto", password="operador1", role="operator", actor="test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "otto", "operador1")
        for key in ("4", "5"):
            screen = await go(pilot, key)
            for action in ("n", "e"):
                await pilot.press(action)
                await pilot.pause()
                assert app.screen is screen
            assert {"Add", "Edit"}.isdisjoint(c.title for c in app.get_system_commands(screen))
