"""BRL amounts: explicit half-up rounding, parsing what people type, formatting for customers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aaa.errors import ValidationError
from billing.money import format_brl, format_number, from_cents, parse_brl, quantize, to_cents


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("0.025", "0.03"),
        ("2.675", "2.68"),
        ("-0.005", "-0.01"),
        ("1.004", "1.00"),
        (3, "3.00"),
    ],
)
def test_quantize_rounds_half_up_not_half_even(value: str | int, expected: str) -> None:
    assert quantize(value) == Decimal(expected)
    assert str(quantize(value)) == expected


def test_quantize_refuses_text_that_is_not_a_number() -> None:
    with pytest.raises(ValidationError):
        quantize("abc")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("99,90", "99.90"),
        ("99.90", "99.90"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("R$ 1.234,56", "1234.56"),
        ("R$1.234.567,8", "1234567.80"),
        ("1.234", "1234.00"),
        ("100", "100.00"),
        ("0,5", "0.50"),
        ("-10,00", "-10.00"),
    ],
)
def test_parse_brl_reads_brazilian_and_plain_notation(text: str, expected: str) -> None:
    assert parse_brl(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "abc", "1,234", "12.34.5", "1.2345,00", "9,999", ",50", "1,2,3"])
def test_parse_brl_refuses_ambiguous_or_malformed_text(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_brl(text)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0", "R$ 0,00"),
        ("99.9", "R$ 99,90"),
        ("1234.56", "R$ 1.234,56"),
        ("1234567.891", "R$ 1.234.567,89"),
        ("-1", "-R$ 1,00"),
    ],
)
def test_format_brl_uses_dot_thousands_and_comma_decimals(amount: str, expected: str) -> None:
    assert format_brl(Decimal(amount)) == expected


def test_format_number_round_trips_through_parse_brl() -> None:
    amount = Decimal("98765.43")
    assert parse_brl(format_number(amount)) == amount


def test_cents_conversion_is_exact() -> None:
    assert to_cents(Decimal("99.90")) == 9990
    assert from_cents(9990) == Decimal("99.90")
    assert to_cents(Decimal("0.005")) == 1
