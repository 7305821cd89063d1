"""One subscriber: data, customer (masked until revealed), outbox rows, history, sessions, invoices,
and actions.

Actions (suspend, reactivate, trust unlock, change plan, disconnect now, edit, reset password, reveal;
and by key only: a second copy of the invoice selected in the invoices table, delete) go through a
confirmation dialog and then the service layer with ``actor=admin:<username>``, behind
:func:`aaa.services.admins.perform`, so a role that may not do them is refused there too; the
screen does not even offer them to such a role. When an action completes, the notification names
the outbox rows it queued (the service result's ``outbox`` ids) and the subscriber's outbox table
shows them; a second copy's notification gives its number, due date and amount.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, DataTable, Label, Static

from aaa.errors import ValidationError
from aaa.services import admins, customers, overview, plans, subscribers
from billing import service as billing
from tui.i18n import money, t
from tui.screens.base import AdminScreen
from tui.screens.invoices import ask_second_copy, second_copy_notice
from tui.widgets import tables
from tui.widgets.dialogs import ChooseDialog, Field, FormDialog, SecretDialog, whole_number

TRUST_UNLOCK_DAYS = 3

#: screen action -> service-layer permission (also which buttons exist)
ACTIONS: dict[str, str] = {
    "suspend": "subscriber.suspend",
    "reactivate": "subscriber.reactivate",
    "trust_unlock": "subscriber.trust_unlock",
    "set_plan": "subscriber.set_plan",
    "disconnect": "subscriber.disconnect",
    "edit": "subscriber.edit",
    "reset_password": "subscriber.reset_password",
    "reveal": "customer.reveal",
}
#: actions offered by key (and in the palette) but not as buttons -> permission
KEY_ACTIONS: dict[str, str] = {
    "second_copy": "invoice.edit",
    "delete": "subscriber.delete",
}
INVOICES_SHOWN = 24


class SubscriberDetailScreen(AdminScreen):
    TITLE_KEY = "screen.subscriber"
    BINDINGS = [
        Binding("escape", "back", "action.back"),
        Binding("s", "suspend", "action.suspend"),
        Binding("a", "reactivate", "action.reactivate"),
        Binding("u", "trust_unlock", "action.trust_unlock"),
        Binding("p", "set_plan", "action.set_plan"),
        Binding("d", "disconnect", "action.disconnect"),
        Binding("e", "edit", "action.edit"),
        Binding("w", "reset_password", "action.reset_password"),
        Binding("v", "reveal", "action.reveal"),
        Binding("i", "focus_invoices", "action.focus_invoices"),
        Binding("c", "second_copy", "action.second_copy"),
        Binding("x", "delete", "action.delete"),
        Binding("f5", "refresh", "action.refresh"),
    ]

    def __init__(self, login: str) -> None:
        super().__init__()
        self.login = login
        self.data: dict[str, Any] = {}
        self.customer: dict[str, Any] | None = None
        self.invoices: list[dict[str, Any]] = []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        permission = ACTIONS.get(action) or KEY_ACTIONS.get(action)
        return self.can(permission) if permission else True

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="detail"):
            with Horizontal(id="detail-top"):
                with Vertical(classes="panel"):
                    yield Label(t("detail.subscriber"), classes="panel-title")
                    yield Static("", id="subscriber-info")
                with Vertical(classes="panel"):
                    yield Label(t("detail.customer"), classes="panel-title")
                    yield Static("", id="customer-info")
            with Horizontal(id="actions"):
                for action, permission in ACTIONS.items():
                    if self.can(permission):
                        yield Button(t(f"action.{action}"), id=f"do-{action}", classes="action")
            yield Label(t("detail.outbox"), classes="panel-title")
            yield DataTable(id="outbox-rows")
            yield Label(t("detail.history"), classes="panel-title")
            yield DataTable(id="history")
            yield Label(t("detail.sessions"), classes="panel-title")
            yield DataTable(id="sessions")
            yield Label(t("detail.invoices"), classes="panel-title")
            yield DataTable(id="invoices")

    def on_mount(self) -> None:
        self.title = t(self.TITLE_KEY, login=self.login)
        tables.setup(self.query_one("#outbox-rows", DataTable), ("col.id", "col.kind", "col.status", "col.attempts", "col.created", "col.error"))
        tables.setup(self.query_one("#history", DataTable), ("col.at", "col.kind", "col.change", "col.actor"))
        tables.setup(self.query_one("#sessions", DataTable), ("col.started", "col.ip", "col.mac", "col.in", "col.out", "col.status"))
        tables.setup(self.query_one("#invoices", DataTable), ("col.number", "col.cycle", "col.due", "col.amount", "col.paid", "col.status"))
        self.action_refresh()

    # --- loading ------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="detail")
    def load(self, notice: str | None = None) -> None:
        data = subscribers.show_subscriber(self.ctx, self.login)
        customer = customers.show_customer(self.ctx, data["customer_id"], actor=self.admin.actor) if data["customer_id"] else None
        rows = overview.subscriber_outbox(self.ctx, self.login)
        invoices = billing.list_invoices(self.ctx, login=self.login, limit=INVOICES_SHOWN)
        self.call_ui(self.show, data, customer, rows, notice, invoices)

    def show(
        self,
        data: dict[str, Any],
        customer: dict[str, Any] | None,
        rows: list[dict[str, Any]],
        notice: str | None,
        invoices: list[dict[str, Any]],
    ) -> None:
        self.data = data
        self.invoices = invoices
        if customer is not None and not (self.customer and self.customer.get("revealed") and self.customer["id"] == customer["id"]):
            self.customer = customer
        self.query_one("#subscriber-info", Static).update(
            "\n".join(
                f"[b]{label}[/b]  {tables.cell(data.get(key))}"
                for label, key in (
                    (t("col.login"), "login"), (t("col.plan"), "plan"), (t("col.status"), "status"),
                    (t("col.ip"), "static_ipv4"), (t("col.mac"), "mac_binding"), (t("col.simultaneous"), "simultaneous_use"),
                    (t("col.trust_until"), "trust_unlock_until"), (t("col.customer"), "customer_name"),
                )
            )
        )
        self.show_customer()
        tables.fill(
            self.query_one("#outbox-rows", DataTable), rows, "id",
            lambda r: (r["id"], r["kind"], r["status"], r["attempts"], tables.when(r["created_at"]), r["last_error"]),
        )
        tables.fill(
            self.query_one("#history", DataTable), [dict(h, n=i) for i, h in enumerate(data["history"])], "n",
            lambda h: (tables.when(h["at"]), h["kind"], f"{h['from']} → {h['to']}", h["actor"]),
        )
        tables.fill(
            self.query_one("#sessions", DataTable), data["sessions"], "id",
            lambda s: (
                tables.when(s["started_at"]), s["framed_ip"], s["calling_station_id"], tables.octets(s["input_octets"]),
                tables.octets(s["output_octets"]), "online" if s["stopped_at"] is None else tables.when(s["stopped_at"]),
            ),
        )
        tables.fill(
            self.query_one("#invoices", DataTable), self.invoices, "id",
            lambda i: (i["number"], i["cycle"], i["due_date"], money(i["amount"]), money(i["paid"]), i["status"]),
        )
        if notice is not None:
            self.notify(notice)

    def show_customer(self) -> None:
        c = self.customer
        text = t("detail.no_customer") if c is None else "\n".join(
            f"[b]{label}[/b]  {tables.cell(c.get(key))}"
            for label, key in (
                (t("col.name"), "name"), (t("detail.document"), "document"), (t("detail.phone"), "phone"),
                (t("detail.email"), "email"), (t("detail.address"), "address"),
            )
        )
        self.query_one("#customer-info", Static).update(text)

    # --- actions ------------------------------------------------------------------------------------

    @on(Button.Pressed, ".action")
    def button(self, event: Button.Pressed) -> None:
        assert event.button.id is not None
        self.start_action(event.button.id.removeprefix("do-"))

    def action_suspend(self) -> None:
        self.confirm(t("confirm.suspend", login=self.login), lambda: self.act("subscriber.suspend", subscribers.suspend, "done.suspend"))

    def action_reactivate(self) -> None:
        self.confirm(t("confirm.reactivate", login=self.login), lambda: self.act("subscriber.reactivate", subscribers.reactivate, "done.reactivate"))

    def action_trust_unlock(self) -> None:
        self.confirm(
            t("confirm.trust_unlock", login=self.login, days=TRUST_UNLOCK_DAYS),
            lambda: self.act("subscriber.trust_unlock", subscribers.trust_unlock, "done.trust_unlock", days=TRUST_UNLOCK_DAYS),
        )

    def action_disconnect(self) -> None:
        self.confirm(t("confirm.disconnect", login=self.login), lambda: self.act("subscriber.disconnect", subscribers.disconnect, "done.disconnect"))

    def action_edit(self) -> None:
        d = self.data
        fields = [
            Field("ip", t("col.ip"), d.get("static_ipv4") or "", placeholder="100.64.0.10"),
            Field("mac", t("col.mac"), d.get("mac_binding") or "", placeholder="AA:BB:CC:DD:EE:FF"),
            Field("simultaneous_use", t("col.simultaneous"), str(d.get("simultaneous_use") or 1)),
        ]
        before = {f.name: f.value for f in fields}

        def filled(values: dict[str, Any] | None) -> None:
            if values is None:
                return
            changes = {k: v for k, v in values.items() if v != before[k]}
            if "simultaneous_use" in changes:
                try:
                    changes["simultaneous_use"] = whole_number(changes["simultaneous_use"], "simultaneous use")
                except ValidationError as exc:
                    self.notify(str(exc), severity="error")
                    return
            if not changes:
                return
            summary = ", ".join(f"{k}={v or '-'}" for k, v in changes.items())
            self.confirm(
                t("confirm.edit", login=self.login, changes=summary),
                lambda: self.act("subscriber.edit", subscribers.update_subscriber, "done.edit", **changes),
            )

        self.app.push_screen(FormDialog(t("prompt.edit", login=self.login), fields), filled)

    def action_set_plan(self) -> None:
        self.choose_plan()

    @work(thread=True, exit_on_error=False, group="detail-action")
    def choose_plan(self) -> None:
        names = [p["name"] for p in plans.list_plans(self.ctx) if p["name"] != self.data.get("plan")]
        self.call_ui(self.app.push_screen, ChooseDialog(t("prompt.plan"), names), self.plan_chosen)

    def plan_chosen(self, plan: str | None) -> None:
        if plan:
            self.confirm(
                t("confirm.set_plan", login=self.login, plan=plan),
                lambda: self.act("subscriber.set_plan", subscribers.set_plan, "done.set_plan", plan, plan=plan),
            )

    def action_reset_password(self) -> None:
        def chosen(password: str | None) -> None:
            if password:
                self.act("subscriber.reset_password", subscribers.update_subscriber, "done.reset_password", password=password)

        self.app.push_screen(SecretDialog(t("prompt.password", login=self.login)), chosen)

    def action_reveal(self) -> None:
        if self.customer is None:
            return
        self.confirm(t("confirm.reveal", name=self.customer["name"]), self.reveal)

    def action_focus_invoices(self) -> None:
        """Move to the invoices table, to pick the invoice ``c`` makes a second copy of."""
        table = self.query_one("#invoices", DataTable)
        table.focus()
        table.scroll_visible()

    def action_second_copy(self) -> None:
        """A second copy of the invoice under the cursor of the invoices table (the newest by default)."""
        table = self.query_one("#invoices", DataTable)
        if not self.invoices or not table.row_count:
            return
        row = self.invoices[min(table.cursor_row, len(self.invoices) - 1)]
        ask_second_copy(self, row, lambda due: self.issue_second_copy(row["id"], due))

    @work(thread=True, exit_on_error=False, group="detail-action")
    def issue_second_copy(self, invoice_id: int, due: dt.date) -> None:
        copy = admins.perform(self.admin, "invoice.edit", billing.second_copy, self.ctx, invoice_id, due)
        self.call_ui(self.load, second_copy_notice(copy))

    def action_delete(self) -> None:
        self.confirm(t("confirm.delete", login=self.login), self.delete)

    @work(thread=True, exit_on_error=False, group="detail-action")
    def delete(self) -> None:
        """Delete through the service layer, which refuses (one line, as a notification) a subscriber
        who is online or has invoices or charges."""
        admins.perform(self.admin, "subscriber.delete", subscribers.delete_subscriber, self.ctx, self.login)
        self.call_ui(self.deleted)

    def deleted(self) -> None:
        self.notify(t("done.delete", login=self.login))
        self.action_back()
        refresh = getattr(self.app.screen, "action_refresh", None)
        if callable(refresh):  # the list the subscriber was opened from
            refresh()

    def start_action(self, name: str) -> None:
        if self.check_action(name, ()):
            getattr(self, f"action_{name}")()

    @work(thread=True, exit_on_error=False, group="detail-action")
    def act(self, permission: str, function: Callable[..., Any], done: str, *args: Any, plan: str = "", **kwargs: Any) -> None:
        """Run a service function as this admin, then reload and name the outbox rows it queued."""
        result = admins.perform(self.admin, permission, function, self.ctx, self.login, *args, **kwargs)
        ids = list(result.get("outbox", [])) if isinstance(result, dict) else []
        notice = t(done, login=self.login, plan=plan, rows=len(ids))
        if ids:
            notice += " " + t("done.outbox_ids", ids=", ".join(f"#{i}" for i in ids))
        self.call_ui(self.load, notice)

    @work(thread=True, exit_on_error=False, group="detail-action")
    def reveal(self) -> None:
        assert self.customer is not None
        shown = admins.perform(self.admin, "customer.reveal", customers.show_customer, self.ctx, self.customer["id"], reveal=True)
        self.call_ui(self.revealed, shown)

    def revealed(self, customer: dict[str, Any]) -> None:
        self.customer = dict(customer, revealed=True)
        self.show_customer()
