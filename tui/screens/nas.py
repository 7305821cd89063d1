"""NAS (the routers): name, address, vendor, CoA port, whether Message-Authenticator is required."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aaa.services import nas
from tui.screens.table import TableScreen


class NasScreen(TableScreen):
    TITLE_KEY = "screen.nas"
    HEADERS = ("col.name", "col.address", "col.vendor", "col.coa_port", "col.msg_auth")

    def fetch(self) -> list[dict[str, Any]]:
        return nas.list_nas(self.ctx)

    def cells(self, row: dict[str, Any]) -> Sequence[Any]:
        return (row["name"], row["address"], row["vendor"], row["coa_port"], row["require_message_authenticator"])
