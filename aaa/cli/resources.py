"""CLI commands over the service layer: nas, plan, customer, subscriber, session, outbox, audit."""

from __future__ import annotations

from typing import Any

import click

from aaa.cli import cli
from aaa.cli.app import App, pass_app
from aaa.cli.output import emit
from aaa.cli.waiting import timeout_option, wait_for_outbox, wait_option
from aaa.services import audit, customers, nas, outbox, plans, sessions, subscribers

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def emit_and_wait(app: App, result: dict[str, Any], *, as_json: bool, wait: bool, timeout: float) -> None:
    """Print an action's result; with --wait, follow its outbox rows until the routers have them."""
    emit(result, as_json)
    if wait:
        wait_for_outbox(app.context(), result, timeout=timeout)

# --- NAS -------------------------------------------------------------------------------------------


@cli.group("nas")
def nas_group() -> None:
    """RADIUS clients (routers)."""


@nas_group.command("add")
@click.argument("name")
@click.option("--ip", "address", required=True, help="Source address of the router's RADIUS packets (IP or CIDR).")
@click.option("--secret", required=True, help="Shared secret (as in the router's /radius entry).")
@click.option("--coa-port", default=3799, show_default=True, type=int)
@click.option("--no-require-message-authenticator", is_flag=True, help="Accept Access-Requests without Message-Authenticator (not recommended).")
@click.option("--vendor", default="mikrotik", show_default=True)
@click.option("--api-username")
@click.option("--api-password")
@click.option("--api-port", type=int)
@click.option("--description")
@json_option
@pass_app
def nas_add(app: App, name: str, address: str, secret: str, coa_port: int, no_require_message_authenticator: bool, vendor: str, api_username: str | None, api_password: str | None, api_port: int | None, description: str | None, as_json: bool) -> None:
    """Add a NAS."""
    row = nas.add_nas(
        app.context(), name=name, address=address, secret=secret, actor=app.actor, coa_port=coa_port,
        require_message_authenticator=not no_require_message_authenticator, vendor=vendor,
        api_username=api_username, api_password=api_password, api_port=api_port, description=description,
    )
    emit(row, as_json)


@nas_group.command("list")
@json_option
@pass_app
def nas_list(app: App, as_json: bool) -> None:
    """List NAS."""
    emit(nas.list_nas(app.context()), as_json, columns=("name", "address", "vendor", "coa_port", "require_message_authenticator"))


@nas_group.command("show")
@click.argument("name")
@json_option
@pass_app
def nas_show(app: App, name: str, as_json: bool) -> None:
    """One NAS (the shared secret is never shown)."""
    emit(nas.show_nas(app.context(), name), as_json)


@nas_group.command("check")
@click.argument("name")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 10),
    default=1.0,
    show_default=True,
    help="seconds to wait for the probe's answer",
)
@json_option
@pass_app
def nas_check(app: App, name: str, timeout: float, as_json: bool) -> None:
    """What the NAS last sent us, and a Status-Server probe of its CoA port (MikroTik does not answer it)."""
    result = nas.check_nas(app.context(), name, timeout=timeout)
    if as_json:
        emit(result, True)
        return
    found = result["probe"]
    said = {
        "answered": f"answered ({found['code']}, {found['rtt_ms']} ms)",
        "no-answer": "no answer (expected from MikroTik)",
        "unreachable": f"refused ({found['detail']}): on RouterOS check /radius incoming accept=yes",
    }
    emit({
        "name": result["name"], "address": result["address"],
        "last_auth_at": result["last_auth_at"] or "never", "last_accounting_at": result["last_accounting_at"] or "never",
        "open_sessions": result["open_sessions"],
        "status_server": said.get(found["outcome"], f"{found['outcome']}: {found['detail']}") + f" on CoA port {result['coa_port']}",
    }, False)  # fmt: skip


@nas_group.command("update")
@click.argument("name")
@click.option("--ip", "address")
@click.option("--secret")
@click.option("--coa-port", type=int)
@click.option("--require-message-authenticator/--no-require-message-authenticator", default=None)
@click.option("--api-username")
@click.option("--api-password")
@click.option("--api-port", type=int)
@click.option("--description")
@json_option
@pass_app
def nas_update(app: App, name: str, as_json: bool, **changes: object) -> None:
    """Change a NAS: address, secret, CoA port, Message-Authenticator, API credentials."""
    emit(nas.update_nas(app.context(), name, actor=app.actor, **changes), as_json)


@nas_group.command("delete")
@click.argument("name")
@pass_app
def nas_delete(app: App, name: str) -> None:
    """Delete a NAS that has no sessions on record (those are kept for Marco Civil)."""
    nas.delete_nas(app.context(), name, actor=app.actor)
    click.echo(f"NAS {name} deleted")


