"""A screen that is one table loaded by a worker: the base of the sessions, NAS and plans screens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

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
