"""CLI commands for the ISP's staff: ``aaa admin add|passwd|list|totp`` and ``aaa tui``.

Passwords are prompted (hidden, with confirmation) when not given, and never echoed.
"""

from __future__ import annotations

import importlib

import click

from aaa.cli import cli
from aaa.cli.app import App, pass_app
from aaa.cli.output import emit
from aaa.services import admins


@cli.group("admin")
def admin_group() -> None:
    """Admin users of the TUI (roles: admin, operator, finance, auditor)."""


@admin_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(admins.ROLES), required=True, help="What the user may do.")
@click.option("--password", help="Password (prompted, with confirmation, when not given).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def admin_add(app: App, username: str, role: str, password: str | None, as_json: bool) -> None:
    """Add an admin user."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    emit(admins.add_admin(app.context(), username=username, password=password, role=role, actor=app.actor), as_json)


@admin_group.command("passwd")
@click.argument("username")
@click.option("--password", help="New password (prompted, with confirmation, when not given).")
@pass_app
def admin_passwd(app: App, username: str, password: str | None) -> None:
    """Set an admin user's password (also unlocks the user)."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    admins.set_password(app.context(), username, password, actor=app.actor)
    click.echo(f"password of {username} changed")


@admin_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def admin_list(app: App, as_json: bool) -> None:
    """List admin users."""
    emit(admins.list_admins(app.context()), as_json, columns=("username", "role", "active", "totp", "locked_until", "last_login_at"))


@admin_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(admins.ROLES))
@pass_app
def admin_role(app: App, username: str, role: str) -> None:
    """Change an admin user's role."""
    admins.set_role(app.context(), username, role, actor=app.actor)
    click.echo(f"{username} is now {role}")


@admin_group.command("totp")
@click.argument("username")
@click.option("--disable", is_flag=True, help="Remove the second factor.")
@pass_app
def admin_totp(app: App, username: str, disable: bool) -> None:
    """Turn on the TOTP second factor and print the secret once (or --disable it)."""
    if disable:
        admins.disable_totp(app.context(), username, actor=app.actor)
        click.echo(f"TOTP disabled for {username}")
        return
    secret = admins.enable_totp(app.context(), username, actor=app.actor)
    click.echo("Load this into an authenticator app now; it is not shown again:")
    click.echo(f"  secret: {secret}")
    click.echo(f"  uri:    {admins.totp_uri(username, secret)}")


@cli.command("tui")
@pass_app
def tui_cmd(app: App) -> None:
    """The admin terminal UI."""
    # Imported by name at run time: the core never depends on the TUI package (import-linter contract).
    tui_app = importlib.import_module("tui.app")
    tui_app.run(app.context())
