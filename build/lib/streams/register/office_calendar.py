"""Japan time and the municipal office calendar the simulated notifications follow.

Offices are open on weekdays from 8:30 to 17:15 Japan time and closed over the New Year
(29 December to 3 January). National holidays are not modelled: they would need a holiday
calendar the project does not carry, and only shift a few days' notifications per year.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
OFFICE_OPENS = time(8, 30)
OFFICE_CLOSES = time(17, 15)
OFFICE_DAY_MS = ((17 * 60 + 15) - (8 * 60 + 30)) * 60_000
# The yearly inhabitant-tax assessment (税額決定) is processed over this many first working days of June.
TAX_ASSESSMENT_WORKING_DAYS = 5


def is_working_day(day: date) -> bool:
    if day.weekday() >= 5:
        return False
    return not ((day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3))


def tax_assessment_days(year: int) -> tuple[date, ...]:
    """The first working days of June of `year`, over which the assessment is spread."""
    days: list[date] = []
    day = date(year, 6, 1)
    while len(days) < TAX_ASSESSMENT_WORKING_DAYS:
        if is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def latest_assessed_fiscal_year(day: date) -> int:
    """The newest fiscal year whose assessment is complete at the end of `day`."""
    return day.year if day >= tax_assessment_days(day.year)[-1] else day.year - 1


def jst_midnight(day: date) -> datetime:
    """The instant 00:00 Japan time of `day`, as a UTC datetime."""
    return datetime.combine(day, time(0), JST).astimezone(ZoneInfo("UTC"))


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
