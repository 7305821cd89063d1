"""Late payment charges: the fine (multa) and the interest (juros de mora) owed on the payment date.

Rules, with their sources (see the project reference, section 4.1):

* Fine at most 2 % of the amount due, charged once (CDC art. 52 §1º; RGC, Res. Anatel 765/2023 art. 78).
* Interest at most 1 % a month, pro rata die, simple, on the original amount (not on the fine) (RGC art.
  78). The daily rate is the monthly rate / 30 by default (`DayBasis.COMMERCIAL`), or / the number of days
  of the calendar month each late day falls in (`DayBasis.CALENDAR`); no rule fixes the divisor.
* Nothing is owed when paying on or before the due date.
* A due date on a Saturday, Sunday or holiday: paying on the first business day after it owes nothing
  (Lei 7.089/1983 art. 1º forbids the interest; the fine is waived alike, as the payment is on time).
  Paying later counts the days from the original due date (STJ, 3ª Turma, 2022, on that law).

Configured rates above the caps are refused, not clipped. Amounts are rounded half-up to the centavo
once per component.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum

from aaa.errors import ValidationError
from billing.businessdays import next_business_day
from billing.money import ZERO, quantize

MAX_FINE_PCT = Decimal("2")
MAX_MONTHLY_INTEREST_PCT = Decimal("1")


class DayBasis(Enum):
    """How a monthly interest rate becomes a daily one."""

    COMMERCIAL = "30"
    """monthly rate / 30 for every late day"""
    CALENDAR = "calendar"
    """monthly rate / days in the calendar month of each late day"""


@dataclass(frozen=True)
class Breakdown:
    """What is owed for `principal` paid on `pay_date`."""

    principal: Decimal
    due_date: date
    pay_date: date
    days_late: int
    fine: Decimal
    interest: Decimal
    fine_pct: Decimal
    monthly_interest_pct: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.fine + self.interest


def check_rates(fine_pct: Decimal, monthly_interest_pct: Decimal) -> None:
    """Refuse a fine above 2 %, interest above 1 % a month, or negative rates."""
    if not ZERO <= fine_pct <= MAX_FINE_PCT:
        raise ValidationError(
            f"late fine must be between 0 and {MAX_FINE_PCT}% (CDC art. 52), got {fine_pct}%"
        )
    if not ZERO <= monthly_interest_pct <= MAX_MONTHLY_INTEREST_PCT:
        raise ValidationError(
            f"late interest must be between 0 and {MAX_MONTHLY_INTEREST_PCT}% a month (RGC art. 78), "
            f"got {monthly_interest_pct}%"
        )


def _late_day_fraction(due_date: date, pay_date: date, basis: DayBasis) -> Decimal:
    """Sum over the late days (the day after due .. pay day) of each day's share of a month."""
    days = (pay_date - due_date).days
    if basis is DayBasis.COMMERCIAL:
        return Decimal(days) / 30
    total = Decimal(0)
    day = due_date + timedelta(days=1)
    while day <= pay_date:
        total += Decimal(1) / calendar.monthrange(day.year, day.month)[1]
        day += timedelta(days=1)
    return total


def amount_due(
    principal: Decimal,
    due_date: date,
    pay_date: date,
    fine_pct: Decimal = MAX_FINE_PCT,
    monthly_interest_pct: Decimal = MAX_MONTHLY_INTEREST_PCT,
    basis: DayBasis = DayBasis.COMMERCIAL,
    extra_holidays: Iterable[date] = (),
) -> Breakdown:
    """The fine and interest owed when `principal`, due on `due_date`, is paid on `pay_date`.

    `extra_holidays` adds local holidays to the national bank calendar when deciding whether a due date
    on a non-business day moved to the next business day.
    """
    check_rates(fine_pct, monthly_interest_pct)
    amount = quantize(principal)
    if amount < 0:
        raise ValidationError("the amount due cannot be negative")
    if pay_date <= next_business_day(due_date, extra_holidays):
        return Breakdown(amount, due_date, pay_date, 0, ZERO, ZERO, fine_pct, monthly_interest_pct)
    fraction = _late_day_fraction(due_date, pay_date, basis)
    fine = quantize(amount * fine_pct / 100)
    interest = quantize(amount * monthly_interest_pct / 100 * fraction)
    days_late = (pay_date - due_date).days
    return Breakdown(amount, due_date, pay_date, days_late, fine, interest, fine_pct, monthly_interest_pct)


def daily_interest(principal: Decimal, monthly_interest_pct: Decimal = MAX_MONTHLY_INTEREST_PCT) -> Decimal:
    """Interest per late day on the commercial basis, as printed on a boleto ("juros de R$ x ao dia")."""
    check_rates(ZERO, monthly_interest_pct)
    return quantize(quantize(principal) * monthly_interest_pct / 100 / 30)
