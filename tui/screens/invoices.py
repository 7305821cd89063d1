"""Invoices: a placeholder until the billing service is installed (no made-up data)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget
from textual.widgets import Static

from tui.i18n import t
from tui.screens.base import AdminScreen


class InvoicesScreen(AdminScreen):
    TITLE_KEY = "screen.invoices"

    def compose_body(self) -> Iterable[Widget]:
        yield Static(t("invoices.missing"), id="placeholder")
