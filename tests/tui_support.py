"""Shared helpers of the Pilot tests of the TUI: run a test on its own loop, wait for workers and
conditions, log in, open a subscriber; the ``demo`` fixture (demo data, the demo admin, an auditor).

Test modules import the fixture (``demo_fixture``); it is used by its name ``demo``.
"""

from __future__ import annotations

import asyncio
import functools

import pytest
from sqlalchemy import select
from textual.worker import WorkerCancelled, WorkerFailed

from aaa.db.models import AcctSession, Nas, utcnow
from aaa.demo import load_demo
from aaa.services import admins

SIZE = (120, 40)


def drive(test):
    """Run an async Pilot test on its own event loop (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture(name="demo")
def demo_fixture(ctx):
    load_demo(ctx, count=20)
    admins.ensure_demo_admin(ctx)
    admins.add_admin(ctx, username="carla", password="auditora1", role="auditor", actor="test")
    return ctx


def open_session(ctx, login: str, *, ip: str = "100.64.0.9", acct_session_id: str = "81a00001") -> None:
    with ctx.transaction() as uow:
        now = utcnow()
        uow.session.add(AcctSession(
            nas_id=uow.session.scalar(select(Nas.id)), acct_session_id=acct_session_id, login=login,
            framed_ip=ip, started_at=now, updated_at=now,
        ))


async def settle(pilot) -> None:
    """Let workers finish and their results reach the screen."""
    for _ in range(3):
        try:
            await pilot.app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):
            pass
        await pilot.pause()


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    """Pause until ``condition()`` holds (timers and workers run meanwhile); fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the TUI"
        await pilot.pause(0.05)
    await settle(pilot)


def search_done(screen, text: str) -> bool:
    """The results on screen are those of ``text`` (the debounced search has run)."""
    return screen.shown_search == text


async def log_in(pilot, username: str = "admin", password: str = "admin123") -> None:
    screen = pilot.app.screen
    screen.query_one("#username").value = username
    screen.query_one("#password").value = password
    screen.query_one("#password").focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.admin is not None or not screen.query_one("#submit").disabled)


async def open_detail(pilot, text: str):
    from tui.screens.subscriber_detail import SubscriberDetailScreen
    from tui.screens.subscribers import SubscribersScreen

    await pilot.press("2")
    await pilot.pause()
    assert isinstance(pilot.app.screen, SubscribersScreen)
    screen = pilot.app.screen
    screen.query_one("#search").value = text  # as if typed: Input.Changed, then the debounce timer
    await wait_for(pilot, lambda: search_done(screen, text))
    await pilot.press("enter", "enter")  # Enter moves to the results, Enter opens the row
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SubscriberDetailScreen) and pilot.app.screen.data)
    return pilot.app.screen


async def fill_form(pilot, **values) -> None:
    """Type ``values`` into the open FormDialog (checkboxes take bools) and save it."""
    for name, value in values.items():
        pilot.app.screen.query_one(f"#field-{name}").value = value
    await pilot.click("#confirm")
    await pilot.pause()


async def confirm(pilot) -> None:
    """Press Confirm on the open ConfirmDialog and let the action's worker finish."""
    await pilot.pause()
    await pilot.click("#confirm")
    await settle(pilot)


def errors(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]
