"""Dashboard cards: a titled box of label/value lines."""

from __future__ import annotations

from typing import Literal

from rich.table import Table
from textual.widgets import Static


class StatCard(Static):
    """A box with a title and aligned ``label  value`` lines; values are right-aligned (numbers)
    unless ``justify`` says otherwise (sentences, as on the NAS card)."""

    def __init__(self, title: str, *, id: str | None = None, justify: Literal["left", "right"] = "right") -> None:
        super().__init__("", id=id, classes="card")
        self.border_title = title
        self.justify: Literal["left", "right"] = justify
        self.lines: list[tuple[str, str | int]] = []

    def show(self, lines: list[tuple[str, str | int]]) -> None:
        self.lines = lines
        grid = Table.grid(padding=(0, 2), expand=True)
        grid.add_column(ratio=1 if self.justify == "right" else None)
        grid.add_column(justify=self.justify, ratio=1 if self.justify == "left" else None)
        for label, value in lines:
            grid.add_row(label, f"[b]{value}[/b]")
        self.update(grid)
