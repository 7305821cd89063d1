"""Dashboard cards: a titled box of label/value lines."""

from __future__ import annotations

from rich.table import Table
from textual.widgets import Static


class StatCard(Static):
    """A box with a title and aligned ``label  value`` lines."""

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__("", id=id, classes="card")
        self.border_title = title
        self.lines: list[tuple[str, str | int]] = []

    def show(self, lines: list[tuple[str, str | int]]) -> None:
        self.lines = lines
        grid = Table.grid(padding=(0, 2), expand=True)
        grid.add_column(ratio=1)
        grid.add_column(justify="right")
        for label, value in lines:
            grid.add_row(label, f"[b]{value}[/b]")
        self.update(grid)
