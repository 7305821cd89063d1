"""Pilot tests of the subscriber detail's trust unlock, disconnect now and edit: confirmation, the
service call as the logged-in admin, the outbox rows named in the notification, and role limits."""

from __future__ import annotations

import pytest
from tui_support import (  # noqa: F401  (fixture)
    SIZE,
    confirm,
    demo_fixture,
    drive,
    errors,
    fill_form,
    log_in,
    notices,
    open_detail,
    open_session,
)

from aaa.errors import PermissionDenied
from aaa.services import admins, audit, outbox, subscribers
from tui.app import AdminApp
from tui.widgets.dialogs import ConfirmDialog, FormDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@drive
async def test_trust_unlock_of_a_suspended_subscriber_queues_a_reauthorize_and_names_it(demo):
    open_session(demo, "maria")
    subscribers.suspend(demo, "maria", actor="test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        shown = subscribers.show_subscriber(demo, "maria")
        assert shown["status"] == "suspended" and shown["trust_unlock_until"] is not None
        row = outbox.list_rows(demo)[0]
        assert row["payload"]["cause"] == "trust-unlock"
        assert any(f"#{row['id']}" in n and "unlocked on trust" in n for n in notices(app))
        assert detail.query_one("#outbox-rows").row_count == 2
        assert audit.list_entries(demo)[0]["actor"] == "admin:admin"


@drive
async def test_second_trust_unlock_in_a_cycle_is_refused_as_a_notification(demo):
    subscribers.suspend(demo, "maria", actor="test")
    subscribers.trust_unlock(demo, "maria", actor="test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "maria")
        await pilot.press("u")
        await confirm(pilot)
        assert any("already used the trust unlock" in e for e in errors(app)) and app.is_running


@drive
async def test_trust_unlock_of_an_active_subscriber_is_refused_as_a_notification(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "maria")
        await pilot.press("u")
        await confirm(pilot)
        assert any("not suspended" in e for e in errors(app))
        assert subscribers.show_subscriber(demo, "maria")["trust_unlock_until"] is None


@drive
async def test_disconnect_now_queues_a_disconnect_for_every_open_session(demo):
    open_session(demo, "maria")
    open_session(demo, "maria", ip="100.64.0.10", acct_session_id="81a00002")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        await pilot.press("d")
        await confirm(pilot)
        rows = outbox.list_rows(demo)
        assert [r["payload"]["cause"] for r in rows] == ["disconnect", "disconnect"]
        assert detail.query_one("#outbox-rows").row_count == 2
        assert any("2 Disconnect row(s)" in n for n in notices(app))
        assert subscribers.show_subscriber(demo, "maria")["status"] == "active"


@drive
async def test_edit_changes_ip_mac_and_simultaneous_use_after_confirmation(demo):
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        detail = await open_detail(pilot, "maria")
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, FormDialog)
        await fill_form(pilot, ip="100.64.9.9", mac="aa-bb-cc-dd-ee-01", simultaneous_use="2")
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        shown = subscribers.show_subscriber(demo, "maria")
        assert (shown["static_ipv4"], shown["mac_binding"], shown["simultaneous_use"]) == ("100.64.9.9", "AA:BB:CC:DD:EE:01", 2)
        assert "100.64.9.9" in str(detail.query_one("#subscriber-info").render())
        assert audit.list_entries(demo)[0]["action"] == "subscriber.update"


@drive
async def test_edit_with_a_bad_ip_shows_the_services_error_and_changes_nothing(demo):
    before = subscribers.show_subscriber(demo, "maria")["static_ipv4"]
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot)
        await open_detail(pilot, "maria")
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot, ip="300.1.1.1")
        await confirm(pilot)
        assert any("static IP" in e for e in errors(app))
        assert subscribers.show_subscriber(demo, "maria")["static_ipv4"] == before


@drive
async def test_finance_is_not_offered_trust_unlock_disconnect_or_edit(demo):
    admins.add_admin(demo, username="fabio", password="financas1", role="finance", actor="test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "fabio", "financas1")
        detail = await open_detail(pilot, "maria")
        assert detail.query("#do-suspend")
        assert not detail.query("#do-trust_unlock") and not detail.query("#do-disconnect") and not detail.query("#do-edit")
        for key in ("u", "d", "e"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is detail


@pytest.mark.parametrize("role", ["finance", "auditor"])
@pytest.mark.parametrize(
    ("action", "function", "kwargs"),
    [
        ("subscriber.trust_unlock", subscribers.trust_unlock, {}),
        ("subscriber.disconnect", subscribers.disconnect, {}),
        ("subscriber.edit", subscribers.update_subscriber, {"simultaneous_use": 3}),
    ],
)
def test_service_guard_refuses_the_new_actions_to_finance_and_auditors(demo, role, action, function, kwargs):
    with pytest.raises(PermissionDenied):
        admins.perform(admins.AdminSession("x", role), action, function, demo, "maria", **kwargs)
    assert admins.can("operator", action) and admins.can("admin", action)