# --- Plans -----------------------------------------------------------------------------------------

plan_options = [
    click.option("--price", help="Monthly price in BRL, e.g. 99.90."),
    click.option("--burst", help="Burst rate DOWN/UP, e.g. 200M/100M."),
    click.option("--burst-threshold", help="Burst threshold DOWN/UP."),
    click.option("--burst-time", "burst_time_seconds", type=int, help="Burst time in seconds."),
    click.option("--priority", type=int, help="Queue priority 1 (highest) to 8."),
    click.option("--pool", "ipv4_pool", help="IPv4 pool name on the router (Framed-Pool)."),
    click.option("--ipv6-pool", help="IPv6 pool name (Framed-IPv6-Pool)."),
    click.option("--delegated-ipv6-pool", help="Pool for DHCPv6-PD (Mikrotik-Delegated-IPv6-Pool)."),
    click.option("--session-timeout", type=int, help="Seconds."),
    click.option("--idle-timeout", type=int, help="Seconds."),
    click.option("--interim-interval", type=int, help="Acct-Interim-Interval in seconds."),
    click.option("--data-limit", help="Total traffic limit, e.g. 500G."),
    click.option("--group", "mikrotik_group", help="PPP/Hotspot profile on the router (Mikrotik-Group)."),
]


def with_plan_options(function: Any) -> Any:
    for option in reversed(plan_options):
        function = option(function)
    return function


@cli.group("plan")
def plan_group() -> None:
    """Plans: speed, burst, pools, limits, price."""


@plan_group.command("add")
@click.argument("name")
@click.option("--down", required=True, help="Download rate, e.g. 100M.")
@click.option("--up", required=True, help="Upload rate, e.g. 50M.")
@with_plan_options
@json_option
@pass_app
def plan_add(app: App, name: str, down: str, up: str, as_json: bool, **fields: object) -> None:
    """Add a plan."""
    emit(plans.add_plan(app.context(), name=name, down=down, up=up, actor=app.actor, **fields), as_json)


@plan_group.command("list")
@json_option
@pass_app
def plan_list(app: App, as_json: bool) -> None:
    """List plans with their rates, price and pools."""
    emit(plans.list_plans(app.context()), as_json, columns=("name", "download", "upload", "price", "ipv4_pool", "subscribers"))


@plan_group.command("show")
@click.argument("name")
@json_option
@pass_app
def plan_show(app: App, name: str, as_json: bool) -> None:
    """One plan and how many subscribers use it."""
    emit(plans.show_plan(app.context(), name), as_json)


@plan_group.command("update")
@click.argument("name")
@click.option("--down")
@click.option("--up")
@with_plan_options
@wait_option
@timeout_option
@json_option
@pass_app
def plan_update(app: App, name: str, wait: bool, timeout: float, as_json: bool, **fields: object) -> None:
    """Change a plan; every open session on it is updated by CoA through the outbox."""
    result = plans.update_plan(app.context(), name, actor=app.actor, **fields)
    emit_and_wait(app, result, as_json=as_json, wait=wait, timeout=timeout)


@plan_group.command("delete")
@click.argument("name")
@pass_app
def plan_delete(app: App, name: str) -> None:
    """Delete a plan that no subscriber uses."""
    plans.delete_plan(app.context(), name, actor=app.actor)
    click.echo(f"plan {name} deleted")


# --- Customers -------------------------------------------------------------------------------------

customer_options = [
    click.option("--document", help="CPF or CNPJ (punctuation allowed)."),
    click.option("--phone"),
    click.option("--email"),
    click.option("--address"),
    click.option("--due-day", type=int, help="Invoice due day (1-28)."),
    click.option("--consent-whatsapp/--no-consent-whatsapp", default=None),
]


def with_customer_options(function: Any) -> Any:
    for option in reversed(customer_options):
        function = option(function)
    return function


@cli.group("customer")
def customer_group() -> None:
    """Customers (the person or company on the contract)."""


@customer_group.command("add")
@click.argument("name")
@with_customer_options
@json_option
@pass_app
def customer_add(app: App, name: str, as_json: bool, **fields: object) -> None:
    """Add a customer (CPF/CNPJ checked; personal data encrypted at rest)."""
    emit(customers.add_customer(app.context(), actor=app.actor, name=name, **fields), as_json)


@customer_group.command("list")
@click.option("--search", help="Part of the name, or a CPF/CNPJ or phone.")
@click.option("--limit", default=200, show_default=True)
@json_option
@pass_app
def customer_list(app: App, search: str | None, limit: int, as_json: bool) -> None:
    """List customers (personal data masked)."""
    ctx = app.context()
    rows = customers.find_customers(ctx, search, limit=limit) if search else customers.list_customers(ctx, limit=limit)
    emit(rows, as_json, columns=("id", "name", "document", "phone", "due_day"))


