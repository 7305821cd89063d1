"""``tui.i18n.money``: amounts in reais as each UI language writes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tui import i18n


@pytest.fixture
def language():
    def use(name: str) -> None:
        i18n.set_language(name)

    yield use
    i18n.set_language(i18n.DEFAULT_LANGUAGE)


@pytest.mark.parametrize(
    ("amount", "pt_br", "en"),
    [
        ("1234.56", "R$ 1.234,56", "R$ 1,234.56"),
        (Decimal("99.9"), "R$ 99,90", "R$ 99.90"),
        (0, "R$ 0,00", "R$ 0.00"),
        ("1234567.8", "R$ 1.234.567,80", "R$ 1,234,567.80"),
        (Decimal("-10"), "-R$ 10,00", "-R$ 10.00"),
        ("0.005", "R$ 0,01", "R$ 0.01"),  # half up, to the cent
        (None, "-", "-"),
        ("12,5", "12,5", "12,5"),  # not a number: shown as typed
    ],
)
def test_money_in_each_language(language, amount, pt_br, en):
    language("pt-BR")
    assert i18n.money(amount) == pt_br
    language("en")
    assert i18n.money(amount) == en
