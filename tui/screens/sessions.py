"""Sessions online now: who, where, which address, since when, how much traffic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aaa.services import sessions
from tui.screens.table import TableScreen
from tui.widgets import tables

LIMIT = 1000


class SessionsScreen(TableScreen):
    TITLE_KEY = "screen.sessions"
    HEADERS = ("col.login", "col.nas", "col.ip", "col.mac", "col.started", "col.in", "col.out")

    def fetch(self) -> list[dict[str, Any]]:
        return sessions.list_sessions(self.ctx, online=True, limit=LIMIT)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (
            row["login"], row["nas"], row["framed_ip"], row["calling_station_id"], tables.when(row["started_at"]),
            tables.octets(row["input_octets"]), tables.octets(row["output_octets"]),
        )
