"""``aaa billing ...`` and ``aaa invoice ...``: the invoicing commands over :mod:`billing.service`.

Dates are typed as 2026-12-10 or 10/12/2026, amounts as 99,90 or 99.90 (or 1.234,56). Input is
parsed here and in the service, so a bad value is one line on stderr (``aaa: error: ...``) and exit
code 1, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click

from aaa.cli.app import App, pass_app
from aaa.cli.output import emit
from aaa.errors import ValidationError
from billing import service
from billing.boleto import today_in_brazil
from billing.models import CHARGE_KINDS
from billing.money import parse_brl

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
CHARGE_COLUMNS = ("id", "login", "kind", "description", "amount", "cycle", "status", "invoice_id")
INVOICE_COLUMNS = ("id", "cycle", "login", "customer_name", "due_date", "amount", "paid", "status", "kind")

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_BR = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def parse_date(text: str | None, *, what: str = "date") -> dt.date:
    """A date from "2026-12-10" or "10/12/2026"; today in São Paulo when None."""
    if text is None:
        return today_in_brazil()
    value = text.strip()
    try:
        if match := _ISO.fullmatch(value):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        if match := _BR.fullmatch(value):
            return dt.date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        pass
    raise ValidationError(f"invalid {what} {text!r}: use 2026-12-10 or 10/12/2026")


# --- aaa billing -----------------------------------------------------------------------------------


@click.group("billing")
def billing_group() -> None:
    """Invoicing runs: monthly invoices, overdue check, bank return files, one-off charges."""


@billing_group.command("run")
@click.option("--date", "date_text", help="Run as of this date (default today).")
@click.option("--cycle", help="Issue this cycle (YYYY-MM) for every subscriber now.")
@json_option
@pass_app
def billing_run(app: App, date_text: str | None, cycle: str | None, as_json: bool) -> None:
    """Issue the month's invoices (idempotent: running it again issues nothing twice)."""
    today = parse_date(date_text)
    result = service.run_month(app.context(), cycle, actor=app.actor, today=today)
    if as_json:
        emit(result, True)
        return
    click.echo(
        f"cycles {', '.join(result['cycles'])}: {result['issued']} invoices issued, "
        f"{result['already_issued']} already issued"
    )
    for row in result["invoices"]:
        click.echo(f"  invoice {row['id']}  {row['login']}  {row['cycle']}  due {row['due_date']}  {row['amount']}")
    for problem in result["problems"]:
        click.echo(f"  not billed: {problem['login']} ({problem['cycle']}): {problem['reason']}")


@billing_group.command("overdue")
@click.option("--date", "date_text", help="Check as of this date (default today).")
@json_option
@pass_app
def billing_overdue(app: App, date_text: str | None, as_json: bool) -> None:
    """Mark invoices past due as overdue (fires aaa_invoice_overdue once each)."""
    result = service.mark_overdue(app.context(), parse_date(date_text))
    if as_json:
        emit(result, True)
    else:
        click.echo(f"{result['overdue']} invoices became overdue")


@billing_group.command("import-return")
@click.argument("file")
@json_option
@pass_app
def billing_import_return(app: App, file: str, as_json: bool) -> None:
    """Settle invoices from a CNAB 240 return file (re-importing changes nothing)."""
    result = service.import_return_file(app.context(), file, actor=app.actor)
    if as_json:
        emit(result, True)
        return
    click.echo(
        f"{len(result['settled'])} payments recorded, {result['already_imported']} already imported, "
        f"{len(result['unmatched'])} not matched, {result['ignored']} other occurrences"
    )
    for row in result["settled"]:
        click.echo(f"  invoice {row['invoice_id']}  nosso número {row['nosso_numero']}  {row['amount']}  {row['status']}")
    for row in result["unmatched"]:
        click.echo(f"  NOT MATCHED line {row['line']}: nosso número {row['nosso_numero']} {row['amount']}: {row['reason']}")


@billing_group.group("charge")
def charge_group() -> None:
    """One-off charges and discounts for a subscriber's next invoice."""


@charge_group.command("add")
@click.argument("login")
@click.option("--description", required=True, help="Text on the invoice, e.g. 'Taxa de instalação'.")
@click.option("--amount", "amount_text", required=True, help="Amount, e.g. 150,00 (a discount too is positive).")
@click.option("--kind", default="other", show_default=True, help=f"One of {', '.join(CHARGE_KINDS)}.")
@click.option("--cycle", help="Not before the invoice of this cycle (YYYY-MM); default the next invoice.")
@json_option
@pass_app
def charge_add(app: App, login: str, description: str, amount_text: str, kind: str, cycle: str | None, as_json: bool) -> None:
    """Add a charge (or discount) that the next monthly run puts on LOGIN's invoice."""
    data = service.add_charge(
        app.context(), login, description=description, amount=amount_text, kind=kind, cycle=cycle, actor=app.actor
    )
    if as_json:
        emit(data, True)
        return
    when = f"the invoice of {data['cycle']} or later" if data["cycle"] else "the next invoice"
    click.echo(f"charge {data['id']}: {data['kind']} {data['amount']} for {login}, on {when}")


