"""Billing cycles: keys, due dates on the chosen day clamped to month end, pro-rata first invoices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from aaa.errors import ValidationError
from billing.cycle import Cycle, DayCount, cycle_key, due_date, first_invoice, parse_cycle, prorate

D = Decimal


def test_cycle_key_names_the_month() -> None:
    assert cycle_key(date(2026, 12, 5)) == "2026-12"
    assert cycle_key(date(2027, 1, 31)) == "2027-01"


@pytest.mark.parametrize("key", ["2026-13", "2026-1", "26-01", "2026/01", "", "2026-00"])
def test_malformed_cycle_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        parse_cycle(key)


def test_next_and_previous_cross_the_year() -> None:
    assert Cycle(2026, 12).next() == Cycle(2027, 1)
    assert Cycle(2027, 1).previous() == Cycle(2026, 12)
    assert parse_cycle("2026-12").next().key == "2027-01"


@pytest.mark.parametrize(
    ("cycle", "day", "expected"),
    [
        ("2026-12", 10, date(2026, 12, 10)),
        ("2026-02", 30, date(2026, 2, 28)),
        ("2028-02", 31, date(2028, 2, 29)),  # leap year
        ("2026-04", 31, date(2026, 4, 30)),
        ("2026-01", 31, date(2026, 1, 31)),
        ("2026-06", 1, date(2026, 6, 1)),
    ],
)
def test_due_date_uses_the_chosen_day_clamped_to_month_end(cycle: str, day: int, expected: date) -> None:
    assert due_date(cycle, day) == expected


def test_due_day_outside_the_offered_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="choose one of 5, 10, 15, 20, 25"):
        due_date("2026-12", 12, allowed_days=[5, 10, 15, 20, 25])


def test_due_day_out_of_range_is_refused() -> None:
    with pytest.raises(ValidationError, match="between 1 and 31"):
        due_date(Cycle(2026, 12), 0)


# price, activation, day count, days used, days in period, amount
PRORATA = [
    ("99.90", date(2026, 3, 1), DayCount.ACTUAL, 31, 31, "99.90"),
    ("99.90", date(2026, 3, 17), DayCount.ACTUAL, 15, 31, "48.34"),  # 48.3387
    ("99.90", date(2026, 3, 31), DayCount.ACTUAL, 1, 31, "3.22"),
    ("90.00", date(2026, 2, 15), DayCount.ACTUAL, 14, 28, "45.00"),
    ("90.00", date(2028, 2, 15), DayCount.ACTUAL, 15, 29, "46.55"),  # 46.5517
    ("90.00", date(2026, 2, 15), DayCount.COMMERCIAL_30, 16, 30, "48.00"),  # Feb 28 counts as the 30th
    ("90.00", date(2026, 3, 17), DayCount.COMMERCIAL_30, 14, 30, "42.00"),
    ("90.00", date(2026, 3, 31), DayCount.COMMERCIAL_30, 1, 30, "3.00"),
    ("90.00", date(2026, 3, 1), DayCount.COMMERCIAL_30, 30, 30, "90.00"),
]


@pytest.mark.parametrize(("price", "activation", "count", "used", "period", "amount"), PRORATA)
def test_first_invoice_pro_rata_table(price, activation, count, used, period, amount) -> None:
    result = first_invoice(D(price), activation, count=count)
    assert (result.days_used, result.days_in_period, result.amount) == (used, period, D(amount))


def test_first_invoice_without_pro_rata_charges_the_whole_month() -> None:
    assert first_invoice(D("99.90"), date(2026, 3, 17), enabled=False).amount == D("99.90")


def test_prorate_between_two_days_of_the_same_month() -> None:
    result = prorate(D("300.00"), date(2026, 4, 1), date(2026, 4, 10))
    assert (result.days_used, result.amount) == (10, D("100.00"))


def test_prorate_across_months_is_refused() -> None:
    with pytest.raises(ValidationError, match="same month"):
        prorate(D("100"), date(2026, 3, 20), date(2026, 4, 5))
