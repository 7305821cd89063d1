"""Brazilian bank business days: weekends, national holidays and the bank holidays tied to Easter.

Used to move a due date that falls on a non-business day (Lei 7.089/1983) and by anything that counts
bank days. Municipal and state holidays differ by city: pass them as `extra_holidays`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache

FIXED_NATIONAL_HOLIDAYS = (
    (1, 1),  # Confraternização Universal
    (4, 21),  # Tiradentes
    (5, 1),  # Dia do Trabalho
    (9, 7),  # Independência
    (10, 12),  # Nossa Senhora Aparecida
    (11, 2),  # Finados
    (11, 15),  # Proclamação da República
    (12, 25),  # Natal
)
BLACK_CONSCIOUSNESS_FROM = 2024
"""20 November (Dia Nacional de Zumbi e da Consciência Negra) is national from 2024 (Lei 14.759/2023)."""


def easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month = (h + leap - 7 * m + 114) // 31
    day = (h + leap - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    """Days banks do not open nationwide: national holidays plus Carnival (Mon, Tue), Good Friday and
    Corpus Christi."""
    days = {date(year, month, day) for month, day in FIXED_NATIONAL_HOLIDAYS}
    if year >= BLACK_CONSCIOUSNESS_FROM:
        days.add(date(year, 11, 20))
    sunday = easter(year)
    days.update(sunday + timedelta(days=offset) for offset in (-48, -47, -2, 60))
    return frozenset(days)


def is_business_day(day: date, extra_holidays: Iterable[date] = ()) -> bool:
    """True on a weekday that is neither a bank holiday nor in `extra_holidays`."""
    return day.weekday() < 5 and day not in bank_holidays(day.year) and day not in set(extra_holidays)


def next_business_day(day: date, extra_holidays: Iterable[date] = ()) -> date:
    """`day` itself when it is a business day, else the first business day after it."""
    holidays = frozenset(extra_holidays)
    while not is_business_day(day, holidays):
        day += timedelta(days=1)
    return day
