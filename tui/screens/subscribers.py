"""Subscribers: search as you type (login, customer name, IP, MAC, CPF/CNPJ, phone), filters by status
and plan, paged results.

Each keystroke restarts a short debounce timer; when it fires, one exclusive worker runs a query
with LIMIT/OFFSET through the service layer, so 100,000 subscribers cost one page at a time and a
newer search cancels the older one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import get_current_worker

from aaa.db.models import SubscriberStatus
from aaa.services import plans, subscribers
from tui.i18n import t
from tui.screens.base import AdminScreen
from tui.screens.sessions import chosen
from tui.screens.subscriber_detail import SubscriberDetailScreen
from tui.widgets import tables

PAGE_SIZE = 50
DEBOUNCE_SECONDS = 0.25
HEADERS = ("col.login", "col.customer", "col.plan", "col.status", "col.ip", "col.mac")


class SubscribersScreen(AdminScreen):
    TITLE_KEY = "screen.subscribers"
    BINDINGS = [
        Binding("slash", "focus_search", "action.search"),
        Binding("pagedown,ctrl+n", "page(1)", "action.next_page"),
        Binding("pageup,ctrl+b", "page(-1)", "action.prev_page"),
        Binding("f5", "refresh", "action.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page = 0
        self.shown_search: str | None = None  # the search text whose results are on screen
        self._debounce: Timer | None = None

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="search-bar"):
            yield Input(placeholder=t("search.placeholder"), id="search")
            yield Select([(s.value, s.value) for s in SubscriberStatus], prompt=t("search.any"), id="status", allow_blank=True)
            yield Select[str]([], prompt=t("filter.any_plan"), id="plan", allow_blank=True)
        yield DataTable(id="subscribers")
        yield Static("", id="pager", classes="muted")

    def on_mount(self) -> None:
        tables.setup(self.query_one(DataTable), HEADERS)
        self.query_one("#search", Input).focus()
        self.load_plans()
        self.action_refresh()

    @work(thread=True, exit_on_error=False, group="choices")
    def load_plans(self) -> None:
        names = [p["name"] for p in plans.list_plans(self.ctx)]
        self.call_ui(self.query_one("#plan", Select).set_options, [(n, n) for n in names])

    @on(Input.Changed, "#search")
    @on(Select.Changed, "#status")
    @on(Select.Changed, "#plan")
    def criteria_changed(self) -> None:
        self.page = 0
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_SECONDS, self.action_refresh)

    @on(Input.Submitted, "#search")
    def to_results(self) -> None:
        self.query_one(DataTable).focus()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_page(self, step: int) -> None:
        if step > 0 and self.query_one(DataTable).row_count < PAGE_SIZE:
            return
        self.page = max(0, self.page + step)
        self.action_refresh()

    def action_refresh(self) -> None:
        status, plan = (chosen(self.query_one(f"#{name}", Select)) for name in ("status", "plan"))
        self.search(self.query_one("#search", Input).value.strip(), status, self.page, plan)

    @work(thread=True, exit_on_error=False, exclusive=True, group="search")
    def search(self, text: str, status: str | None, page: int, plan: str | None = None) -> None:
        rows = subscribers.list_subscribers(
            self.ctx, search=text or None, status=status, plan=plan, limit=PAGE_SIZE, offset=page * PAGE_SIZE
        )
        if not get_current_worker().is_cancelled:
            self.call_ui(self.show, rows, page, text)

    def show(self, rows: list[dict[str, Any]], page: int, text: str) -> None:
        self.shown_search = text
        tables.fill(
            self.query_one(DataTable), rows, "login",
            lambda r: (r["login"], r["customer_name"], r["plan"], r["status"], r["static_ipv4"], r["mac_binding"]),
        )
        self.query_one("#pager", Static).update(t("search.page", page=page + 1, count=len(rows)))

    @on(DataTable.RowSelected)
    def open_subscriber(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(SubscriberDetailScreen(event.row_key.value))
