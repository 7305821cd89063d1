"""Regenerate the TUI screenshots of the README and docs/tui.md from the demo data `make run` loads.

    .venv/bin/python docs/screenshots.py        # writes docs/tui-dashboard.svg and docs/tui-subscriber.svg

A throw-away SQLite database in a temporary folder gets the demo data (1,000 generated subscribers
and this month's invoices, as `make run`), the demo admin, and Maria online (the session the README
starts with radclient). The app then runs headless at 120x40 in English, as the README's walk-through
does: the dashboard after login, and Maria's detail after `s` (suspend) and Confirm. The dashboard's
background CoA probe is left off, so the picture is the first paint and nothing is sent to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from sqlalchemy import select
from textual.worker import WorkerCancelled, WorkerFailed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aaa.config import parse  # noqa: E402
from aaa.context import build_context  # noqa: E402
from aaa.db import migrate  # noqa: E402
from aaa.db.engine import make_engine  # noqa: E402
from aaa.db.models import AcctSession, Nas, utcnow  # noqa: E402
from aaa.demo import load_demo  # noqa: E402
from aaa.services import admins  # noqa: E402
from tui.app import AdminApp  # noqa: E402
from tui.screens import dashboard  # noqa: E402
from tui.screens.subscriber_detail import SubscriberDetailScreen  # noqa: E402

SIZE = (120, 40)


async def settle(pilot) -> None:
    for _ in range(3):
        try:
            await pilot.app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):
            pass
        await pilot.pause()


async def shoot(ctx, docs: Path) -> None:
    app = AdminApp(ctx, language="en")
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#username").value = admins.DEMO_USERNAME
        app.screen.query_one("#password").value = admins.DEMO_PASSWORD
        app.screen.query_one("#password").focus()
        await pilot.press("enter")
        await settle(pilot)
        app.clear_notifications()
        await pilot.pause()
        (docs / "tui-dashboard.svg").write_text(app.export_screenshot(), encoding="utf-8")

        app.push_screen(SubscriberDetailScreen("maria"))
        await settle(pilot)
        await pilot.press("s")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        app.clear_notifications()
        await pilot.pause()
        (docs / "tui-subscriber.svg").write_text(app.export_screenshot(), encoding="utf-8")


def main() -> None:
    dashboard.PROBE_INTERVAL = None
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'aaa.sqlite3'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        settings = parse({"database": {"url": url}, "security": {"key_file": str(root / "aaa.key")}}, source="screenshots", root=root)
        ctx = build_context(settings)
        try:
            load_demo(ctx, count=1000, plugins=True)
            admins.ensure_demo_admin(ctx)
            with ctx.transaction() as uow:  # Maria online, as the README's radclient line makes her
                now = utcnow()
                uow.session.add(AcctSession(
                    nas_id=uow.session.scalar(select(Nas.id)), acct_session_id="81a00002", login="maria",
                    framed_ip="100.64.0.9", started_at=now, updated_at=now,
                ))
            asyncio.run(shoot(ctx, ROOT / "docs"))
        finally:
            ctx.close()
    print("wrote docs/tui-dashboard.svg and docs/tui-subscriber.svg")


if __name__ == "__main__":
    main()
