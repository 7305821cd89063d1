"""The admin TUI driven with Textual's Pilot: login, search, actions from the subscriber detail, roles, reveal."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tui_support import SIZE, demo_fixture, drive, log_in, open_detail, open_session, settle, wait_for  # noqa: F401  (fixture)

from aaa.db.models import AuthLog, utcnow
from aaa.services import admins, audit, outbox, subscribers
from tui.app import AdminApp
from tui.navigation import NAVIGATION
from tui.screens.dashboard import DashboardScreen
from tui.screens.login import LoginScreen
from tui.screens.subscriber_detail import SubscriberDetailScreen
from tui.widgets.dialogs import ConfirmDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@drive
async def test_login_with_good_password_opens_the_dashboard(demo):
    with demo.transaction() as uow:
        now = utcnow()
        uow.session.add_all([AuthLog(at=now, login="maria", result="accept"), AuthLog(at=now, login="x", result="reject")])
        uow.session.add(AuthLog(at=now, login="y", result="reject"))
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        assert app.admin == admins.AdminSession("admin", "admin")
        assert isinstance(app.screen, DashboardScreen)
        await wait_for(pilot, lambda: app.screen.query_one("#card-subscribers").lines)
        assert ("active", 23) in app.screen.query_one("#card-subscribers").lines
        # The last two minutes: a minute may turn between writing the rows and the dashboard's query.
        assert sum(app.screen.query_one("#accepts").data[-2:]) == 1 and sum(app.screen.query_one("#rejects").data[-2:]) == 2


@drive
async def test_login_with_bad_password_stays_on_login_and_says_why(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, password="wrong-one")
        assert app.admin is None and isinstance(app.screen, LoginScreen)
        assert "invalid username or password" in str(app.screen.query_one("#login-message").render())


@drive
async def test_locked_user_cannot_log_in_even_with_the_right_password(demo):
    for _ in range(admins.MAX_FAILED_LOGINS):
        with pytest.raises(admins.PermissionDenied):
            admins.authenticate(demo, "admin", "wrong-one")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        assert app.admin is None
        assert "locked" in str(app.screen.query_one("#login-message").render())


@drive
async def test_search_finds_a_subscriber_by_part_of_the_customer_name(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "da sil")
        assert detail.login == "maria"


@drive
async def test_suspend_from_the_detail_lands_in_the_database_and_the_outbox(demo):
    open_session(demo, "maria")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#confirm")
        await settle(pilot)
        assert subscribers.show_subscriber(demo, "maria")["status"] == "suspended"
        rows = outbox.list_rows(demo)
        assert [r["payload"]["cause"] for r in rows] == ["status:suspended"]
        assert detail.query_one("#outbox-rows").row_count == 1
        assert subscribers.show_subscriber(demo, "maria")["history"][0]["actor"] == "admin:admin"


@drive
async def test_cancelled_confirmation_changes_nothing(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "maria")
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("escape")
        await settle(pilot)
        assert subscribers.show_subscriber(demo, "maria")["status"] == "active"


@drive
async def test_auditor_is_not_offered_suspend_and_the_key_does_nothing(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "carla", "auditora1")
        detail = await open_detail(pilot, "maria")
        assert not detail.query("#do-suspend") and not detail.query("#do-reveal")
        await pilot.press("s")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmDialog)
        assert subscribers.show_subscriber(demo, "maria")["status"] == "active"


@drive
async def test_reveal_shows_personal_data_and_is_audited(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        masked = str(detail.query_one("#customer-info").render())
        assert "52998224725" not in masked
        await pilot.press("v")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        assert "52998224725" in str(detail.query_one("#customer-info").render())
        entry = audit.list_entries(demo)[0]
        assert (entry["action"], entry["actor"]) == ("customer.reveal", "admin:admin")


@drive
async def test_every_place_opens_without_errors_in_portuguese(demo):
    app = AdminApp(demo)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        for place in NAVIGATION:
            app.action_goto(place.mode)
            await settle(pilot)
        assert not [n for n in app._notifications if n.severity == "error"]
        assert app.screen.title == "Plugins"


@drive
async def test_a_failing_query_becomes_a_notification_not_a_crash(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        app.push_screen(SubscriberDetailScreen("ghost"))
        await settle(pilot)
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors == ["subscriber 'ghost' not found"] and app.is_running


@drive
async def test_plugin_screens_are_registered_and_open_from_the_plugins_screen(demo):
    from textual.screen import Screen
    from textual.widgets import Static

    from aaa import hookimpl

    class OltScreen(Screen[None]):
        def compose(self):
            yield Static("OLT list")

    class Plugin:
        @hookimpl
        def aaa_register_tui_screens(self, register):
            register("olt", "OLTs and ONUs", OltScreen)

    demo.pm.register(Plugin(), name="olt-test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        assert "OLTs and ONUs" in [c.title for c in app.get_system_commands(app.screen)]
        app.action_goto("plugins")
        await settle(pilot)
        assert "olt-test" in [row["name"] for row in app.screen.rows]
        app.screen.query_one("#plugin-screens").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, OltScreen)


def test_english_and_portuguese_have_the_same_keys():
    from tui.i18n import EN, PT_BR

    assert set(EN) == set(PT_BR)


@drive
async def test_reactivate_change_plan_and_reset_password_from_the_detail(demo):
    open_session(demo, "maria")
    subscribers.suspend(demo, "maria", actor="test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        await pilot.press("a")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        assert subscribers.show_subscriber(demo, "maria")["status"] == "active"
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("down", "enter")  # the first other plan
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        assert subscribers.show_subscriber(demo, "maria")["plan"] != "Fibra 300M"
        await pilot.press("w")
        await pilot.pause()
        app.screen.query_one("#secret").value = "nova-senha-1"
        await pilot.click("#confirm")
        await settle(pilot)
        assert [e["action"] for e in audit.list_entries(demo)[:3]] == ["subscriber.update", "subscriber.set_plan", "subscriber.status.active"]
        causes = [r["payload"]["cause"] for r in outbox.list_rows(demo)]
        assert causes == ["plan", "status:active", "status:suspended"]
        assert detail.query_one("#outbox-rows").row_count == 3


@drive
async def test_palette_offers_every_screen_and_the_screens_actions(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "maria")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Dashboard", "Subscribers", "Outbox", "Plugins", "Suspend", "Reveal personal data"} <= set(titles)


@drive
async def test_failed_outbox_row_is_retried_from_the_outbox_screen(demo):
    from aaa.db.models import Outbox

    open_session(demo, "maria")
    subscribers.suspend(demo, "maria", actor="test")
    with demo.transaction() as uow:
        row = uow.session.scalar(select(Outbox))
        row.status, row.attempts, row.last_error = "dead", 5, "timeout"
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: app.screen.failed and app.screen.rows)
        await pilot.press("t")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        assert [r["status"] for r in outbox.list_rows(demo)] == ["pending"]
        assert audit.list_entries(demo)[0]["action"] == "outbox.retry"
