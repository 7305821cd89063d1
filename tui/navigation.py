"""The places of the TUI: mode name, title, screen, the permission to see it and its key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen

from tui.screens.dashboard import DashboardScreen
from tui.screens.invoices import InvoicesScreen
from tui.screens.nas import NasScreen
from tui.screens.outbox import OutboxScreen
from tui.screens.plans import PlansScreen
from tui.screens.plugins import PluginsScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.subscribers import SubscribersScreen


@dataclass(frozen=True)
class Place:
    mode: str
    title_key: str
    factory: Callable[[], Screen[None]]
    permission: str
    key: str


NAVIGATION: tuple[Place, ...] = (
    Place("dashboard", "screen.dashboard", DashboardScreen, "dashboard.view", "1"),
    Place("subscribers", "screen.subscribers", SubscribersScreen, "subscriber.view", "2"),
    Place("sessions", "screen.sessions", SessionsScreen, "session.view", "3"),
    Place("nas", "screen.nas", NasScreen, "nas.view", "4"),
    Place("plans", "screen.plans", PlansScreen, "plan.view", "5"),
    Place("outbox", "screen.outbox", OutboxScreen, "outbox.view", "6"),
    Place("invoices", "screen.invoices", InvoicesScreen, "invoice.view", "7"),
    Place("plugins", "screen.plugins", PluginsScreen, "plugins.view", "8"),
)
PLACES = {p.mode: p for p in NAVIGATION}
