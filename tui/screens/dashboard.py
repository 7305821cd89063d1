"""The dashboard: subscribers by status, sessions online, outbox backlog and failures, refreshed live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.binding import Binding
from textual.containers import Grid
from textual.widget import Widget
from textual.widgets import Static

from aaa.db.models import SubscriberStatus
from aaa.services import overview
from tui.i18n import t
from tui.screens.base import AdminScreen
from tui.widgets.cards import StatCard

REFRESH_SECONDS = 5.0


class DashboardScreen(AdminScreen):
    TITLE_KEY = "screen.dashboard"
    BINDINGS = [Binding("r", "refresh", "action.refresh")]

    def compose_body(self) -> Iterable[Widget]:
        with Grid(id="cards"):
            yield StatCard(t("dash.subscribers"), id="card-subscribers")
            yield StatCard(t("dash.sessions"), id="card-sessions")
            yield StatCard(t("dash.outbox"), id="card-outbox")
        yield Static("", id="updated", classes="muted")

    def on_mount(self) -> None:
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="dashboard")
    def load(self) -> None:
        self.call_ui(self.show, overview.dashboard(self.ctx))

    def show(self, data: dict[str, Any]) -> None:
        by_status = data["subscribers"]
        lines: list[tuple[str, str | int]] = [(s.value, by_status.get(s.value, 0)) for s in SubscriberStatus]
        lines.append((t("dash.total"), data["subscribers_total"]))
        self.query_one("#card-subscribers", StatCard).show(lines)
        self.query_one("#card-sessions", StatCard).show([(t("dash.sessions"), data["sessions_online"]), ("NAS", data["nas"])])
        queue = data["outbox"]
        self.query_one("#card-outbox", StatCard).show(
            [(t("dash.backlog"), data["outbox_backlog"]), (t("dash.failed"), data["outbox_failed"])]
            + [(status, n) for status, n in sorted(queue.items())]
        )
        self.query_one("#updated", Static).update(t("dash.updated", time=dt.datetime.now().strftime("%H:%M:%S")))
