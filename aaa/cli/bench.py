"""``aaa bench``: load a RADIUS server on loopback (ours or any other) and report rate and latency."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from aaa.cli import cli
from aaa.errors import ValidationError


@cli.command("bench")
@click.option("--host", default="127.0.0.1", show_default=True, help="Target server (loopback only: 127.0.0.0/8 or ::1).")
@click.option("--auth-port", default=1812, show_default=True)
@click.option("--acct-port", default=1813, show_default=True)
@click.option("--secret", default="testing123", show_default=True, help="Shared secret of the NAS the generator plays.")
@click.option("--request", "kind", type=click.Choice(["auth", "acct", "login"]), default="auth", show_default=True,
              help="auth: Access-Requests; acct: Accounting-Requests; login: per subscriber an Access-Request then an Accounting-Start.")  # fmt: skip
@click.option("--method", type=click.Choice(["pap", "chap", "mschapv2"]), default="pap", show_default=True, help="Authentication method (auth, login).")
@click.option("--acct-status", "acct", type=click.Choice(["start", "interim", "stop", "cycle", "on"]), default="cycle", show_default=True,
              help="Accounting kind: one of Start/Interim-Update/Stop for every session, a Start-Interim-Stop cycle, or Accounting-On.")  # fmt: skip
@click.option("--users", "user_pattern", default="user%05d", show_default=True, help="Login pattern (printf style).")
@click.option("--passwords", "password_pattern", default="pw%05d", show_default=True, help="Password pattern (printf style).")
@click.option("--first", default=1, show_default=True)
@click.option("--last", default=10000, show_default=True)
@click.option("--users-file", type=click.Path(exists=True, dir_okay=False), help="Lines 'login password' instead of the patterns.")
@click.option("--window", default=32, show_default=True, type=click.IntRange(1, 65536), help="Outstanding requests (over all processes).")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64), help="Sender processes.")
@click.option("--count", type=click.IntRange(1), help="Requests to send.")
@click.option("--duration", type=click.FloatRange(0.1, 3600), help="Seconds to send for.")
@click.option("--timeout", default=2.0, show_default=True, type=click.FloatRange(0.01, 60), help="Seconds before an unanswered request counts as a timeout.")
@click.option("--pool", default=20000, show_default=True, type=click.IntRange(256), help="Precomputed packets per process (replayed from new source ports when a run needs more).")
@click.option("--session-prefix", help="Acct-Session-Id prefix (default random): reuse it to stop sessions a previous run started.")
@click.option("--no-message-authenticator", is_flag=True, help="Send Access-Requests without Message-Authenticator.")
@click.option("--no-verify", is_flag=True, help="Do not check the Response Authenticator of replies.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True)
def bench_cmd(host: str, auth_port: int, acct_port: int, secret: str, kind: str, method: str, acct: str,
              user_pattern: str, password_pattern: str, first: int, last: int, users_file: str | None,
              window: int, processes: int, count: int | None, duration: float | None, timeout: float, pool: int,
              session_prefix: str | None, no_message_authenticator: bool, no_verify: bool, quiet: bool,
              as_json: bool) -> None:  # fmt: skip
    """Send PAP/CHAP/MS-CHAPv2 Access-Requests or Accounting-Requests with a window of outstanding requests.

    Packets are built before the clock starts. Bounded by --count or --duration (--count wins when both
    are given and is reached first). Reports requests/s, accepts, rejects, timeouts and latency percentiles.
    """
    from aaa import loadgen

    try:
        users = loadgen.users_from_file(users_file) if users_file else loadgen.users_from_pattern(user_pattern, password_pattern, first, last)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"bad --users/--passwords pattern: {exc}") from None
    plan = loadgen.Plan(
        users=users, kind=kind, method=method, acct=acct, host=host, auth_port=auth_port, acct_port=acct_port,
        secret=secret, window=window, processes=processes, count=count, duration=duration, timeout=timeout,
        pool=pool, message_authenticator=not no_message_authenticator, verify=not no_verify,
    )  # fmt: skip
    if session_prefix:
        plan.session_prefix = session_prefix
    plan.check()
    show = not quiet and sys.stderr.isatty()
    if show:
        click.echo(f"precomputing packets in {processes} process(es)...", err=True)
    summary = _run_with_bar(loadgen, plan, show)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_summary(summary))


def _run_with_bar(loadgen: Any, plan: Any, show: bool) -> dict[str, Any]:
    if not show:
        return dict(loadgen.run(plan))
    by_time = plan.count is None
    length = int((plan.duration or 0) * 10) if by_time else int(plan.count)
    with click.progressbar(length=length, label="aaa bench", file=sys.stderr, show_pos=not by_time, width=30) as bar:
        shown = [0]

        def update(completed: int, elapsed: float) -> None:
            target = min(length, int(elapsed * 10) if by_time else completed)
            if target > shown[0]:
                bar.label = f"aaa bench {completed} answered"
                bar.update(target - shown[0])
                shown[0] = target

        return dict(loadgen.run(plan, update))


def format_summary(s: dict[str, Any]) -> str:
    what = s["method"] if s["kind"] == "auth" else (f"accounting {s['acct']}" if s["kind"] == "acct" else f"login ({s['method']} + Start)")
    lat = s["latency_ms"]
    lines = [
        f"aaa bench: {what} -> {s['target']['host']} (auth {s['target']['auth_port']}, acct {s['target']['acct_port']}), "
        f"{s['users']} users, window {s['window']}, {s['processes']} process(es)",
        f"  requests   {s['answered']} answered of {s['sent']} sent in {s['elapsed_s']:.2f} s: {s['requests_per_s']:.0f} requests/s",
        f"  replies    accept {s['accept']}  reject {s['reject']}  accounting-response {s['accounting_response']}  "
        f"other {s['other']}  timeout {s['timeout']}  bad {s['bad_reply']}",
        f"  latency    p50 {lat['p50']:.3f} ms  p99 {lat['p99']:.3f} ms  p99.9 {lat['p999']:.3f} ms  max {lat['max']:.3f} ms",
        f"  packets    {s['pool_size']} precomputed in {s['precompute_s']:.2f} s (replayed {s['pool_replays']} time(s) from new source ports)",
    ]
    return "\n".join(lines)
