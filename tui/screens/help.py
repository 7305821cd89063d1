"""Help: every key binding of the screen it was opened from, and of the app."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Label

from tui.i18n import t
from tui.navigation import NAVIGATION
from tui.screens.base import AdminModal


class HelpScreen(AdminModal):
    BINDINGS = [Binding("escape,q,f1", "close", "action.back")]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__(classes="dialog")
        self.under = under

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label(t("screen.help"), classes="box-title")
            yield Label(t("help.intro"), classes="muted")
            yield DataTable(id="keys", cursor_type="none", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        table.add_columns("", "")
        for place in NAVIGATION:
            table.add_row(place.key, t(place.title_key))
        for active in self.under.active_bindings.values():
            binding = active.binding
            if isinstance(active.node, (Screen, App)) and binding.description and not binding.action.startswith("goto("):
                table.add_row(self.app.get_key_display(binding), binding.description)
        table.add_row("ctrl+p", t("help.palette"))

    def action_close(self) -> None:
        self.dismiss(None)
