"""Printing results: JSON for scripts, aligned columns for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def emit(data: Any, as_json: bool, *, columns: Sequence[str] = ()) -> None:
    """A list of dicts as a table (the given columns), a dict as key: value lines, or JSON."""
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                click.echo(f"{key}:")
                for item in value:
                    click.echo("  " + "  ".join(f"{k}={_cell(v)}" for k, v in item.items()))
            else:
                click.echo(f"{key.ljust(width)}  {_cell(value)}")
        return
    if not data:
        click.echo("(none)")
        return
    cols = list(columns) or list(data[0].keys())
    rows = [[_cell(row.get(c)) for c in cols] for row in data]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
