"""Pilot tests of the dashboard's invoices and NAS reachability cards: the counts and amounts of
seeded invoices in English and pt-BR, invoicing disabled, NAS states from their activity, and the
background Status-Server probe whose cached result shows from the next refresh on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from decimal import Decimal

import pytest
from invoicing_support import billing_data_fixture  # noqa: F401  (fixture)
from rich.text import Text
from tui_support import SIZE, drive, log_in, wait_for

from aaa.db.models import AuthLog
from aaa.plugins import make_plugin_manager
from aaa.services import admins, nas
from billing import service as billing
from tui.app import AdminApp
from tui.screens import dashboard

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NOW = dt.datetime(2026, 12, 14, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def seeded(billing_data, actor, monkeypatch):
    """December invoices: Maria's overdue, João's open with R$ 50 paid; an active NAS (an
    authentication 3 minutes ago) and a silent one; the dashboard's clock frozen at 14/12 15:00 UTC."""
    billing.run_month(billing_data, "2026-12", actor=actor, today=dt.date(2026, 12, 1))
    billing.mark_overdue(billing_data, today=dt.date(2026, 12, 14))
    joao = next(i for i in billing.list_invoices(billing_data) if i["login"] == "joao")
    billing.pay(billing_data, joao["id"], Decimal("50.00"), dt.date(2026, 12, 5), actor=actor)
    busy = nas.add_nas(billing_data, name="bng-centro", address="192.0.2.1", secret="s3cret", actor=actor)
    nas.add_nas(billing_data, name="bng-norte", address="192.0.2.2", secret="s3cret", actor=actor)
    with billing_data.transaction() as uow:
        uow.session.add(AuthLog(at=NOW - dt.timedelta(minutes=3), login="maria", nas_id=busy["id"], result="accept"))
    admins.ensure_demo_admin(billing_data)
    monkeypatch.setattr(dashboard, "clock", lambda: NOW)
    return billing_data


def card(app, name: str) -> list[tuple[str, str]]:
    """The card's lines as plain text (colour markup taken out)."""
    return [(label, Text.from_markup(str(value)).plain) for label, value in app.screen.query_one(f"#card-{name}").lines]


async def on_dashboard(pilot) -> None:
    await log_in(pilot)
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#card-nas").lines)


@drive
async def test_invoices_card_counts_open_and_overdue_with_their_amounts(seeded):
    app = AdminApp(seeded, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await on_dashboard(pilot)
        assert card(app, "invoices") == [("open", "1 · R$ 99.90"), ("overdue", "1 · R$ 99.90"), ("still owed", "R$ 149.80")]


@drive
async def test_invoices_card_writes_amounts_the_brazilian_way_in_portuguese(seeded):
    app = AdminApp(seeded, language="pt-BR")
    async with app.run_test(size=SIZE) as pilot:
        await on_dashboard(pilot)
        assert card(app, "invoices") == [("em aberto", "1 · R$ 99,90"), ("vencidas", "1 · R$ 99,90"), ("a receber", "R$ 149,80")]


@drive
async def test_invoices_card_says_when_invoicing_is_disabled(seeded):
    without = dataclasses.replace(seeded, pm=make_plugin_manager(["invoicing"]))
    app = AdminApp(without, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await on_dashboard(pilot)
        label, value = card(app, "invoices")[0]
        assert label == "invoicing" and "plugin disabled" in value


@drive
async def test_nas_card_lists_the_silent_nas_first_and_when_each_was_last_seen(seeded):
    app = AdminApp(seeded, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await on_dashboard(pilot)
        lines = card(app, "nas")
        assert lines[0] == ("total 2", "1 active · 0 quiet · 1 silent")
        assert lines[1:] == [
            ("bng-norte", "● silent · nothing in the last hour · 0 online"),
            ("bng-centro", "● active · seen 3 min ago · 0 online"),
        ]


@drive
async def test_a_background_probe_result_shows_on_the_next_refresh(seeded, monkeypatch, actor):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: the probe is refused at once
    nas.update_nas(seeded, "bng-centro", address="127.0.0.1", coa_port=port, actor=actor)
    nas.delete_nas(seeded, "bng-norte", actor=actor)
    monkeypatch.setattr(dashboard, "PROBE_INTERVAL", 300.0)
    app = AdminApp(seeded, language="en")
    async with app.run_test(size=SIZE) as pilot:
        await on_dashboard(pilot)
        screen = app.screen
        await wait_for(pilot, lambda: "bng-centro" in screen.probes.results)
        assert "CoA" not in card(app, "nas")[1][1]  # the first paint did not wait for the probe
        await pilot.press("r")
        await wait_for(pilot, lambda: "CoA port refused" in card(app, "nas")[1][1])