@customer_group.command("show")
@click.argument("customer_id", type=int)
@click.option("--reveal", is_flag=True, help="Show personal data in clear (recorded in the audit log).")
@json_option
@pass_app
def customer_show(app: App, customer_id: int, reveal: bool, as_json: bool) -> None:
    """One customer (personal data masked unless --reveal)."""
    emit(customers.show_customer(app.context(), customer_id, actor=app.actor, reveal=reveal), as_json)


@customer_group.command("update")
@click.argument("customer_id", type=int)
@click.option("--name")
@with_customer_options
@json_option
@pass_app
def customer_update(app: App, customer_id: int, as_json: bool, **fields: object) -> None:
    """Change a customer's data, due day or consent."""
    emit(customers.update_customer(app.context(), customer_id, actor=app.actor, **fields), as_json)


@customer_group.command("delete")
@click.argument("customer_id", type=int)
@pass_app
def customer_delete(app: App, customer_id: int) -> None:
    """Delete a customer without subscribers."""
    customers.delete_customer(app.context(), customer_id, actor=app.actor)
    click.echo(f"customer {customer_id} deleted")


# --- Subscribers -----------------------------------------------------------------------------------


@cli.group("subscriber")
def subscriber_group() -> None:
    """Subscribers (PPPoE/Hotspot logins)."""


@subscriber_group.command("add")
@click.argument("login")
@click.option("--password", help="Password (PAP, CHAP, MS-CHAP); optional for MAC authentication.")
@click.option("--plan", required=True)
@click.option("--ip", help="Static IPv4 (Framed-IP-Address).")
@click.option("--mac", help="Bind the login to this MAC (Calling-Station-Id).")
@click.option("--ipv6-prefix", help="Static delegated IPv6 prefix.")
@click.option("--simultaneous-use", type=int, default=None)
@click.option("--customer", "customer_id", type=int, help="Customer id.")
@json_option
@pass_app
def subscriber_add(app: App, login: str, as_json: bool, **fields: object) -> None:
    """Add a subscriber."""
    emit(subscribers.add_subscriber(app.context(), login=login, actor=app.actor, **fields), as_json)


