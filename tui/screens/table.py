"""A screen that is one table loaded by a worker: the base of the sessions, NAS, plans and outbox
screens, with the selected row and a guarded service action run in a worker."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

from aaa.services import admins
from tui.screens.base import AdminScreen
from tui.widgets import tables


class TableScreen(AdminScreen):
    """Subclasses set ``HEADERS``, ``KEY`` and implement :meth:`fetch` (thread) and :meth:`cells`."""

    HEADERS: ClassVar[Sequence[str]] = ()
    KEY: ClassVar[str] = "id"
    BINDINGS = [Binding("f5,r", "refresh", "action.refresh")]

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="caption", classes="muted")
        yield DataTable(id="table")

    rows: list[dict[str, Any]] | None = None

    def on_mount(self) -> None:
        tables.setup(self.query_one("#table", DataTable), self.HEADERS)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.rows is not None:  # coming back to a screen shown before: fresh data
            self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="table")
    def load(self) -> None:
        self.call_ui(self.show, self.fetch())

    def fetch(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        raise NotImplementedError

    def show(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        tables.fill(self.query_one("#table", DataTable), rows, self.KEY, self.cells)

    def selected(self) -> dict[str, Any] | None:
        """The row under the cursor, or None when the table is empty."""
        table = self.query_one("#table", DataTable)
        if not self.rows or not table.row_count:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    @work(thread=True, exit_on_error=False, group="table-action")
    def perform(
        self, permission: str, function: Callable[..., Any], *args: Any, done: str | Callable[[dict[str, Any]], str] = "", **kwargs: Any
    ) -> None:
        """``function(ctx, *args, **kwargs)`` as this admin (:func:`admins.perform`), then ``done`` as a
        notification (a text formatted with the result's fields, or a function of the result) and a refresh."""
        result = admins.perform(self.admin, permission, function, self.ctx, *args, **kwargs)
        if done:
            values = result if isinstance(result, dict) else {}
            notice = done(values) if callable(done) else done.format(**values, rows=len(values.get("outbox", [])))
            self.call_ui(self.notify, notice)
        self.call_ui(self.action_refresh)
