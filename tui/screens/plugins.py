"""Plugins: what is loaded and which hooks each implements, and the screens plugins add."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from textual import on
from textual.widget import Widget
from textual.widgets import DataTable, Label

from aaa.plugins import describe
from tui.i18n import t
from tui.screens.table import TableScreen
from tui.widgets import tables


class PluginsScreen(TableScreen):
    TITLE_KEY = "screen.plugins"
    HEADERS = ("col.name", "col.module", "col.hooks")
    KEY = "name"

    def compose_body(self) -> Iterable[Widget]:
        yield Label(t("plugins.loaded"), classes="panel-title")
        yield from super().compose_body()
        yield Label(t("plugins.screens"), classes="panel-title")
        yield DataTable(id="plugin-screens")

    def on_mount(self) -> None:
        screens = self.query_one("#plugin-screens", DataTable)
        tables.setup(screens, ("col.name", "col.title"))
        registered = self.admin_app.plugin_screens
        for name, (title, _factory) in sorted(registered.items()):
            screens.add_row(name, title, key=name)
        if not registered:
            screens.add_row(t("plugins.none"), "")

    def fetch(self) -> list[dict[str, Any]]:
        return describe(self.ctx.pm)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (row["name"], row["module"], row["hooks"])

    @on(DataTable.RowSelected, "#plugin-screens")
    def open_plugin_screen(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value in self.admin_app.plugin_screens:
            self.admin_app.open_plugin_screen(event.row_key.value)