@subscriber_group.command("list")
@click.option("--status")
@click.option("--plan")
@click.option("--search", help="Part of the login or customer name, an IP or a MAC.")
@click.option("--limit", default=200, show_default=True)
@click.option("--offset", default=0)
@json_option
@pass_app
def subscriber_list(app: App, status: str | None, plan: str | None, search: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List subscribers, filtered by status, plan or a search."""
    rows = subscribers.list_subscribers(app.context(), status=status, plan=plan, search=search, limit=limit, offset=offset)
    emit(rows, as_json, columns=("login", "plan", "status", "static_ipv4", "mac_binding", "customer_name"))


@subscriber_group.command("show")
@click.argument("login")
@json_option
@pass_app
def subscriber_show(app: App, login: str, as_json: bool) -> None:
    """One subscriber: plan, status, its history (status and plan changes) and recent sessions."""
    emit(subscribers.show_subscriber(app.context(), login), as_json)


@subscriber_group.command("update")
@click.argument("login")
@click.option("--password")
@click.option("--ip")
@click.option("--mac")
@click.option("--ipv6-prefix")
@click.option("--simultaneous-use", type=int)
@click.option("--customer", "customer_id", type=int)
@json_option
@pass_app
def subscriber_update(app: App, login: str, as_json: bool, **fields: object) -> None:
    """Change a subscriber's password, static IP or IPv6 prefix, MAC binding, simultaneous use or customer."""
    emit(subscribers.update_subscriber(app.context(), login, actor=app.actor, **fields), as_json)


@subscriber_group.command("delete")
@click.argument("login")
@pass_app
def subscriber_delete(app: App, login: str) -> None:
    """Delete a subscriber who is not online and has no invoices or one-off charges (suspend those instead)."""
    subscribers.delete_subscriber(app.context(), login, actor=app.actor)
    click.echo(f"subscriber {login} deleted")


@subscriber_group.command("suspend")
@click.argument("login")
@click.option("--reason")
@wait_option
@timeout_option
@json_option
@pass_app
def subscriber_suspend(app: App, login: str, reason: str | None, wait: bool, timeout: float, as_json: bool) -> None:
    """Suspend: open sessions get the suspended treatment through CoA/Disconnect."""
    result = subscribers.suspend(app.context(), login, actor=app.actor, reason=reason)
    emit_and_wait(app, result, as_json=as_json, wait=wait, timeout=timeout)


@subscriber_group.command("reactivate")
@click.argument("login")
@click.option("--reason")
@wait_option
@timeout_option
@json_option
@pass_app
def subscriber_reactivate(app: App, login: str, reason: str | None, wait: bool, timeout: float, as_json: bool) -> None:
    """Reactivate (no fee, ever): open sessions get the plan back through CoA/Disconnect."""
    result = subscribers.reactivate(app.context(), login, actor=app.actor, reason=reason)
    emit_and_wait(app, result, as_json=as_json, wait=wait, timeout=timeout)


@subscriber_group.command("set-plan")
@click.argument("login")
@click.argument("plan")
@wait_option
@timeout_option
@json_option
@pass_app
def subscriber_set_plan(app: App, login: str, plan: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Move to another plan: open sessions get the new speed by CoA (Disconnect if the router refuses)."""
    result = subscribers.set_plan(app.context(), login, plan, actor=app.actor)
    emit_and_wait(app, result, as_json=as_json, wait=wait, timeout=timeout)


@subscriber_group.command("disconnect")
@click.argument("login")
@click.option("--reason")
@wait_option
@timeout_option
@json_option
@pass_app
def subscriber_disconnect(app: App, login: str, reason: str | None, wait: bool, timeout: float, as_json: bool) -> None:
    """End the subscriber's open sessions now (Disconnect-Request to the router)."""
    result = subscribers.disconnect(app.context(), login, actor=app.actor, reason=reason)
    emit_and_wait(app, result, as_json=as_json, wait=wait, timeout=timeout)


@subscriber_group.command("trust-unlock")
@click.argument("login")
@click.option("--days", default=3, show_default=True, help="How long the service comes back for (once per billing cycle).")
@json_option
@pass_app
def subscriber_trust_unlock(app: App, login: str, days: int, as_json: bool) -> None:
    """Unlock a suspended subscriber on trust for a few days (once per billing cycle)."""
    emit(subscribers.trust_unlock(app.context(), login, actor=app.actor, days=days), as_json)


@subscriber_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_app
def subscriber_import(app: App, path: str, as_json: bool) -> None:
    """Import subscribers from CSV (login,password,plan[,ip,mac,customer_name,document,phone,email,address]).

    All or nothing: any bad row is reported with its line number and nothing is stored.
    """
    from aaa.importer import import_csv

    emit(import_csv(app.context(), path, actor=app.actor), as_json)


# --- Sessions, outbox, audit -----------------------------------------------------------------------


@cli.group("session")
def session_group() -> None:
    """Accounting sessions."""


@session_group.command("list")
@click.option("--online", is_flag=True, help="Only open sessions.")
@click.option("--login")
@click.option("--nas", "nas_name")
@click.option("--limit", default=200, show_default=True)
@json_option
@pass_app
def session_list(app: App, online: bool, login: str | None, nas_name: str | None, limit: int, as_json: bool) -> None:
    """List accounting sessions, newest first."""
    rows = sessions.list_sessions(app.context(), online=online, login=login, nas=nas_name, limit=limit)
    emit(rows, as_json, columns=("login", "nas", "framed_ip", "started_at", "stopped_at", "input_octets", "output_octets", "terminate_cause"))


@cli.group("outbox")
def outbox_group() -> None:
    """Side effects waiting, done or failed (CoA, Disconnect, messages)."""


@outbox_group.command("list")
@click.option("--failed", is_flag=True, help="Only failed and dead-lettered rows.")
@click.option("--status")
@click.option("--limit", default=200, show_default=True)
@json_option
@pass_app
def outbox_list(app: App, failed: bool, status: str | None, limit: int, as_json: bool) -> None:
    """List outbox rows (CoA, Disconnect, messages) with their status and attempts."""
    rows = outbox.list_rows(app.context(), failed=failed, status=status, limit=limit)
    emit(rows, as_json, columns=("id", "kind", "status", "attempts", "subscriber_id", "last_error", "created_at"))


@outbox_group.command("retry")
@click.argument("row_id", type=int)
@json_option
@pass_app
def outbox_retry(app: App, row_id: int, as_json: bool) -> None:
    """Queue a failed or dead outbox row again."""
    emit(outbox.retry(app.context(), row_id, actor=app.actor), as_json)


@cli.group("audit")
def audit_group() -> None:
    """The audit log (admin actions, access to personal data)."""


@audit_group.command("list")
@click.option("--limit", default=100, show_default=True)
@json_option
@pass_app
def audit_list(app: App, limit: int, as_json: bool) -> None:
    """The latest audit log entries."""
    emit(audit.list_entries(app.context(), limit=limit), as_json, columns=("id", "at", "actor", "action", "target"))


@audit_group.command("verify")
@pass_app
def audit_verify(app: App) -> None:
    """Check the hash chain; exit 1 naming the first entry that was altered."""
    ok, bad = audit.verify(app.context())
    if not ok:
        raise click.ClickException(f"audit log chain broken at entry {bad}")
    click.echo("audit log chain intact")
