from __future__ import annotations

import datetime as dt

import pytest

from domain.errors import JapaneseDateError
from domain.japanese_date import format_japanese_date, kanji_number, to_era


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (dt.date(2019, 4, 30), "平成31年4月30日"),
        (dt.date(2019, 5, 1), "令和元年5月1日"),
        (dt.date(1989, 1, 7), "昭和64年1月7日"),
        (dt.date(1989, 1, 8), "平成元年1月8日"),
        (dt.date(1926, 12, 24), "大正15年12月24日"),
        (dt.date(1926, 12, 25), "昭和元年12月25日"),
        (dt.date(1912, 7, 29), "明治45年7月29日"),
        (dt.date(1912, 7, 30), "大正元年7月30日"),
        (dt.date(1873, 1, 1), "明治6年1月1日"),
        (dt.date(2026, 11, 21), "令和8年11月21日"),
        (dt.date(2020, 1, 1), "令和2年1月1日"),
    ],
)
def test_era_boundaries(date: dt.date, expected: str) -> None:
    assert format_japanese_date(date) == expected


def test_kanji_numerals() -> None:
    assert format_japanese_date(dt.date(2026, 11, 21), "kanji") == "令和八年十一月二十一日"
    assert format_japanese_date(dt.date(2019, 5, 10), "kanji") == "令和元年五月十日"
    assert [kanji_number(n) for n in (1, 10, 11, 20, 31, 64, 99)] == ["一", "十", "十一", "二十", "三十一", "六十四",
                                                                      "九十九"]


def test_era_year_counts_from_the_era_start_not_january() -> None:
    era = to_era(dt.date(1989, 12, 31))
    assert (era.era, era.year) == ("平成", 1)
    assert to_era(dt.date(1990, 1, 1)).year == 2


def test_dates_before_the_gregorian_calendar_are_refused() -> None:
    with pytest.raises(JapaneseDateError, match="1873"):
        format_japanese_date(dt.date(1872, 12, 31))
