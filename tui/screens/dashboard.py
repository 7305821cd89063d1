"""The dashboard: subscribers by status, sessions online, authentications and rejects per minute over
the last hour, outbox backlog and failures; refreshed by a timer, the queries run in a worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static

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
        with Vertical(id="auth-rates"):
            yield Label(t("dash.accepts", last=0, peak=0), id="accepts-label")
            yield Sparkline([], id="accepts")
            yield Label(t("dash.rejects", last=0, peak=0), id="rejects-label")
            yield Sparkline([], id="rejects")
        yield Static("", id="updated", classes="muted")

    def on_mount(self) -> None:
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="dashboard")
    def load(self) -> None:
        data = overview.dashboard(self.ctx)
        data["auth"] = overview.auth_per_minute(self.ctx)
        self.call_ui(self.show, data)

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
        for kind, widget in (("accept", "accepts"), ("reject", "rejects")):
            series = data["auth"][kind]
            self.query_one(f"#{widget}", Sparkline).data = series
            self.query_one(f"#{widget}-label", Label).update(t(f"dash.{widget}", last=series[-1], peak=max(series)))
        self.query_one("#updated", Static).update(t("dash.updated", time=dt.datetime.now().strftime("%H:%M:%S")))
