"""Japanese-era dates (和暦) as printed on certificates: 令和8年11月21日, 平成元年5月1日, or in kanji
numerals 令和八年十一月二十一日. Pure: no I/O.

Era boundaries are the first Gregorian day of each era. Japan adopted the Gregorian calendar on
明治6年1月1日 (1873-01-01); earlier dates were lunisolar and are refused rather than converted wrongly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from domain.errors import JapaneseDateError

Numerals = Literal["arabic", "kanji"]


@dataclass(frozen=True)
class Era:
    name: str
    first_day: dt.date


# Newest first, so the first era whose first day is not after the date is the one.
ERAS: tuple[Era, ...] = (
    Era("令和", dt.date(2019, 5, 1)),
    Era("平成", dt.date(1989, 1, 8)),
    Era("昭和", dt.date(1926, 12, 25)),
    Era("大正", dt.date(1912, 7, 30)),
    Era("明治", dt.date(1868, 1, 25)),  # 明治元年 counts from 慶応4年1月1日 (retroactive)
)

GREGORIAN_ADOPTED = dt.date(1873, 1, 1)

_DIGITS = "〇一二三四五六七八九"


@dataclass(frozen=True)
class EraDate:
    era: str
    year: int
    month: int
    day: int

    def format(self, numerals: Numerals = "arabic") -> str:
        year = "元" if self.year == 1 else _number(self.year, numerals)
        return f"{self.era}{year}年{_number(self.month, numerals)}月{_number(self.day, numerals)}日"


def to_era(date: dt.date) -> EraDate:
    """The era date of a Gregorian date from 1873-01-01 on."""
    if date < GREGORIAN_ADOPTED:
        raise JapaneseDateError(
            f"{date.isoformat()} is before Japan adopted the Gregorian calendar (1873-01-01); "
            "its era date needs the lunisolar calendar"
        )
    for era in ERAS:
        if date >= era.first_day:
            return EraDate(era.name, date.year - era.first_day.year + 1, date.month, date.day)
    raise JapaneseDateError(f"no era for {date.isoformat()}")  # unreachable after the check above


def format_japanese_date(date: dt.date, numerals: Numerals = "arabic") -> str:
    """令和8年11月21日 (arabic) or 令和八年十一月二十一日 (kanji); year 1 is 元年."""
    return to_era(date).format(numerals)


def format_western_date(date: dt.date) -> str:
    """2026年11月21日: how certificates show dates of foreign residents (西暦)."""
    return f"{date.year}年{date.month}月{date.day}日"


def kanji_number(n: int) -> str:
    """1..99 as kanji numerals: 8 → 八, 21 → 二十一, 10 → 十."""
    if not 0 < n < 100:
        raise JapaneseDateError(f"kanji numerals are supported for 1..99 only, got {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "")


def _number(n: int, numerals: Numerals) -> str:
    return kanji_number(n) if numerals == "kanji" else str(n)
