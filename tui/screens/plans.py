"""Plans with their speeds, price and how many subscribers use each; add and edit (admins only).

Rates are typed as admins say them (``100M``, ``512k``); the service layer parses and validates
them and its one-line error becomes a notification. Saving a plan queues a CoA for every open
session on it, so an edit is confirmed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.binding import Binding

from aaa.services import plans
from tui.i18n import t
from tui.screens.table import TableScreen
from tui.widgets.dialogs import Field, FormDialog


class PlansScreen(TableScreen):
    TITLE_KEY = "screen.plans"
    KEY = "name"
    HEADERS = ("col.name", "col.download", "col.upload", "col.price", "col.count")
    BINDINGS = [
        Binding("n", "add", "action.add"),
        Binding("e", "edit", "action.edit"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("add", "edit"):
            return self.can("plan.edit")
        return True

    def fetch(self) -> list[dict[str, Any]]:
        return plans.list_plans(self.ctx)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (row["name"], row["download"], row["upload"], f"R$ {row['price']}", row["subscribers"])

    def form(self, row: dict[str, Any] | None) -> list[Field]:
        fields = [] if row else [Field("name", t("col.name"), placeholder="Fibra 300M")]
        return fields + [
            Field("down", t("col.download"), row["download"] if row else "", placeholder="300M"),
            Field("up", t("col.upload"), row["upload"] if row else "", placeholder="150M"),
            Field("price", t("col.price"), row["price"] if row else "", placeholder="99.90"),
        ]

    def action_add(self) -> None:
        def filled(values: dict[str, Any] | None) -> None:
            if values is not None:
                fields = {k: v for k, v in values.items() if v or k in ("name", "down", "up")}
                self.perform("plan.edit", plans.add_plan, done=t("done.plan_added"), **fields)

        self.app.push_screen(FormDialog(t("prompt.plan_add"), self.form(None)), filled)

    def action_edit(self) -> None:
        row = self.selected()
        if row is None:
            return
        name = row["name"]
        before = {f.name: f.value for f in self.form(row)}

        def filled(values: dict[str, Any] | None) -> None:
            changes = {k: v for k, v in (values or {}).items() if v != before[k]}
            if changes:
                self.confirm(
                    t("confirm.plan_edit", name=name, users=row["subscribers"]),
                    lambda: self.perform("plan.edit", plans.update_plan, name, done=t("done.plan_saved"), **changes),
                )

        self.app.push_screen(FormDialog(t("prompt.plan_edit", name=name), self.form(row)), filled)
