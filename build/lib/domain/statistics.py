"""Definitions behind the published statistics of docs/domain.md §7 (no I/O).

- Municipal office hours (窓口時間): 08:30 ≤ time < 17:15, Japan time, on office days. An office day is a
  weekday that is neither a national holiday (Japan's holiday law, from the `holidays` library) nor in the
  year-end break 29 December – 3 January. Everything else is "outside office hours" (窓口時間外).
- Issued in another municipality (他市区町村): the kiosk stands outside the issuing municipality.
- The published certificate categories (住民票, 住記載, 印鑑, 税, 戸籍, 附票) and how the certificate types of
  the CertificateIssued contract map onto them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

JAPAN = ZoneInfo("Asia/Tokyo")

OFFICE_OPENS = time(8, 30)
OFFICE_CLOSES = time(17, 15)  # exclusive: a certificate printed at 17:15:00 is outside office hours
OFFICE_OPENS_MINUTE = OFFICE_OPENS.hour * 60 + OFFICE_OPENS.minute
OFFICE_CLOSES_MINUTE = OFFICE_CLOSES.hour * 60 + OFFICE_CLOSES.minute

# The published categories, in the order of the operator's tables. 住記載 (住民票記載事項証明書), 戸籍 and 附票
# are never issued through BCL, so their counts are 0 in BCL's figures; they are kept so that the tables
# line up with the operator's publications. OTHER holds the disaster certificates, which are not among them.
RESIDENT_RECORD = "住民票"
RESIDENT_ITEMS = "住記載"
SEAL = "印鑑"
TAX = "税"
FAMILY_REGISTER = "戸籍"
FAMILY_REGISTER_ANNEX = "附票"
OTHER = "その他"
CATEGORIES: tuple[str, ...] = (
    RESIDENT_RECORD, RESIDENT_ITEMS, SEAL, TAX, FAMILY_REGISTER, FAMILY_REGISTER_ANNEX, OTHER,
)

CATEGORY_OF_TYPE: dict[str, str] = {
    "RESIDENT_RECORD": RESIDENT_RECORD,
    "SEAL_REGISTRATION": SEAL,
    "INCOME": TAX,
    "TAXATION": TAX,
    "TAX_PAYMENT": TAX,
    "DISASTER_DAMAGE": OTHER,
    "DISASTER_AFFECTED": OTHER,
}


def category_of(certificate_type: str) -> str:
    """The published category of a CertificateIssued certificate_type."""
    try:
        return CATEGORY_OF_TYPE[certificate_type]
    except KeyError:
        raise ValueError(f"unknown certificate type {certificate_type!r}") from None


def fiscal_year_of(day: date) -> int:
    """The fiscal year (年度, April–March) a day belongs to, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def to_japan_time(instant: datetime) -> datetime:
    """An aware instant (stored UTC) as Japan wall-clock time."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no instant; give it a time zone (stored times are UTC)")
    return instant.astimezone(JAPAN)


def is_year_end_break(day: date) -> bool:
    """29 December – 3 January: offices closed (and kiosks in their maintenance break)."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def japan_holidays(years: Iterator[int] | range | list[int]) -> holidays.HolidayBase:
    """Japan's national holidays (国民の祝日, substitute and citizens' holidays) for the given years."""
    return holidays.Japan(years=list(years))


def is_office_day(day: date, national_holidays: holidays.HolidayBase | None = None) -> bool:
    """A weekday that is not a national holiday and not in the year-end break."""
    calendar = japan_holidays([day.year]) if national_holidays is None else national_holidays
    return day.weekday() < 5 and day not in calendar and not is_year_end_break(day)


def is_office_minute(minute_of_day: int) -> bool:
    """Whether a minute of the day (Japan time, 0–1439) falls in 08:30 ≤ t < 17:15."""
    return OFFICE_OPENS_MINUTE <= minute_of_day < OFFICE_CLOSES_MINUTE


def is_outside_office_hours(instant: datetime, national_holidays: holidays.HolidayBase | None = None) -> bool:
    """Whether an issue time (aware, any zone) is outside municipal office hours, judged in Japan time."""
    local = to_japan_time(instant)
    return not (is_office_day(local.date(), national_holidays) and OFFICE_OPENS <= local.time() < OFFICE_CLOSES)


def office_calendar(first: date, last: date) -> list[tuple[date, bool]]:
    """(day, is_office_day) for every day from first to last inclusive: a small table that a query joins
    instead of evaluating the holiday rules per row."""
    if last < first:
        return []
    national_holidays = japan_holidays(range(first.year, last.year + 1))
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [(d, is_office_day(d, national_holidays)) for d in days]


def is_other_municipality(municipality_code: str, kiosk_municipality_code: str) -> bool:
    return municipality_code != kiosk_municipality_code


def utc_instant(local: datetime) -> datetime:
    """A Japan wall-clock time (naive = Japan) as the UTC instant stored in the log."""
    aware = local.replace(tzinfo=JAPAN) if local.tzinfo is None else local
    return aware.astimezone(UTC)
