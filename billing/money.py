"""BRL money: Decimal amounts quantized to centavos, parsed from and formatted for Brazilian text.

Every amount in `billing` is a `Decimal` in reais. Rounding is always explicit: `quantize()` rounds to
the centavo with ROUND_HALF_UP (the "arredondamento comercial" customers and banks expect), never the
banker's rounding that `Decimal` would otherwise use.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from aaa.errors import ValidationError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

_DOT_GROUPED = re.compile(r"^\d{1,3}(?:\.\d{3})+$")


def quantize(amount: Decimal | int | str) -> Decimal:
    """Round `amount` to centavos with ROUND_HALF_UP (0.005 -> 0.01, -0.005 -> -0.01)."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
    except InvalidOperation as exc:
        raise ValidationError(f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise ValidationError(f"not a finite amount: {amount!r}")
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    """The amount in whole centavos (after rounding), e.g. Decimal("99.90") -> 9990."""
    return int(quantize(amount) * 100)


def from_cents(cents: int) -> Decimal:
    """The Decimal amount for a whole number of centavos, e.g. 9990 -> Decimal("99.90")."""
    return (Decimal(cents) / 100).quantize(CENT)


def parse_brl(text: str) -> Decimal:
    """Parse an amount typed by a person: "99,90", "99.90", "1.234,56", "1,234.56", "R$ 1.234,56".

    When both separators appear the last one is the decimal separator; dots followed by groups of
    exactly three digits ("1.234", "1.234.567") are thousands separators, as a Brazilian reader means
    them. More than two decimal places ("1,234") is refused rather than silently rounded.
    """
    raw = text.strip()
    body = raw.replace("R$", "").replace("\u00a0", "").replace(" ", "")
    negative = body.startswith("-")
    if negative:
        body = body[1:]
    if not body or not re.fullmatch(r"[\d.,]+", body) or not body[0].isdigit():
        raise ValidationError(f"not an amount in reais: {raw!r}")
    if "," in body and "." in body:
        decimal_sep = "," if body.rfind(",") > body.rfind(".") else "."
        integer, _, fraction = body.rpartition(decimal_sep)
        thousands = "." if decimal_sep == "," else ","
        if decimal_sep in integer or not _valid_grouping(integer, thousands):
            raise ValidationError(f"not an amount in reais: {raw!r}")
        integer = integer.replace(thousands, "")
    elif _DOT_GROUPED.match(body):
        integer, fraction = body.replace(".", ""), ""
    elif body.count(",") + body.count(".") > 1:
        raise ValidationError(f"not an amount in reais: {raw!r}")
    else:
        integer, _, fraction = body.replace(",", ".").partition(".")
    if not integer or (fraction and not fraction.isdigit()):
        raise ValidationError(f"not an amount in reais: {raw!r}")
    if len(fraction) > 2:
        raise ValidationError(f"an amount in reais has at most 2 decimal places: {raw!r}")
    value = Decimal(f"{integer}.{fraction or '0'}")
    return quantize(-value if negative else value)


def _valid_grouping(integer: str, sep: str) -> bool:
    if sep not in integer:
        return integer.isdigit()
    head, *groups = integer.split(sep)
    return head.isdigit() and 1 <= len(head) <= 3 and all(len(g) == 3 and g.isdigit() for g in groups)


def format_number(amount: Decimal) -> str:
    """Brazilian number format without the currency sign: Decimal("1234.5") -> "1.234,50"."""
    value = quantize(amount)
    sign = "-" if value < 0 else ""
    integer, _, fraction = f"{abs(value):.2f}".partition(".")
    groups: list[str] = []
    while len(integer) > 3:
        groups.insert(0, integer[-3:])
        integer = integer[:-3]
    groups.insert(0, integer)
    return f"{sign}{'.'.join(groups)},{fraction}"


def format_brl(amount: Decimal) -> str:
    """The amount as shown to a customer: Decimal("1234.56") -> "R$ 1.234,56", negative "-R$ 1,00"."""
    text = format_number(amount)
    if text.startswith("-"):
        return f"-R$ {text[1:]}"
    return f"R$ {text}"
