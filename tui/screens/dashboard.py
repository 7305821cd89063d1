"""The dashboard: subscribers by status, sessions online, outbox backlog and failures, invoices open
and overdue, NAS reachability, and authentications and rejects per minute over the last hour.

A timer refreshes it every :data:`REFRESH_SECONDS`; the queries run in one worker and their results
reach the screen through ``call_from_thread``, so the UI never waits on the database. NAS
reachability comes from what each NAS last sent us (:func:`aaa.services.nas.nas_reachability`), not
from the network; after each refresh a second worker probes at most one NAS's CoA port with
Status-Server (:class:`aaa.services.nas.ProbeSchedule`: each NAS at most every
:data:`PROBE_INTERVAL` seconds, the stalest first), and the card shows the cached result from the
next refresh on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from textual import work
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static

from aaa.db.models import SubscriberStatus
from aaa.services import nas, overview
from billing import service as billing
from tui.i18n import money, t
from tui.screens.base import AdminScreen
from tui.widgets.cards import StatCard

REFRESH_SECONDS = 5.0
PROBE_INTERVAL: float | None = 300.0
"""Seconds between two Status-Server probes of one NAS; None turns the dashboard's probes off."""
NAS_LINES = 5
"""NAS listed one per line on the card (the most worrying first); the rest are counted."""
STATE_COLOURS = {"active": "green", "quiet": "yellow", "silent": "red"}
#: probe outcomes worth a word on the card; ``no-answer`` only for NAS that are not MikroTik
#: (RouterOS never answers Status-Server), ``skipped`` (an address range) never
PROBE_SHOWN = {"answered": "green", "unreachable": "red", "bad-secret": "red", "no-answer": "yellow", "error": "yellow"}


def clock() -> dt.datetime:
    """Now, as an aware datetime in the local time zone (tests freeze it)."""
    return dt.datetime.now().astimezone()


def invoice_lines(summary: dict[str, Any]) -> list[tuple[str, str | int]]:
    """The invoices card: open and overdue (count and face value), what is still owed on them, and a
    warning line when the invoicing plugin is disabled."""
    lines: list[tuple[str, str | int]] = []
    if not summary["enabled"]:
        lines.append((t("dash.invoicing"), f"[yellow]{t('dash.invoicing_disabled')}[/]"))
    for status in ("open", "overdue"):
        part = summary[status]
        lines.append((t(f"dash.invoices_{status}"), f"{part['count']} · {money(part['amount'])}"))
    owed = sum((Decimal(summary[s]["balance"]) for s in ("open", "overdue")), Decimal("0.00"))
    lines.append((t("dash.invoices_owed"), money(owed)))
    return lines


def nas_line(row: dict[str, Any]) -> tuple[str, str]:
    """One NAS on the card: name, then state, when it was last seen, open sessions, and the probe
    result when it says something."""
    colour = STATE_COLOURS[row["state"]]
    parts = [f"[{colour}]● {t('dash.nas.' + row['state'])}[/]"]
    seen = row["seen_minutes_ago"]
    if seen is None:
        parts.append(t("dash.nas_unseen"))
    else:
        parts.append(t("dash.nas_seen", minutes=seen) if seen else t("dash.nas_seen_now"))
    parts.append(t("dash.nas_online", count=row["open_sessions"]))
    probe = row["probe"]
    if probe and probe["outcome"] in PROBE_SHOWN and not (probe["outcome"] == "no-answer" and row["vendor"] == "mikrotik"):
        parts.append(f"[{PROBE_SHOWN[probe['outcome']]}]{t('dash.coa.' + probe['outcome'], rtt=probe.get('rtt_ms'))}[/]")
    return row["name"], " · ".join(parts)


