"""Reading the issue date as a person types it from the paper (domain.printed_date)."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.errors import JapaneseDateError
from domain.japanese_date import format_japanese_date
from domain.printed_date import PrintedDateError, parse_printed_date


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("令和8年11月17日", dt.date(2026, 11, 17)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("令和1年5月1日", dt.date(2019, 5, 1)),
        ("令和８年１１月１７日", dt.date(2026, 11, 17)),  # full-width digits, as an IME types them
        ("令和八年十一月十七日", dt.date(2026, 11, 17)),
        ("令和二年二月二十日", dt.date(2020, 2, 20)),
        ("令和十年十月十日", dt.date(2028, 10, 10)),
        ("　令和 8年 11月 17日 ", dt.date(2026, 11, 17)),  # spaces, the ideographic one too
        ("㋿8年11月17日", dt.date(2026, 11, 17)),  # the one-character era sign
        ("R8.11.17", dt.date(2026, 11, 17)),
        ("h31/4/30", dt.date(2019, 4, 30)),
        ("平成31年4月30日", dt.date(2019, 4, 30)),
        ("平成元年1月8日", dt.date(1989, 1, 8)),
        ("昭和64年1月7日", dt.date(1989, 1, 7)),
        ("明治6年1月1日", dt.date(1873, 1, 1)),
        ("2026-11-17", dt.date(2026, 11, 17)),
        ("2026/11/17", dt.date(2026, 11, 17)),
        ("２０２６／１１／１７", dt.date(2026, 11, 17)),
        ("2026/1/7", dt.date(2026, 1, 7)),
        ("2026年11月17日", dt.date(2026, 11, 17)),
    ],
)
def test_dates_as_printed_and_typed(typed: str, expected: dt.date) -> None:
    assert parse_printed_date(typed) == expected


@pytest.mark.parametrize("day", [dt.date(1873, 1, 1), dt.date(1912, 7, 30), dt.date(1926, 12, 25),
                                 dt.date(1989, 1, 8), dt.date(2019, 4, 30), dt.date(2019, 5, 1),
                                 dt.date(2026, 11, 21)])
def test_reads_back_what_the_certificate_prints(day: dt.date) -> None:
    for numerals in ("arabic", "kanji"):
        assert parse_printed_date(format_japanese_date(day, numerals)) == day


@pytest.mark.parametrize(
    ("typed", "en", "ja"),
    [
        ("平成31年5月1日", "平成 ran from 1989-01-08 to 2019-04-30", "存在しない日付"),  # that day is 令和元年
        ("令和元年4月30日", "令和 began on 2019-05-01", "存在しない日付"),
        ("令和8年13月1日", "not a date of the calendar", "ありえない日付"),
        ("令和8年2月30日", "not a date of the calendar", "ありえない日付"),
        ("2026-02-30", "not a date of the calendar", "ありえない日付"),
        ("令和0年1月1日", "numbers from 1", "1以上"),
        ("明治5年12月2日", "before Japan adopted the Gregorian calendar", "太陽暦"),
        ("17/11/2026", "is not a date as printed", "日付として読めません"),
        ("令和8年11月", "is not a date as printed", "日付として読めません"),
        ("令和二一年1月1日", "numbers from 1", "1以上"),  # not a way to write 21
        ("yesterday", "is not a date as printed", "日付として読めません"),
        ("   ", "no date given", "入力されていません"),
    ],
)
def test_refuses_with_the_reason_in_both_languages(typed: str, en: str, ja: str) -> None:
    with pytest.raises(PrintedDateError) as caught:
        parse_printed_date(typed)
    assert en in caught.value.en and en in str(caught.value)
    assert ja in caught.value.ja
    if typed.strip():
        assert typed.strip() in caught.value.ja and typed.strip() in caught.value.en  # names what was typed


def test_is_a_japanese_date_error() -> None:
    # Callers that already handle the era errors (a ValueError) handle these too.
    with pytest.raises(JapaneseDateError):
        parse_printed_date("令和8年13月1日")
    with pytest.raises(ValueError):
        parse_printed_date("x")
