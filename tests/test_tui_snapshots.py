"""Snapshot tests of the main TUI screens (pytest-textual-snapshot; `pytest --snapshot-update` to accept)."""

from __future__ import annotations

import pytest
from textual.worker import WorkerCancelled, WorkerFailed

from aaa.demo import load_demo
from aaa.services import admins
from tui.app import AdminApp

pytest.importorskip("pytest_textual_snapshot")

SIZE = (110, 32)


@pytest.fixture
def app(ctx, fast_password_hashing):
    if ctx.engine.dialect.name != "sqlite":
        pytest.skip("one set of snapshots, taken on SQLite")
    load_demo(ctx, count=20)
    admins.ensure_demo_admin(ctx)
    return AdminApp(ctx, language="pt-BR")


async def settle(pilot) -> None:
    for _ in range(3):
        try:
            await pilot.app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):
            pass
        await pilot.pause()


async def log_in(pilot) -> None:
    pilot.app.screen.query_one("#username").value = "admin"
    pilot.app.screen.query_one("#password").value = "admin123"
    pilot.app.screen.query_one("#password").focus()
    await pilot.press("enter")
    await settle(pilot)
    pilot.app.clear_notifications()


def test_login_screen(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE)


def test_plans_screen_with_subscriber_counts(app, snap_compare):
    async def go(pilot):
        await log_in(pilot)
        await pilot.press("5")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=go)
