"""Statistics definitions (docs/domain.md §7): office hours, national holidays, the year-end break, categories."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.japan_time import to_japan_time, utc_instant
from domain.office_hours import (
    is_office_day,
    is_office_minute,
    is_outside_office_hours,
    is_year_end_break,
    office_calendar,
)
from domain.statistics import CATEGORIES, category_of, fiscal_year_of


@pytest.mark.parametrize(
    ("day", "office"),
    [
        (date(2025, 11, 4), True),  # Tuesday
        (date(2025, 11, 3), False),  # Monday, 文化の日
        (date(2025, 11, 24), False),  # Monday, substitute holiday for 勤労感謝の日 on Sunday the 23rd
        (date(2025, 11, 8), False),  # Saturday
        (date(2025, 11, 9), False),  # Sunday
        (date(2025, 12, 26), True),  # Friday before the break
        (date(2025, 12, 29), False),  # Monday, year-end break
        (date(2025, 12, 31), False),
        (date(2026, 1, 2), False),  # Friday, year-end break
        (date(2026, 1, 5), True),  # Monday after the break
        (date(2026, 1, 12), False),  # 成人の日
        (date(2025, 9, 22), True),  # Monday between 敬老の日 and 秋分の日: not a holiday in 2025
        (date(2026, 9, 22), False),  # 国民の休日 between 敬老の日 (21st) and 秋分の日 (23rd)
    ],
)
def test_office_days(day: date, office: bool) -> None:
    assert is_office_day(day) is office


def test_year_end_break_is_29_december_to_3_january() -> None:
    assert [is_year_end_break(date(2025, 12, d)) for d in (28, 29, 31)] == [False, True, True]
    assert [is_year_end_break(date(2026, 1, d)) for d in (1, 3, 4)] == [True, True, False]


def test_office_minutes_are_half_open() -> None:
    assert [is_office_minute(m) for m in (8 * 60 + 29, 8 * 60 + 30, 17 * 60 + 14, 17 * 60 + 15)] == [
        False, True, True, False,
    ]


def test_issue_times_are_judged_in_japan_time() -> None:
    # 2025-11-04 23:30 UTC is Wednesday 5 November 08:30 in Japan: inside office hours.
    assert not is_outside_office_hours(datetime(2025, 11, 4, 23, 30, tzinfo=UTC))
    # 2025-11-04 23:29 UTC is 08:29 in Japan: outside.
    assert is_outside_office_hours(datetime(2025, 11, 4, 23, 29, tzinfo=UTC))
    # 08:15 UTC on a Tuesday is 17:15 in Japan: the window has closed.
    assert is_outside_office_hours(datetime(2025, 11, 4, 8, 15, tzinfo=UTC))
    assert is_outside_office_hours(utc_instant(datetime(2025, 11, 3, 10, 0)))  # holiday
    assert to_japan_time(datetime(2025, 3, 31, 15, 30, tzinfo=UTC)).date() == date(2025, 4, 1)
    with pytest.raises(ValueError, match="time zone"):
        is_outside_office_hours(datetime(2025, 11, 4, 10, 0))


def test_office_calendar_matches_the_rule_day_by_day() -> None:
    calendar = office_calendar(date(2025, 12, 20), date(2026, 1, 10))
    assert len(calendar) == 22
    assert all(office is is_office_day(day) for day, office in calendar)
    assert office_calendar(date(2026, 1, 2), date(2026, 1, 1)) == []


def test_fiscal_year_and_categories() -> None:
    assert fiscal_year_of(date(2026, 3, 31)) == 2025
    assert fiscal_year_of(date(2026, 4, 1)) == 2026
    assert CATEGORIES[:6] == ("住民票", "住記載", "印鑑", "税", "戸籍", "附票")
    assert [category_of(t) for t in ("RESIDENT_RECORD", "SEAL_REGISTRATION", "INCOME", "TAXATION", "TAX_PAYMENT")] == [
        "住民票", "印鑑", "税", "税", "税",
    ]
    assert category_of("DISASTER_DAMAGE") == "その他"
    with pytest.raises(ValueError):
        category_of("FAMILY_REGISTER")
