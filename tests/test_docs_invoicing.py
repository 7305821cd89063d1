"""docs/invoicing.md stays true to the code: every ``[plugins.invoicing]`` key is documented (and in the
example configuration), and the documented example table is accepted."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from billing.settings import InvoicingSettings

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "invoicing.md").read_text()


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(InvoicingSettings)])
def test_every_invoicing_setting_is_documented(key):
    assert f"| `{key}` |" in DOC, f"docs/invoicing.md has no row for {key}"
    assert re.search(rf"^# {key} = ", (ROOT / "etc" / "aaa.toml").read_text(), re.M), f"etc/aaa.toml does not show {key}"


def test_the_documented_example_table_is_accepted():
    block = re.search(r"```toml\n(.*?)```", DOC, re.S)
    assert block is not None
    table = tomllib.loads(block.group(1))["plugins"]["invoicing"]
    settings = InvoicingSettings.from_config(table, "docs/invoicing.md")
    assert settings.bank == "341" and settings.layout().bank_code == "341"
