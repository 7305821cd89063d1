"""Sessions online now: who, where, which address, since when, how much traffic; filters by NAS,
plan and IP, and disconnect-now of the selected session's subscriber."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Input, Select

from aaa.services import nas, plans, sessions, subscribers
from tui.i18n import t
from tui.screens.table import TableScreen
from tui.widgets import tables

LIMIT = 1000


def chosen(select: Select[str]) -> str | None:
    return None if select.value is Select.NULL else str(select.value)


class SessionsScreen(TableScreen):
    TITLE_KEY = "screen.sessions"
    HEADERS = ("col.login", "col.nas", "col.ip", "col.mac", "col.started", "col.in", "col.out")
    BINDINGS = [Binding("d", "disconnect", "action.disconnect")]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "disconnect":
            return self.can("subscriber.disconnect")
        return True

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="filter-bar"):
            yield Select[str]([], prompt=t("filter.any_nas"), id="filter-nas")
            yield Select[str]([], prompt=t("filter.any_plan"), id="filter-plan")
            yield Input(placeholder=t("filter.ip"), id="filter-ip")
        yield from super().compose_body()

    def on_mount(self) -> None:
        self.load_choices()

    @work(thread=True, exit_on_error=False, group="choices")
    def load_choices(self) -> None:
        names = [n["name"] for n in nas.list_nas(self.ctx)], [p["name"] for p in plans.list_plans(self.ctx)]
        self.call_ui(self.show_choices, *names)

    def show_choices(self, nas_names: list[str], plan_names: list[str]) -> None:
        self.query_one("#filter-nas", Select).set_options((n, n) for n in nas_names)
        self.query_one("#filter-plan", Select).set_options((p, p) for p in plan_names)

    @on(Select.Changed)
    @on(Input.Submitted, "#filter-ip")
    def filters_changed(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load_filtered(
            chosen(self.query_one("#filter-nas", Select)),
            chosen(self.query_one("#filter-plan", Select)),
            self.query_one("#filter-ip", Input).value.strip() or None,
        )

    @work(thread=True, exit_on_error=False, exclusive=True, group="table")
    def load_filtered(self, nas_name: str | None, plan: str | None, ip: str | None) -> None:
        rows = sessions.list_sessions(self.ctx, online=True, nas=nas_name, plan=plan, ip=ip, limit=LIMIT)
        self.call_ui(self.show, rows)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (
            row["login"], row["nas"], row["framed_ip"], row["calling_station_id"], tables.when(row["started_at"]),
            tables.octets(row["input_octets"]), tables.octets(row["output_octets"]),
        )

    def action_disconnect(self) -> None:
        row = self.selected()
        if row is not None:
            login = row["login"]
            self.confirm(
                t("confirm.disconnect", login=login),
                lambda: self.perform("subscriber.disconnect", subscribers.disconnect, login, done=t("done.disconnect", login=login, rows="{rows}")),
            )
