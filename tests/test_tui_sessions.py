"""Sessions online: the service's plan and IP filters, the screen's NAS/plan/IP filters, and
disconnect-now of the selected session's subscriber (operators yes, auditors not offered)."""

from __future__ import annotations

import pytest
from tui_support import SIZE, confirm, demo_fixture, drive, log_in, open_session, settle, wait_for  # noqa: F401

from aaa.services import nas, outbox, sessions, subscribers
from tui.app import AdminApp
from tui.widgets.dialogs import ConfirmDialog

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def online(demo):
    """maria (Fibra 300M in the demo) and joao (Fibra 100M) online on the first NAS."""
    open_session(demo, "maria", ip="100.64.0.9", acct_session_id="s1")
    open_session(demo, "joao", ip="100.64.0.10", acct_session_id="s2")
    return demo


def test_list_sessions_filters_by_plan_and_ip_and_stays_compatible(online):
    maria_plan = subscribers.show_subscriber(online, "maria")["plan"]
    assert [r["login"] for r in sessions.list_sessions(online, online=True, plan=maria_plan)] == ["maria"]
    assert [r["login"] for r in sessions.list_sessions(online, online=True, ip="100.64.0.10")] == ["joao"]
    assert sessions.list_sessions(online, online=True, plan="no such plan") == []
    assert len(sessions.list_sessions(online, online=True, nas=nas.list_nas(online)[0]["name"])) == 2


@drive
async def test_filters_narrow_the_sessions_shown(online):
    app = AdminApp(online, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert {r["login"] for r in screen.rows} == {"maria", "joao"}
        screen.query_one("#filter-ip").value = "100.64.0.9"
        screen.query_one("#filter-ip").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: [r["login"] for r in screen.rows] == ["maria"])
        screen.query_one("#filter-ip").value = ""
        screen.query_one("#filter-plan").value = subscribers.show_subscriber(online, "joao")["plan"]
        await wait_for(pilot, lambda: [r["login"] for r in screen.rows] == ["joao"])


@drive
async def test_disconnect_the_selected_sessions_subscriber(online):
    app = AdminApp(online, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        await pilot.press("3")
        await settle(pilot)
        login = app.screen.selected()["login"]
        app.screen.query_one("#table").focus()
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await confirm(pilot)
        rows = [r for r in outbox.list_rows(online) if r["payload"]["cause"] == "disconnect"]
        assert [r["payload"]["login"] for r in rows] == [login]


@drive
async def test_auditor_is_not_offered_disconnect_on_sessions(online):
    app = AdminApp(online, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "carla", "auditora1")
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#table").focus()
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen and not [r for r in outbox.list_rows(online) if r["payload"]["cause"] == "disconnect"]
