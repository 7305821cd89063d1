"""Filling a DataTable from service-layer dicts: columns by key, translated headers, row keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.widgets import DataTable

from tui.i18n import t

Column = tuple[str, str]  # (i18n key of the header, dict key or a formatter's name)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def octets(value: int | None) -> str:
    """Traffic in human units (decimal, as routers count)."""
    size = float(value or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def when(value: str | None) -> str:
    """An ISO timestamp shortened to ``YYYY-MM-DD HH:MM``."""
    return value[:16].replace("T", " ") if value else "-"


def setup(table: DataTable[Any], headers: Sequence[str]) -> None:
    table.cursor_type = "row"
    table.zebra_stripes = True
    table.add_columns(*(t(h) for h in headers))


def fill(table: DataTable[Any], rows: list[dict[str, Any]], key: str, cells: Callable[[dict[str, Any]], Sequence[Any]]) -> None:
    """Replace the table's rows, keeping the cursor on the same row number where possible."""
    cursor = table.cursor_row
    table.clear()
    for row in rows:
        table.add_row(*(cell(v) for v in cells(row)), key=str(row[key]))
    if rows:
        table.move_cursor(row=min(cursor, len(rows) - 1))
