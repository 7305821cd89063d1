"""The outbox: pending side effects (CoA, Disconnect, messages) or failed ones, with retry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.binding import Binding
from textual.widgets import Static

from aaa.services import outbox
from tui.i18n import t
from tui.screens.table import TableScreen
from tui.widgets import tables

LIMIT = 500


class OutboxScreen(TableScreen):
    TITLE_KEY = "screen.outbox"
    HEADERS = ("col.id", "col.kind", "col.status", "col.attempts", "col.created", "col.error")
    BINDINGS = [
        Binding("f", "toggle_failed", "action.toggle_failed"),
        Binding("t", "retry", "action.retry"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.can("outbox.retry") and self.failed
        return True

    def fetch(self) -> list[dict[str, Any]]:
        if self.failed:
            return outbox.list_rows(self.ctx, failed=True, limit=LIMIT)
        return outbox.list_rows(self.ctx, status="pending", limit=LIMIT)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (row["id"], row["kind"], row["status"], row["attempts"], tables.when(row["created_at"]), row["last_error"])

    def show(self, rows: list[dict[str, Any]]) -> None:
        super().show(rows)
        self.query_one("#caption", Static).update(t("outbox.showing_failed" if self.failed else "outbox.showing_pending"))

    def action_toggle_failed(self) -> None:
        self.failed = not self.failed
        self.refresh_bindings()
        self.action_refresh()

    def action_retry(self) -> None:
        row = self.selected()
        if row is not None:
            row_id = row["id"]
            self.confirm(t("confirm.retry", id=row_id), lambda: self.perform("outbox.retry", outbox.retry, row_id, done=t("done.retry", id=row_id)))
