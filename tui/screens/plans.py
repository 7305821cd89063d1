"""Plans with their speeds, price and how many subscribers use each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aaa.services import plans
from tui.screens.table import TableScreen


class PlansScreen(TableScreen):
    TITLE_KEY = "screen.plans"
    HEADERS = ("col.name", "col.download", "col.upload", "col.price", "col.count")

    def fetch(self) -> list[dict[str, Any]]:
        return plans.list_plans(self.ctx)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (row["name"], row["download"], row["upload"], f"R$ {row['price']}", row["subscribers"])
