"""``--wait``: follow the outbox rows an action queued until the routers have them, with a progress bar."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from aaa.context import Context
from aaa.errors import AAAError
from aaa.services import outbox

FINISHED = ("done", "dead")

wait_option = click.option("--wait", is_flag=True, help="Wait until the routers have the change (CoA/Disconnect), with a progress bar.")
timeout_option = click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait with --wait.")


def wait_for_outbox(ctx: Context, result: dict[str, Any], *, timeout: float) -> None:
    """Block until every row in ``result["outbox"]`` is done or dead; one line on stderr if any failed."""
    ids = list(result.get("outbox") or [])
    if not ids:
        click.echo("no open session to update; the next login gets the change", err=True)
        return
    deadline = time.monotonic() + timeout
    finished = 0
    with click.progressbar(length=len(ids), label="updating sessions on the routers", file=sys.stderr) as bar:
        while True:
            counts = outbox.progress(ctx, ids)
            now_finished = sum(counts.get(s, 0) for s in FINISHED)
            bar.update(now_finished - finished)
            finished = now_finished
            if finished >= len(ids):
                break
            if time.monotonic() > deadline:
                raise AAAError(f"{len(ids) - finished} of {len(ids)} session update(s) still pending after {timeout:.0f}s (see `aaa outbox list`); is `aaa serve` running?")
            time.sleep(0.3)
    dead = counts.get("dead", 0)
    if dead:
        raise AAAError(f"{dead} of {len(ids)} session update(s) failed (see `aaa outbox list --failed`)")
    click.echo(f"{len(ids)} session update(s) delivered", err=True)
