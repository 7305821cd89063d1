"""Late fine and interest: caps, pro rata die on a table of dates, non-business due dates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from aaa.errors import ValidationError
from billing.businessdays import bank_holidays, easter, is_business_day, next_business_day
from billing.latefee import DayBasis, amount_due, daily_interest

D = Decimal

# principal, due date, payment date, fine %, interest % a month, days late, fine, interest
TABLE = [
    ("99.90", date(2026, 3, 10), date(2026, 3, 9), "2", "1", 0, "0.00", "0.00"),  # early
    ("99.90", date(2026, 3, 10), date(2026, 3, 10), "2", "1", 0, "0.00", "0.00"),  # on the due date
    ("99.90", date(2026, 3, 10), date(2026, 3, 11), "2", "1", 1, "2.00", "0.03"),  # 99.90*1%/30 = 0.0333
    ("99.90", date(2026, 3, 10), date(2026, 3, 25), "2", "1", 15, "2.00", "0.50"),  # 0.4995 -> 0.50
    ("99.90", date(2026, 3, 10), date(2026, 4, 9), "2", "1", 30, "2.00", "1.00"),  # 0.999 -> 1.00
    ("100.00", date(2026, 3, 10), date(2026, 5, 9), "2", "1", 60, "2.00", "2.00"),
    ("100.00", date(2026, 3, 10), date(2026, 3, 20), "1.5", "0.5", 10, "1.50", "0.17"),  # 0.1666
    ("100.00", date(2026, 3, 10), date(2026, 3, 20), "0", "0", 10, "0.00", "0.00"),
    ("149.90", date(2026, 1, 5), date(2027, 1, 5), "2", "1", 365, "3.00", "18.24"),  # 2.998; 18.2378
    # due on Saturday 2026-03-14: Monday 16th is on time, Tuesday 17th counts from the 14th
    ("100.00", date(2026, 3, 14), date(2026, 3, 16), "2", "1", 0, "0.00", "0.00"),
    ("100.00", date(2026, 3, 14), date(2026, 3, 17), "2", "1", 3, "2.00", "0.10"),
    # due on Christmas 2026 (Friday): Monday 28th is the first business day after it
    ("100.00", date(2026, 12, 25), date(2026, 12, 28), "2", "1", 0, "0.00", "0.00"),
    ("100.00", date(2026, 12, 25), date(2026, 12, 29), "2", "1", 4, "2.00", "0.13"),
]


@pytest.mark.parametrize(("principal", "due", "paid", "fine_pct", "rate", "days", "fine", "interest"), TABLE)
def test_fine_and_interest_on_a_table_of_dates(
    principal, due, paid, fine_pct, rate, days, fine, interest
) -> None:
    result = amount_due(D(principal), due, paid, D(fine_pct), D(rate))
    assert result.days_late == days
    assert result.fine == D(fine)
    assert result.interest == D(interest)
    assert result.total == D(principal) + D(fine) + D(interest)


def test_calendar_basis_divides_each_late_day_by_its_months_length() -> None:
    # 28 February days at 1/28 each + 3 March days at 1/31 each = 1.0968 months of 1% on 100.00
    result = amount_due(D("100.00"), date(2026, 1, 31), date(2026, 3, 3), basis=DayBasis.CALENDAR)
    assert result.interest == D("1.10")
    commercial = amount_due(D("100.00"), date(2026, 1, 31), date(2026, 3, 3))
    assert commercial.interest == D("1.03")  # 31 days / 30


@pytest.mark.parametrize(("fine_pct", "rate"), [("2.01", "1"), ("2", "1.01"), ("-1", "1"), ("2", "-0.1")])
def test_rates_above_the_legal_caps_are_refused(fine_pct: str, rate: str) -> None:
    with pytest.raises(ValidationError, match="between 0 and"):
        amount_due(D("100"), date(2026, 3, 10), date(2026, 4, 10), D(fine_pct), D(rate))


def test_local_holidays_extend_the_grace_day() -> None:
    # due on Friday 2026-01-09, a city holiday there: Monday 12th is the first business day
    result = amount_due(D("100"), date(2026, 1, 9), date(2026, 1, 12), extra_holidays=[date(2026, 1, 9)])
    assert result.fine == D("0.00")


def test_daily_interest_for_the_boleto_instructions() -> None:
    assert daily_interest(D("99.90")) == D("0.03")
    assert daily_interest(D("1500.00")) == D("0.50")


@pytest.mark.parametrize(
    ("year", "sunday"), [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5))]
)
def test_easter_known_dates(year: int, sunday: date) -> None:
    assert easter(year) == sunday


def test_bank_holidays_include_carnival_good_friday_and_corpus_christi() -> None:
    holidays = bank_holidays(2026)
    assert {date(2026, 2, 16), date(2026, 2, 17), date(2026, 4, 3), date(2026, 6, 4)} <= holidays
    assert date(2026, 11, 20) in holidays
    assert date(2023, 11, 20) not in bank_holidays(2023)


def test_next_business_day_skips_weekends_and_holidays() -> None:
    assert next_business_day(date(2026, 4, 3)) == date(2026, 4, 6)  # Good Friday -> Monday
    assert next_business_day(date(2026, 4, 6)) == date(2026, 4, 6)
    assert not is_business_day(date(2026, 3, 14))
