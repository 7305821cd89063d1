"""The ``aaa`` command: administration, migrations, server, demo data.

Every command reads the configuration (``--config`` > ``$AAA_CONFIG`` > ``etc/aaa.toml``); every
listing takes ``--json``. Errors are one line on stderr and a non-zero exit code (2 for a bad
configuration), never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from aaa.cli.app import App, pass_app
from aaa.cli.output import emit
from aaa.errors import AAAError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="AAA_CONFIG", help="Configuration file (default etc/aaa.toml).")
@click.version_option(package_name="aaa-gateway")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """AAA gateway: RADIUS server and subscriber management for ISPs running MikroTik."""
    ctx.obj = App(config_path)
    ctx.call_on_close(ctx.obj.close)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_app
def db_upgrade(app: App, revision: str) -> None:
    """Create or migrate the schema to the latest revision."""
    from aaa.db import migrate

    engine = app.engine()
    migrate.upgrade(engine, revision)
    click.echo(f"database at revision {migrate.current(engine)}")


@db.command("check")
@pass_app
def db_check(app: App) -> None:
    """Fail when the models and the migrations disagree (CI runs this)."""
    from aaa.db import migrate

    migrate.check(app.engine())
    click.echo("models and migrations agree")


@db.command("current")
@pass_app
def db_current(app: App) -> None:
    """The schema revision of the database."""
    from aaa.db import migrate

    click.echo(migrate.current(app.engine()) or "empty (run `aaa db upgrade`)")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def plugins_cmd(app: App, as_json: bool) -> None:
    """Loaded plugins and the hooks each implements."""
    from aaa.plugins import describe

    rows = describe(app.plugin_manager())
    emit(rows, as_json, columns=("name", "module", "distribution", "hooks"))


@cli.command("demo")
@click.option("--subscribers", "count", default=3, show_default=True, help="Extra generated subscribers (user00001...).")
@click.option("--if-empty", is_flag=True, help="Do nothing if the database already has a NAS (used by `make run`).")
@pass_app
def demo_cmd(app: App, count: int, if_empty: bool) -> None:
    """Load demo data: a NAS for 127.0.0.1, plans, customers, subscribers, this month's invoices and the admin user admin/admin123."""
    from aaa.demo import load_demo
    from aaa.services.admins import ensure_demo_admin

    summary = load_demo(app.context(), count=count, if_empty=if_empty, actor=app.actor, plugins=True)
    click.echo(summary)
    click.echo(ensure_demo_admin(app.context(), actor=app.actor))


def _register_builtin_commands() -> None:
    from aaa.cli import admin, bench, resources, serve  # noqa: F401  (commands register themselves on import)


def _register_plugin_commands(argv: list[str]) -> None:
    """Let plugins add commands; a broken configuration is reported by the command itself later."""
    try:
        App.from_argv(argv).plugin_manager().hook.aaa_register_commands(cli=cli)
    except AAAError:
        pass


def main(argv: list[str] | None = None) -> Any:
    args = list(sys.argv[1:] if argv is None else argv)
    _register_builtin_commands()
    _register_plugin_commands(args)
    try:
        return cli.main(args=args, prog_name="aaa", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AAAError as exc:
        click.echo(f"aaa: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        click.echo(f"aaa: error: database: {reason}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
    except Exception as exc:  # a bug: still one line, with the traceback on request
        if os.environ.get("AAA_DEBUG"):
            raise
        click.echo(f"aaa: internal error: {type(exc).__name__}: {exc} (set AAA_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)
