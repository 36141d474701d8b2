"""domain.japan_time: how a person's time is read and how an instant is shown."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.errors import BclError, InvalidInstantError
from domain.japan_time import JST, format_instant, japan_date, parse_instant, start_of_day, utc_instant

NOON_IN_JAPAN = dt.datetime(2026, 11, 12, 3, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", [
    "2026-11-12T12:00",  # no zone: Japan time
    "2026-11-12T12:00:00",
    "2026-11-12 12:00",
    "2026-11-12T12:00+09:00",  # with an offset: that instant
    "2026-11-12T03:00:00Z",
    "2026-11-12T04:00+01:00",
    " 2026-11-12T12:00 ",
])
def test_every_spelling_of_noon_in_japan_is_the_same_instant(text: str) -> None:
    instant = parse_instant(text, "--as-of")
    assert instant == NOON_IN_JAPAN and instant.tzinfo is dt.UTC  # stored in UTC


def test_a_date_alone_is_the_start_of_that_day_in_japan() -> None:
    assert parse_instant("2026-11-12") == dt.datetime(2026, 11, 11, 15, 0, tzinfo=dt.UTC)
    assert parse_instant("2026-11-12") == start_of_day(dt.date(2026, 11, 12))
    assert japan_date(parse_instant("2026-11-12")) == dt.date(2026, 11, 12)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-11-12T25:00", "12/11/2026",
                                  "2026-11-12T12:00 JST"])
def test_bad_input_names_the_value_and_what_it_is(text: str) -> None:
    with pytest.raises(InvalidInstantError, match="--at") as raised:
        parse_instant(text, "--at")
    assert isinstance(raised.value, BclError) and isinstance(raised.value, ValueError)


def test_instants_are_shown_in_japan_time() -> None:
    assert format_instant(NOON_IN_JAPAN) == "2026-11-12T12:00:00+09:00"
    assert format_instant(NOON_IN_JAPAN.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == "2026-11-12T12:00:00+09:00"
    assert format_instant(NOON_IN_JAPAN.replace(microsecond=250_000)) == "2026-11-12T12:00:00.250+09:00"
    # What is shown reads back as the same instant.
    assert parse_instant(format_instant(NOON_IN_JAPAN)) == NOON_IN_JAPAN
    with pytest.raises(ValueError, match="naive"):
        format_instant(dt.datetime(2026, 11, 12, 12, 0))


def test_wall_clock_times_are_japan_time() -> None:
    assert utc_instant(dt.datetime(2026, 11, 12, 12, 0)) == NOON_IN_JAPAN
    assert dt.datetime(2026, 11, 12, 12, 0, tzinfo=JST) == NOON_IN_JAPAN
    # Late evening UTC is already the next day in Japan.
    assert japan_date(dt.datetime(2026, 11, 12, 15, 0, tzinfo=dt.UTC)) == dt.date(2026, 11, 13)
