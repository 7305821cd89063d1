"""Invoices: the list filtered by status, second copy (a new due date), register a payment, and
write the invoice PDF to a file. Everyone who may see invoices sees the list; finance and admins
change them and export the PDF (which carries the customer's name and address in clear, so its
rendering is audited by the billing service). Amounts are written the way the UI language writes
them (:func:`tui.i18n.money`); when the invoicing plugin is disabled the screen says so above the list.

The second-copy dialog (:func:`ask_second_copy`, :func:`second_copy_notice`) also serves the
subscriber detail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Select, Static

from aaa.errors import ValidationError
from aaa.services import admins
from billing import service as billing
from billing.boleto import today_in_brazil
from billing.money import parse_brl
from tui.i18n import money, t
from tui.screens.base import AdminScreen
from tui.screens.sessions import chosen
from tui.screens.table import TableScreen
from tui.widgets.dialogs import Field

LIMIT = 500

#: screen action -> permission
ACTIONS = {"second_copy": "invoice.edit", "pay": "invoice.edit", "write_pdf": "invoice.export"}


def a_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"invalid {what} {text!r}: use YYYY-MM-DD") from None


def ask_second_copy(screen: AdminScreen, row: dict[str, Any], then: Callable[[dt.date], object]) -> None:
    """Ask for the due date of a second copy of invoice ``row`` (in five days unless changed), ask to
    confirm, then ``then(due_date)`` (which runs ``billing.second_copy`` in a worker)."""
    default = (today_in_brazil() + dt.timedelta(days=5)).isoformat()

    def filled(values: dict[str, Any]) -> None:
        due = a_date(values["due_date"], "due date")
        screen.confirm(t("confirm.second_copy", number=row["number"], due=due.isoformat()), lambda: then(due))

    screen.ask(t("prompt.second_copy", number=row["number"]), [Field("due_date", t("col.due"), default)], filled)


def second_copy_notice(copy: dict[str, Any]) -> str:
    """What to tell the admin about a second copy just issued: its number, due date and amount."""
    return t("done.second_copy", number=copy["number"], due_date=copy["due_date"], amount=money(copy["amount"]))


class InvoicesScreen(TableScreen):
    TITLE_KEY = "screen.invoices"
    HEADERS = ("col.number", "col.customer", "col.login", "col.cycle", "col.due", "col.amount", "col.paid", "col.status")
    BINDINGS = [
        Binding("c", "second_copy", "action.second_copy"),
        Binding("g", "pay", "action.pay"),
        Binding("w", "write_pdf", "action.write_pdf"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ACTIONS:
            return self.can(ACTIONS[action])
        return True

    def compose_body(self) -> Iterable[Widget]:
        yield Static(t("invoices.disabled"), id="invoicing-disabled", classes="warning-banner")
        with Horizontal(id="filter-bar"):
            yield Select[str]([(s, s) for s in billing.STATUSES], prompt=t("filter.any_status"), id="filter-status")
        yield from super().compose_body()

    def on_mount(self) -> None:
        self.query_one("#invoicing-disabled").display = not billing.invoicing_enabled(self.ctx)

    @on(Select.Changed, "#filter-status")
    def status_changed(self) -> None:
        self.action_refresh()

    def fetch(self) -> list[dict[str, Any]]:
        return billing.list_invoices(self.ctx, status=chosen(self.query_one("#filter-status", Select)), limit=LIMIT)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (
            row["number"], row["customer_name"], row["login"], row["cycle"], row["due_date"],
            money(row["amount"]), money(row["paid"]), row["status"],
        )

    def action_second_copy(self) -> None:
        row = self.selected()
        if row is not None:
            ask_second_copy(
                self, row, lambda due: self.perform("invoice.edit", billing.second_copy, row["id"], due, done=second_copy_notice)
            )

    def action_pay(self) -> None:
        row = self.selected()
        if row is None:
            return
        owed = max(Decimal("0.00"), Decimal(row["amount"]) - Decimal(row["paid"]))
        fields = [Field("amount", t("col.amount"), str(owed)), Field("paid_on", t("col.paid_on"), today_in_brazil().isoformat())]

        def then(values: dict[str, Any]) -> None:
            paid_on = a_date(values["paid_on"], "payment date")
            amount = parse_brl(values["amount"])  # "1.234,56", "1234.56", "R$ 99,90"
            self.confirm(
                t("confirm.pay", number=row["number"], amount=money(amount), date=paid_on.isoformat()),
                lambda: self.perform("invoice.edit", billing.pay, row["id"], amount, paid_on, done=t("done.pay", number=row["number"])),
            )

        self.ask(t("prompt.pay", number=row["number"]), fields, then)

    def action_write_pdf(self) -> None:
        row = self.selected()
        if row is None:
            return
        default = str(Path.cwd() / f"fatura-{row['number']}.pdf")
        self.ask(t("prompt.write_pdf", number=row["number"]), [Field("path", t("col.path"), default)], lambda v: self.write_pdf(row["id"], v["path"]))

    @work(thread=True, exit_on_error=False, group="table-action")
    def write_pdf(self, invoice_id: int, path: str) -> None:
        pdf = admins.perform(self.admin, "invoice.export", billing.render_invoice_pdf, self.ctx, invoice_id)
        target = Path(path).expanduser()
        target.write_bytes(pdf)
        self.call_ui(self.notify, t("done.write_pdf", path=str(target), size=len(pdf)))
