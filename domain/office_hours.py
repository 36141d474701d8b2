"""When municipal offices are open, and the year-end break (docs/domain.md §3, §7). Pure: no I/O.

- Year-end break (年末年始): 29 December – 3 January. Offices are closed and the kiosks stop issuing.
- Office days: weekdays that are neither a national holiday (Japan's holiday law: 国民の祝日, substitute
  and citizens' holidays, from the `holidays` library) nor in the year-end break.
- Office hours (窓口時間): 08:30 ≤ time < 17:15, Japan time, on office days. The published statistics
  count what is issued outside them (窓口時間外); the register simulator files its counter changes in them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import holidays

from domain.japan_time import to_japan_time

OFFICE_OPENS = dt.time(8, 30)
OFFICE_CLOSES = dt.time(17, 15)  # exclusive: a certificate printed at 17:15:00 is outside office hours
OFFICE_OPENS_MINUTE = OFFICE_OPENS.hour * 60 + OFFICE_OPENS.minute
OFFICE_CLOSES_MINUTE = OFFICE_CLOSES.hour * 60 + OFFICE_CLOSES.minute
OFFICE_DAY_MINUTES = OFFICE_CLOSES_MINUTE - OFFICE_OPENS_MINUTE


def is_year_end_break(day: dt.date) -> bool:
    """29 December – 3 January (Japan-time dates): offices closed, kiosks in their maintenance break."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def japan_holidays(years: Iterable[int]) -> holidays.HolidayBase:
    """Japan's national holidays (国民の祝日, substitute and citizens' holidays) for the given years."""
    return holidays.Japan(years=sorted(set(years)))


@lru_cache(maxsize=64)
def _holidays_of(year: int) -> holidays.HolidayBase:
    # The day-by-day callers (register simulator, kiosk tests) ask about one year many times.
    return japan_holidays([year])


def is_national_holiday(day: dt.date) -> bool:
    return day in _holidays_of(day.year)


def is_office_day(day: dt.date, national_holidays: holidays.HolidayBase | None = None) -> bool:
    """A weekday that is not a national holiday and not in the year-end break. Pass `national_holidays`
    (japan_holidays over the years at hand) when judging many days of a range."""
    if day.weekday() >= 5 or is_year_end_break(day):
        return False
    return day not in national_holidays if national_holidays is not None else not is_national_holiday(day)


def is_office_minute(minute_of_day: int) -> bool:
    """Whether a minute of the day (Japan time, 0–1439) falls in 08:30 ≤ t < 17:15."""
    return OFFICE_OPENS_MINUTE <= minute_of_day < OFFICE_CLOSES_MINUTE


def is_outside_office_hours(instant: dt.datetime, national_holidays: holidays.HolidayBase | None = None) -> bool:
    """Whether an instant (aware, any zone) is outside municipal office hours, judged in Japan time."""
    local = to_japan_time(instant)
    return not (is_office_day(local.date(), national_holidays) and OFFICE_OPENS <= local.time() < OFFICE_CLOSES)


def office_calendar(first: dt.date, last: dt.date) -> list[tuple[dt.date, bool]]:
    """(day, is_office_day) for every day from first to last inclusive: a small table that a query joins
    instead of evaluating the holiday rules per row."""
    if last < first:
        return []
    national_holidays = japan_holidays(range(first.year, last.year + 1))
    days = (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
    return [(d, is_office_day(d, national_holidays)) for d in days]
