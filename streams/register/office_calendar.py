"""The municipal office calendar the simulated notifications follow, and the yearly tax assessment.

Counter changes (moves, seals, cards...) are filed in office hours on office days (domain.office_hours:
weekdays 8:30 to 17:15 Japan time, not on national holidays nor in the year-end break).
"""

from __future__ import annotations

from datetime import date, timedelta

from domain.office_hours import OFFICE_DAY_MINUTES, OFFICE_OPENS_MINUTE, is_office_day

OFFICE_OPENS_MS = OFFICE_OPENS_MINUTE * 60_000
OFFICE_DAY_MS = OFFICE_DAY_MINUTES * 60_000
# The yearly inhabitant-tax assessment (税額決定) is processed over this many first working days of June.
TAX_ASSESSMENT_WORKING_DAYS = 5


def tax_assessment_days(year: int) -> tuple[date, ...]:
    """The first office days of June of `year`, over which the assessment is spread."""
    days: list[date] = []
    day = date(year, 6, 1)
    while len(days) < TAX_ASSESSMENT_WORKING_DAYS:
        if is_office_day(day):
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def latest_assessed_fiscal_year(day: date) -> int:
    """The newest fiscal year whose assessment is complete at the end of `day`."""
    return day.year if day >= tax_assessment_days(day.year)[-1] else day.year - 1
