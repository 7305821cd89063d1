"""NAS (the routers): the list, add and edit (admins only), and a check of each NAS's latest activity.

The shared secret is typed, never shown back: editing leaves it as it is unless a new one is typed.
The check (:func:`aaa.services.nas.check_nas`) shows the NAS's latest authentication and accounting
and its open sessions, and the outcome of a Status-Server sent to its CoA port (MikroTik routers do
not answer one, so for them the activity is the evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import work
from textual.binding import Binding

from aaa.errors import ValidationError
from aaa.services import nas
from tui.i18n import t
from tui.screens.table import TableScreen
from tui.widgets import tables
from tui.widgets.dialogs import Field, FormDialog, whole_number


class NasScreen(TableScreen):
    TITLE_KEY = "screen.nas"
    KEY = "name"
    HEADERS = ("col.name", "col.address", "col.vendor", "col.coa_port", "col.msg_auth")
    BINDINGS = [
        Binding("n", "add", "action.add"),
        Binding("e", "edit", "action.edit"),
        Binding("c", "check", "action.check"),
    ]

    activity: dict[str, Any] | None = None  # the last check shown

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("add", "edit"):
            return self.can("nas.edit")
        return True

    def fetch(self) -> list[dict[str, Any]]:
        return nas.list_nas(self.ctx)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (row["name"], row["address"], row["vendor"], row["coa_port"], row["require_message_authenticator"])

    def form(self, row: dict[str, Any] | None) -> list[Field]:
        fields = [] if row else [Field("name", t("col.name"), placeholder="bng-centro")]
        return fields + [
            Field("address", t("col.address"), row["address"] if row else "", placeholder="10.0.0.1"),
            Field("secret", t("nas.secret_keep") if row else t("nas.secret"), password=True),
            Field("coa_port", t("col.coa_port"), str(row["coa_port"]) if row else "3799"),
            Field("require_message_authenticator", t("nas.require_msg_auth"), row["require_message_authenticator"] if row else True, flag=True),
        ]

    def action_add(self) -> None:
        def filled(values: dict[str, Any] | None) -> None:
            if values is not None and (changes := self.parsed(values, editing=False)) is not None:
                self.perform("nas.edit", nas.add_nas, done=t("done.nas_added"), **changes)

        self.app.push_screen(FormDialog(t("prompt.nas_add"), self.form(None)), filled)

    def action_edit(self) -> None:
        row = self.selected()
        if row is None:
            return
        name = row["name"]

        def filled(values: dict[str, Any] | None) -> None:
            if values is None or (changes := self.parsed(values, editing=True)) is None:
                return
            self.confirm(t("confirm.nas_edit", name=name), lambda: self.perform("nas.edit", nas.update_nas, name, done=t("done.nas_saved"), **changes))

        self.app.push_screen(FormDialog(t("prompt.nas_edit", name=name), self.form(row)), filled)

    def parsed(self, values: dict[str, Any], *, editing: bool) -> dict[str, Any] | None:
        """Form text to service arguments (an empty secret on edit keeps the old one); None after a
        notification."""
        try:
            changes = dict(values, coa_port=whole_number(values["coa_port"], "CoA port"))
        except ValidationError as exc:
            self.notify(str(exc), severity="error")
            return None
        return {k: v for k, v in changes.items() if v is not None and not (editing and k == "secret" and not v)}

    def action_check(self) -> None:
        row = self.selected()
        if row is not None:
            self.check(row["name"])

    @work(thread=True, exit_on_error=False, group="table-action")
    def check(self, name: str) -> None:
        activity = nas.check_nas(self.ctx, name)
        self.call_ui(self.show_activity, activity)

    def show_activity(self, a: dict[str, Any]) -> None:
        text = t(
            "nas.activity", name=a["name"], auth=tables.when(a["last_auth_at"]),
            accounting=tables.when(a["last_accounting_at"]), sessions=a["open_sessions"],
        )
        found = a["probe"]
        text += "\n" + t(f"nas.probe.{found['outcome']}", port=a["coa_port"], code=found["code"], rtt=found["rtt_ms"], detail=found["detail"])
        self.activity = a
        self.notify(text, title=t("action.check"), severity="information" if a["last_auth_at"] or a["last_accounting_at"] else "warning", timeout=10)
