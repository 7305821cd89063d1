"""Pilot test of the subscribers screen's status and plan filters."""

from __future__ import annotations

import pytest
from tui_support import SIZE, demo_fixture, drive, log_in, settle, wait_for  # noqa: F401

from aaa.services import subscribers
from tui.app import AdminApp

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@drive
async def test_status_and_plan_filters_narrow_the_results(demo):
    subscribers.suspend(demo, "maria", actor="test")
    app = AdminApp(demo, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#plan").value = "Fibra 300M"
        expected = {r["login"] for r in subscribers.list_subscribers(demo, plan="Fibra 300M")}
        await wait_for(pilot, lambda: {r.value for r in screen.query_one("#subscribers").rows} == expected)
        screen.query_one("#status").value = "suspended"
        await wait_for(pilot, lambda: [r.value for r in screen.query_one("#subscribers").rows] == ["maria"])
