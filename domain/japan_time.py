"""Japan time: the one statement of the zone, how a person's time is read, and how an instant is shown.

Times are stored as UTC instants; people enter and read them in Japan time (JST, UTC+9; Japan keeps no
daylight saving time, but the tz database name is used so that the zone is stated once, by its name).

- `parse_instant`: ISO 8601 from a person (CLI options, settings). A value with an offset is that
  instant; a value without one is Japan wall-clock time; a date alone is the start of that day in Japan.
- `format_instant`: an instant as a person reads it: ISO 8601 in Japan time, e.g. 2026-11-12T12:00:00+09:00.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from domain.errors import InvalidInstantError

JST = ZoneInfo("Asia/Tokyo")


def to_japan_time(instant: dt.datetime) -> dt.datetime:
    """An aware instant (stored UTC) as Japan wall-clock time."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no instant; give it a time zone (stored times are UTC)")
    return instant.astimezone(JST)


def japan_date(instant: dt.datetime) -> dt.date:
    """The Japan-time calendar day of an aware instant (the day printed on certificates, billed, counted)."""
    return to_japan_time(instant).date()


def start_of_day(day: dt.date) -> dt.datetime:
    """00:00 Japan time of `day`, as an aware UTC instant."""
    return dt.datetime.combine(day, dt.time(0), JST).astimezone(dt.UTC)


def utc_instant(local: dt.datetime) -> dt.datetime:
    """A Japan wall-clock time (naive = Japan) or any aware time as the UTC instant that is stored."""
    aware = local.replace(tzinfo=JST) if local.tzinfo is None else local
    return aware.astimezone(dt.UTC)


def parse_instant(text: str, what: str = "time") -> dt.datetime:
    """An ISO 8601 instant a person wrote, as an aware UTC datetime.

    `2026-11-12T12:00:00+09:00` and `2026-11-12T03:00Z` are those instants; `2026-11-12T12:00` (no zone)
    is Japan time; `2026-11-12` is 00:00 Japan time of that day. `what` names the value in the error
    (e.g. "--as-of")."""
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not value:
        raise InvalidInstantError(f"{what}: expected an ISO 8601 time such as 2026-11-12T12:00+09:00, got {text!r}")
    try:
        if len(value) == 10:  # YYYY-MM-DD: a day, which starts at midnight Japan time
            return start_of_day(dt.date.fromisoformat(value))
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInstantError(f"{what}: {text!r} is not an ISO 8601 time or date, e.g. 2026-11-12T12:00+09:00 "
                                  "(without an offset it is Japan time)") from None
    return utc_instant(instant)


def format_instant(instant: dt.datetime) -> str:
    """An instant as shown to a person: ISO 8601 in Japan time, to the second unless it has a fraction."""
    local = to_japan_time(instant)
    return local.isoformat(timespec="seconds" if local.microsecond == 0 else "milliseconds")
