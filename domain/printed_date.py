"""Reading a date as a person copies it from a certificate: the era date printed on the front
(令和8年11月17日, 令和元年5月1日, 令和八年十一月十七日, full-width digits, R8.11.17) or a Western date
(2026-11-17, 2026/11/17, 2026年11月17日). The inverse of domain.japanese_date, on its era table. Pure: no I/O.

An era date is refused unless the era was in force that day (平成31年5月1日 was never printed: that
day is 令和元年5月1日), and era dates before Japan adopted the Gregorian calendar are refused like
domain.japanese_date refuses to write them. Errors carry the reason in Japanese and English: the
people who type these dates read Japanese first.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from domain.errors import JapaneseDateError
from domain.japanese_date import ERAS, GREGORIAN_ADOPTED, Era

# The romanised initials used in forms and on cards (R8.11.17 = 令和8年11月17日).
_ERA_INITIALS = {"R": "令和", "H": "平成", "S": "昭和", "T": "大正", "M": "明治"}
_KANJI_DIGITS = {ch: i for i, ch in enumerate("〇一二三四五六七八九")}
_NUMBER = r"[0-9]{1,2}|[〇一二三四五六七八九十]{1,3}"
_ERA_NAMES = "|".join(era.name for era in ERAS)
_ERA_DATE = re.compile(rf"(?P<era>{_ERA_NAMES})(?P<year>元|{_NUMBER})年(?P<month>{_NUMBER})月(?P<day>{_NUMBER})日")
_ERA_SHORT = re.compile(r"(?P<era>[RHSTM])(?P<year>[0-9]{1,2})[./-](?P<month>[0-9]{1,2})[./-](?P<day>[0-9]{1,2})")
_WESTERN = re.compile(r"(?P<year>[0-9]{4})(?:[-/.](?P<month>[0-9]{1,2})[-/.](?P<day>[0-9]{1,2})"
                      r"|年(?P<kmonth>[0-9]{1,2})月(?P<kday>[0-9]{1,2})日)")

EXAMPLES_JA = "令和8年11月17日、令和元年5月1日、2026-11-17、2026/11/17"
EXAMPLES_EN = "令和8年11月17日, 令和元年5月1日, 2026-11-17 or 2026/11/17"


class PrintedDateError(JapaneseDateError):
    """A typed date that is not a date of the Gregorian calendar as Japan prints it; `ja` says so in Japanese."""

    def __init__(self, en: str, ja: str) -> None:
        super().__init__(en)
        self.en = en
        self.ja = ja


def _normalise(text: str) -> str:
    # NFKC turns full-width digits and punctuation into ASCII and the era ligatures (㋿ ㍻ ㍼) into
    # their two characters; whitespace anywhere is dropped (令和 8年 11月 17日 is the same date).
    folded = unicodedata.normalize("NFKC", text)
    return "".join(folded.split()).upper()


def _number(text: str) -> int:
    """Arabic digits, or kanji numerals 1..99 as domain.japanese_date.kanji_number writes them."""
    if text.isdigit():
        return int(text)
    tens, sep, ones = text.rpartition("十")
    if not sep:
        return _KANJI_DIGITS[text] if len(text) == 1 else -1  # 二一 is not a way to write 21
    if len(tens) > 1 or len(ones) > 1 or "十" in tens + ones or tens == "一":
        return -1
    return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[ones] if ones else 0)


def _next_era_start(era: Era) -> dt.date | None:
    index = ERAS.index(era)
    return ERAS[index - 1].first_day if index > 0 else None


def _calendar_date(year: int, month: int, day: int, text: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise PrintedDateError(f"«{text}» is not a date of the calendar (month {month}, day {day})",
                               f"「{text}」はありえない日付です（{month}月{day}日）") from None


def _era_date(era_name: str, year_text: str, month_text: str, day_text: str, text: str) -> dt.date:
    era = next(e for e in ERAS if e.name == era_name)
    year = 1 if year_text == "元" else _number(year_text)
    month, day = _number(month_text), _number(day_text)
    if min(year, month, day) < 1:
        raise PrintedDateError(f"«{text}»: the year, month and day must be numbers from 1 (year 1 is 元年)",
                               f"「{text}」: 年・月・日は1以上の数で書いてください（1年は元年）")
    date = _calendar_date(era.first_day.year + year - 1, month, day, text)
    following = _next_era_start(era)
    if date < era.first_day or (following is not None and date >= following):
        start = era.first_day
        if following is None:
            span_en = f"began on {start.isoformat()}"
            span_ja = f"{start.year}年{start.month}月{start.day}日に始まりました"
        else:
            last = following - dt.timedelta(days=1)
            span_en = f"ran from {start.isoformat()} to {last.isoformat()}"
            span_ja = f"{start.year}年{start.month}月{start.day}日から{last.year}年{last.month}月{last.day}日まで"
        raise PrintedDateError(f"«{text}» does not exist: {era.name} {span_en}",
                               f"「{text}」は存在しない日付です（{era.name}は{span_ja}）")
    if date < GREGORIAN_ADOPTED:
        raise PrintedDateError(
            f"«{text}» is before Japan adopted the Gregorian calendar (明治6年1月1日, 1873-01-01)",
            f"「{text}」は太陽暦の採用（明治6年1月1日）より前の日付で、変換できません")
    return date


def parse_printed_date(text: str) -> dt.date:
    """The date a person typed as printed: 令和8年11月17日 (also 元年, kanji or full-width numerals,
    R8.11.17) or Western 2026-11-17, 2026/11/17, 2026年11月17日. PrintedDateError for anything else."""
    compact = _normalise(text)
    shown = text.strip()
    if not compact:
        raise PrintedDateError("no date given", "日付が入力されていません")
    if found := _ERA_DATE.fullmatch(compact):
        return _era_date(found["era"], found["year"], found["month"], found["day"], shown)
    if found := _ERA_SHORT.fullmatch(compact):
        return _era_date(_ERA_INITIALS[found["era"]], found["year"], found["month"], found["day"], shown)
    if found := _WESTERN.fullmatch(compact):
        month, day = (found["month"], found["day"]) if found["month"] else (found["kmonth"], found["kday"])
        return _calendar_date(int(found["year"]), int(month), int(day), shown)
    raise PrintedDateError(f"«{shown}» is not a date as printed (write it like {EXAMPLES_EN})",
                           f"「{shown}」は日付として読めません（例: {EXAMPLES_JA}）")
