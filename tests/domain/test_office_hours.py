"""domain.office_hours on Japan's national holidays, and its users (statistics, kiosks, the register simulator)."""

from __future__ import annotations

import datetime as dt

from domain.japan_time import JST
from domain.kiosk_rules import ReasonCode, check_service_hours
from domain.office_hours import is_national_holiday, is_office_day, is_outside_office_hours
from streams.register.office_calendar import tax_assessment_days

CULTURE_DAY = dt.date(2025, 11, 3)  # 文化の日, a Monday


def test_office_hours_on_a_national_holiday() -> None:
    assert is_national_holiday(CULTURE_DAY) and not is_office_day(CULTURE_DAY)
    # 10:00 on a weekday would be inside office hours; on the holiday the office is closed.
    assert is_outside_office_hours(dt.datetime(2025, 11, 3, 10, 0, tzinfo=JST))
    assert not is_outside_office_hours(dt.datetime(2025, 11, 4, 10, 0, tzinfo=JST))


def test_kiosks_serve_on_national_holidays_but_not_in_the_year_end_break() -> None:
    assert check_service_hours(dt.datetime(2025, 11, 3, 10, 0, tzinfo=JST), "131016") is None
    refused = check_service_hours(dt.datetime(2025, 12, 30, 10, 0, tzinfo=JST), "131016")
    assert refused is not None and refused.code is ReasonCode.YEAR_END_BREAK


def test_the_register_simulator_files_no_counter_work_on_holidays() -> None:
    # 2025: 1 June is a Sunday; no holidays in early June, so the assessment runs 2–6 June.
    assert tax_assessment_days(2025) == tuple(dt.date(2025, 6, d) for d in range(2, 7))
    assert all(is_office_day(day) for day in tax_assessment_days(2026))
