"""Billing cycles: the month an invoice belongs to, its due date on the customer's chosen day, and the
pro-rata amount of a first (partial) month.

A cycle is a calendar month named by its key, "2026-12". The due day the customer chose (from the ISP's
list, e.g. 5/10/15/20/25) is clamped to the last day of short months (31 -> 28/29 in February).
No regulation fixes the pro-rata rule (reference §4.2); the day count is configurable.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum

from aaa.errors import ValidationError
from billing.money import quantize

_KEY = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Cycle:
    """One billing month."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1900 <= self.year <= 9999:
            raise ValidationError(f"billing cycle {self.year}-{self.month:02d} is not a valid month")

    @property
    def key(self) -> str:
        """The cycle as stored and shown: "2026-12"."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, self.days)

    @property
    def days(self) -> int:
        """Number of days in the month."""
        return calendar.monthrange(self.year, self.month)[1]

    def next(self) -> Cycle:
        return Cycle(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Cycle:
        return Cycle(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return self.key


def cycle_of(day: date) -> Cycle:
    """The cycle `day` falls in."""
    return Cycle(day.year, day.month)


def cycle_key(day: date) -> str:
    """The key of the cycle `day` falls in: date(2026, 12, 5) -> "2026-12"."""
    return cycle_of(day).key


def parse_cycle(key: str) -> Cycle:
    """The cycle for a key like "2026-12"; raises ValidationError for anything else."""
    match = _KEY.fullmatch(key.strip())
    if not match:
        raise ValidationError(f"billing cycle must look like 2026-12, got {key!r}")
    return Cycle(int(match[1]), int(match[2]))


def due_date(cycle: Cycle | str, due_day: int, allowed_days: Collection[int] | None = None) -> date:
    """The due date of `cycle` on `due_day`, clamped to the month's last day.

    `allowed_days` is the ISP's list of due days a customer may choose; a day outside it is refused.
    """
    month = parse_cycle(cycle) if isinstance(cycle, str) else cycle
    if not 1 <= due_day <= 31:
        raise ValidationError(f"due day must be between 1 and 31, got {due_day}")
    if allowed_days is not None and due_day not in allowed_days:
        choices = ", ".join(str(d) for d in sorted(allowed_days))
        raise ValidationError(f"due day {due_day} is not offered; choose one of {choices}")
    return date(month.year, month.month, min(due_day, month.days))


class DayCount(Enum):
    """How the days of a partial month are priced."""

    ACTUAL = "actual"
    """days used / days in that calendar month"""
    COMMERCIAL_30 = "30"
    """days used / 30, every month counted as 30 days (30/360 convention)"""


@dataclass(frozen=True)
class ProRata:
    """The charge for part of a month."""

    start: date
    end: date
    days_used: int
    days_in_period: int
    amount: Decimal


def prorate(
    monthly_price: Decimal, start: date, end: date | None = None, count: DayCount = DayCount.ACTUAL
) -> ProRata:
    """The price of the days `start`..`end` (inclusive, same month; `end` defaults to month end).

    ACTUAL: price x days / days-in-month. COMMERCIAL_30: the 30/360 convention, every month has 30 days
    and its last day counts as the 30th (so a whole month is always the whole price and the 31st counts
    as the 30th). Rounded half-up.
    """
    last = end or cycle_of(start).last_day
    if cycle_of(last) != cycle_of(start) or last < start:
        raise ValidationError("a pro-rata period runs from a start to an end in the same month")
    price = quantize(monthly_price)
    if count is DayCount.ACTUAL:
        used, period = (last - start).days + 1, cycle_of(start).days
    else:
        end_day = 30 if last == cycle_of(last).last_day else min(last.day, 30)
        used, period = end_day - min(start.day, 30) + 1, 30
    amount = price if used >= period else quantize(price * used / period)
    return ProRata(start, last, used, period, amount)


def first_invoice(
    monthly_price: Decimal,
    activation: date,
    enabled: bool = True,
    count: DayCount = DayCount.ACTUAL,
) -> ProRata:
    """The first invoice's charge for a subscriber activated on `activation`: the rest of that month.

    With pro-rata disabled the full monthly price is charged. A zero-amount result means nothing to bill.
    """
    if not enabled:
        month = cycle_of(activation)
        return ProRata(month.first_day, month.last_day, month.days, month.days, quantize(monthly_price))
    return prorate(monthly_price, activation, None, count)
