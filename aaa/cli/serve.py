"""``aaa serve`` and ``aaa stats``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import click

from aaa.cli import cli
from aaa.cli.app import App, pass_app
from aaa.cli.output import emit
from aaa.errors import AAAError


@cli.command("serve")
@click.option("--bind", help="Address to listen on (default [radius] bind).")
@click.option("--auth-port", type=int, help="Authentication port (default [radius] auth_port).")
@click.option("--acct-port", type=int, help="Accounting port (default [radius] acct_port).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Processes sharing the ports (SO_REUSEPORT).")
@pass_app
def serve_cmd(app: App, bind: str | None, auth_port: int | None, acct_port: int | None, workers: int) -> None:
    """Run the RADIUS server (authentication, accounting, CoA outbox, jobs)."""
    from aaa.db import migrate
    from aaa.serve import ServeOptions, serve

    settings = app.settings()
    engine = app.engine()
    if migrate.current(engine) != migrate.head():
        raise AAAError("the database schema is not up to date: run `aaa db upgrade` first")
    radius = settings.radius
    serve(settings, ServeOptions(bind or radius.bind, auth_port or radius.auth_port, acct_port or radius.acct_port, workers))


@cli.command("stats")
@click.option("--worker", default=0, show_default=True, help="Which worker's figures (metrics port + index).")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def stats_cmd(app: App, worker: int, as_json: bool) -> None:
    """Counters of the running server: accepts, rejects, drops by reason, accounting, latency."""
    metrics = app.settings().metrics
    url = f"http://{metrics.bind}:{metrics.port + worker}/stats"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            data = json.load(response)
    except (urllib.error.URLError, OSError) as exc:
        raise AAAError(f"no server answering at {url} ({getattr(exc, 'reason', exc)}); is `aaa serve` running?") from None
    emit(data, as_json)