def nas_lines(rows: list[dict[str, Any]]) -> list[tuple[str, str | int]]:
    """The NAS card: how many are in each state, then the first :data:`NAS_LINES` NAS (silent first)."""
    if not rows:
        return [(t("dash.nas_none"), "")]
    states = {state: sum(r["state"] == state for r in rows) for state in nas.REACHABILITY_STATES}
    lines: list[tuple[str, str | int]] = [(t("dash.total") + f" {len(rows)}", t("dash.nas_states", **states))]
    lines.extend(nas_line(r) for r in rows[:NAS_LINES])
    if len(rows) > NAS_LINES:
        lines.append((t("dash.nas_more", count=len(rows) - NAS_LINES), ""))
    return lines


class DashboardScreen(AdminScreen):
    TITLE_KEY = "screen.dashboard"
    BINDINGS = [Binding("r", "refresh", "action.refresh")]

    def __init__(self) -> None:
        super().__init__()
        self.probes: nas.ProbeSchedule | None = None

    def compose_body(self) -> Iterable[Widget]:
        with Grid(id="cards"):
            yield StatCard(t("dash.subscribers"), id="card-subscribers")
            yield StatCard(t("dash.sessions"), id="card-sessions")
            yield StatCard(t("dash.outbox"), id="card-outbox")
            yield StatCard(t("dash.invoices"), id="card-invoices")
            yield StatCard(t("dash.nas"), id="card-nas", justify="left")
        with Vertical(id="auth-rates"):
            yield Label(t("dash.accepts", last=0, peak=0), id="accepts-label")
            yield Sparkline([], id="accepts")
            yield Label(t("dash.rejects", last=0, peak=0), id="rejects-label")
            yield Sparkline([], id="rejects")
        yield Static("", id="updated", classes="muted")

    def on_mount(self) -> None:
        if PROBE_INTERVAL is not None:
            self.probes = nas.ProbeSchedule(self.ctx, interval=PROBE_INTERVAL)
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="dashboard")
    def load(self) -> None:
        now = clock()
        data = overview.dashboard(self.ctx)
        data["auth"] = overview.auth_per_minute(self.ctx, now=now)
        data["invoices"] = billing.invoice_summary(self.ctx)
        data["nas_reachability"] = nas.nas_reachability(self.ctx, now=now, probes=self.probes.results if self.probes else None)
        data["now"] = now
        self.call_ui(self.show, data)
        if self.probes is not None:
            self.call_ui(self.probe)

    @work(thread=True, exit_on_error=False, exclusive=True, group="dashboard-probe")
    def probe(self) -> None:
        """One staggered Status-Server probe; its result shows from the next refresh on."""
        assert self.probes is not None
        self.probes.probe_next()

    def show(self, data: dict[str, Any]) -> None:
        by_status = data["subscribers"]
        lines: list[tuple[str, str | int]] = [(s.value, by_status.get(s.value, 0)) for s in SubscriberStatus]
        lines.append((t("dash.total"), data["subscribers_total"]))
        self.query_one("#card-subscribers", StatCard).show(lines)
        self.query_one("#card-sessions", StatCard).show([(t("dash.sessions"), data["sessions_online"]), ("NAS", data["nas"])])
        queue = data["outbox"]
        self.query_one("#card-outbox", StatCard).show(
            [(t("dash.backlog"), data["outbox_backlog"]), (t("dash.failed"), data["outbox_failed"])]
            + [(status, n) for status, n in sorted(queue.items())]
        )
        self.query_one("#card-invoices", StatCard).show(invoice_lines(data["invoices"]))
        self.query_one("#card-nas", StatCard).show(nas_lines(data["nas_reachability"]))
        for kind, widget in (("accept", "accepts"), ("reject", "rejects")):
            series = data["auth"][kind]
            self.query_one(f"#{widget}", Sparkline).data = series
            self.query_one(f"#{widget}-label", Label).update(t(f"dash.{widget}", last=series[-1], peak=max(series)))
        self.query_one("#updated", Static).update(t("dash.updated", time=data["now"].strftime("%H:%M:%S")))