@charge_group.command("list")
@click.argument("login", required=False)
@click.option("--pending", is_flag=True, help="Only charges not yet on an invoice.")
@json_option
@pass_app
def charge_list(app: App, login: str | None, pending: bool, as_json: bool) -> None:
    """List one-off charges and discounts, newest first."""
    rows = service.list_charges(app.context(), login, pending_only=pending)
    emit(rows, as_json, columns=CHARGE_COLUMNS)


@charge_group.command("remove")
@click.argument("charge_id")
@pass_app
def charge_remove(app: App, charge_id: str) -> None:
    """Remove a charge that is not on an invoice yet."""
    data = service.remove_charge(app.context(), charge_id, actor=app.actor)
    click.echo(f"charge {data['id']} removed ({data['kind']} {data['amount']} for {data['login']})")


# --- aaa invoice -----------------------------------------------------------------------------------


@click.group("invoice")
def invoice_group() -> None:
    """Invoices: list, show, summary, pay, document, second copy, cancel."""


@invoice_group.command("list")
@click.option("--status", help="open, paid, overdue, cancelled or renegotiated.")
@click.option("--customer", help="Customer id or part of the name.")
@click.option("--login", help="Subscriber login.")
@click.option("--cycle", help="Billing cycle, YYYY-MM.")
@json_option
@pass_app
def invoice_list(app: App, status: str | None, customer: str | None, login: str | None, cycle: str | None, as_json: bool) -> None:
    """List invoices, newest first."""
    rows = service.list_invoices(app.context(), status=status, customer=customer, login=login, cycle=cycle)
    emit(rows, as_json, columns=INVOICE_COLUMNS)


@invoice_group.command("summary")
@json_option
@pass_app
def invoice_summary(app: App, as_json: bool) -> None:
    """Open and overdue invoices: how many, face value, still owed, earliest due date."""
    data = service.invoice_summary(app.context())
    if as_json:
        emit(data, True)
        return
    rows = [{"status": status, **data[status]} for status in service.PENDING]
    emit(rows, False, columns=("status", "count", "amount", "balance", "earliest_due_date"))


@invoice_group.command("show")
@click.argument("invoice_id")
@click.option("--date", "date_text", help="Show what is owed on this date (default today).")
@json_option
@pass_app
def invoice_show(app: App, invoice_id: str, date_text: str | None, as_json: bool) -> None:
    """One invoice with its items, payments and what is owed."""
    data = service.show_invoice(app.context(), invoice_id, on=parse_date(date_text))
    if not as_json:
        owed = data.pop("owed")
        data.update({f"owed_{key}": value for key, value in owed.items()})
    emit(data, as_json)


@invoice_group.command("pay")
@click.argument("invoice_id")
@click.option("--amount", "amount_text", required=True, help="Amount received, e.g. 109,90.")
@click.option("--date", "date_text", help="Day the money was paid (default today).")
@click.option("--method", default="manual", show_default=True, help="manual, cnab or pix.")
@click.option("--reference", help="Bank or PIX reference (unique).")
@json_option
@pass_app
def invoice_pay(app: App, invoice_id: str, amount_text: str, date_text: str | None, method: str, reference: str | None, as_json: bool) -> None:
    """Record a payment (partial and over-payments are kept)."""
    amount = parse_brl(amount_text)
    paid_on = parse_date(date_text)
    result = service.pay(
        app.context(), invoice_id, amount, paid_on, actor=app.actor, method=method, reference=reference
    )
    if as_json:
        emit(result, True)
        return
    invoice, owed = result["invoice"], result["owed"]
    click.echo(
        f"invoice {invoice['id']}: received {result['payment']['amount']} on {paid_on.isoformat()}; "
        f"owed {owed['total']} (fine {owed['fine']}, interest {owed['interest']}), "
        f"paid {owed['paid']}, balance {owed['balance']}; status {invoice['status']}"
    )


@invoice_group.command("pdf")
@click.argument("invoice_id")
@click.option("-o", "--output", "output", required=True, help="PDF file to write.")
@pass_app
def invoice_pdf(app: App, invoice_id: str, output: str) -> None:
    """Write the invoice document (boleto and PIX) as PDF."""
    data = service.render_invoice_pdf(app.context(), invoice_id, actor=app.actor)
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise ValidationError(f"cannot write {output!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output} ({len(data)} bytes)")


@invoice_group.command("second-copy")
@click.argument("invoice_id")
@click.option("--due-date", "due_text", required=True, help="New due date.")
@json_option
@pass_app
def invoice_second_copy(app: App, invoice_id: str, due_text: str, as_json: bool) -> None:
    """Issue a second copy with a new due date (fine and interest up to it, new boleto and PIX)."""
    due = parse_date(due_text, what="due date")
    emit(service.second_copy(app.context(), invoice_id, due, actor=app.actor), as_json)


@invoice_group.command("cancel")
@click.argument("invoice_id")
@click.option("--reason")
@json_option
@pass_app
def invoice_cancel(app: App, invoice_id: str, reason: str | None, as_json: bool) -> None:
    """Cancel an open or overdue invoice without payments."""
    emit(service.cancel(app.context(), invoice_id, actor=app.actor, reason=reason), as_json)
