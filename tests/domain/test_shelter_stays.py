"""A person's stays are a pure function of their events in event-time order (domain.shelter_stays), whatever
order the events arrive in; the registration QR (domain.shelter_pass) and the open-data rows (domain.shelters)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from domain.register_csv import RowError
from domain.shelter_pass import ShelterPass, pass_text, read_pass
from domain.shelter_stays import (
    Ending,
    OpeningPeriod,
    Outcome,
    StayAction,
    StayError,
    StayEvent,
    kana_key,
    shelter_open_at,
    stays,
)
from domain.shelters import Period, ShelterError, ShelterKind, capacity, period_of, shelter_record

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
IN, OUT = StayAction.CHECK_IN, StayAction.CHECK_OUT


def _event(n: int, action: StayAction, shelter: str, minutes: int, terminal: str = "T1") -> StayEvent:
    return StayEvent(f"e{n}", action, shelter, T0 + dt.timedelta(minutes=minutes), terminal, n)


def test_the_same_stays_in_any_arrival_order() -> None:
    events = [_event(1, IN, "A", 0), _event(2, OUT, "A", 30), _event(3, IN, "B", 60, "T2"), _event(4, IN, "C", 90)]
    results = [stays(order, {}) for order in itertools.permutations(events)]
    result = results[0]
    assert all(r == result for r in results)
    assert [(s.shelter_id, s.ended_by) for s in result.stays] == [("A", Ending.CHECK_OUT), ("B", Ending.MOVED),
                                                                   ("C", None)]
    assert result.current is not None and result.current.shelter_id == "C"
    assert set(result.outcomes.values()) == {Outcome.APPLIED}


def test_a_check_out_before_its_check_in_is_unmatched_until_the_check_in_arrives() -> None:
    out = _event(2, OUT, "A", 30)
    alone = stays([out], {})
    assert alone.outcomes == {"e2": Outcome.UNMATCHED} and alone.stays == ()
    both = stays([out, _event(1, IN, "A", 0)], {})
    assert both.outcomes == {"e1": Outcome.APPLIED, "e2": Outcome.APPLIED} and both.current is None
    assert both.stays[0].checked_out_at == T0 + dt.timedelta(minutes=30)


def test_a_second_check_in_where_the_person_is_changes_nothing() -> None:
    result = stays([_event(1, IN, "A", 0), _event(2, IN, "A", 10)], {})
    assert result.outcomes["e2"] is Outcome.REPEATED
    assert len(result.stays) == 1 and result.stays[0].checked_in_at == T0


def test_a_check_out_at_another_shelter_is_unmatched() -> None:
    result = stays([_event(1, IN, "A", 0), _event(2, OUT, "B", 10)], {})
    assert result.outcomes["e2"] is Outcome.UNMATCHED and result.current is not None


def test_closing_a_shelter_ends_the_stays_there_even_a_late_check_in() -> None:
    closed = T0 + dt.timedelta(hours=2)
    result = stays([_event(1, IN, "A", 0)], {"A": [OpeningPeriod(T0, closed)]})
    assert result.current is None and result.stays[0] == result.stays[0].__class__("A", T0, closed,
                                                                                   Ending.SHELTER_CLOSED)
    # After the closing the person checks in elsewhere: the closed stay stays closed at its closing time.
    moved = stays([_event(1, IN, "A", 0), _event(2, IN, "B", 180)], {"A": [OpeningPeriod(T0, closed)]})
    assert [(s.shelter_id, s.checked_out_at, s.ended_by) for s in moved.stays] == [
        ("A", closed, Ending.SHELTER_CLOSED), ("B", None, None)]


def test_a_shelter_opened_again_ends_only_the_stays_of_its_closed_period() -> None:
    closed, reopened = T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=5)
    periods = {"A": [OpeningPeriod(T0, closed), OpeningPeriod(reopened, None)]}
    assert shelter_open_at(periods["A"], T0 + dt.timedelta(hours=1))
    assert not shelter_open_at(periods["A"], closed) and not shelter_open_at(periods["A"], T0 + dt.timedelta(hours=4))
    assert shelter_open_at(periods["A"], reopened)
    # In before the closing, in again after the reopening (arriving in any order): two stays, the second open.
    events = [_event(1, IN, "A", 0), _event(2, IN, "A", 6 * 60)]
    for order in (events, events[::-1]):
        result = stays(order, periods)
        assert [(s.checked_in_at, s.checked_out_at, s.ended_by) for s in result.stays] == [
            (T0, closed, Ending.SHELTER_CLOSED), (T0 + dt.timedelta(hours=6), None, None)]
        assert result.outcomes == {"e1": Outcome.APPLIED, "e2": Outcome.APPLIED}
    # When the second period closes too, its stay ends at that closing, the first one's at its own.
    second_close = T0 + dt.timedelta(hours=8)
    both = stays(events, {"A": [OpeningPeriod(T0, closed), OpeningPeriod(reopened, second_close)]})
    assert [s.checked_out_at for s in both.stays] == [closed, second_close]


def test_kana_as_staff_type_it() -> None:
    assert kana_key("おながわ　はなこ") == kana_key("オナガワハナコ") == kana_key("ｵﾅｶﾞﾜ ﾊﾅｺ")
    assert kana_key("オナガワ ハナコ") != kana_key("オナガワ ハルコ")


def test_the_registration_qr_is_signed() -> None:
    key, other = b"k" * 32, b"o" * 32
    text = pass_text(ShelterPass("D1", "045811", "R0001"), key)
    assert read_pass(text, key) == ShelterPass("D1", "045811", "R0001")
    with pytest.raises(StayError, match="not issued by this system"):
        read_pass(text, other)
    _, tag = text.removeprefix("BCL-SHELTER-1.").split(".")
    forged = pass_text(ShelterPass("D1", "045811", "R0002"), other).split(".")[1]
    with pytest.raises(StayError, match="not issued by this system"):
        read_pass(f"BCL-SHELTER-1.{forged}.{tag}", key)
    with pytest.raises(StayError, match="not a shelter registration"):
        read_pass("hello", key)


ROW = {"municipality_code": "045811", "shelter_id": "E1", "name": "女川小学校", "address": "宮城県女川町",
       "lat": "38.44", "lon": "141.44", "kind": "designated_shelter", "capacity": "",
       **{f"hazard_{h}": "" for h in ("flood", "landslide", "storm_surge", "earthquake", "tsunami", "fire",
                                      "inland_flood", "volcano")}}


def test_an_open_data_row_and_its_bad_columns() -> None:
    shelter = shelter_record(ROW | {"hazard_tsunami": "1", "capacity": "120"})
    assert shelter.kind is ShelterKind.DESIGNATED_SHELTER and shelter.hazards == {"tsunami"}
    assert shelter.published_capacity == 120
    for column, value, reason in [("municipality_code", "045812", "全国地方公共団体コード"),
                                  ("lat", "x", "not a number"),
                                  ("lon", "38.4", "outside Japan"), ("kind", "both", "not one of"),
                                  ("hazard_flood", "yes", "not 1, 0 or empty"), ("capacity", "-3", "whole number"),
                                  ("name", " ", "empty")]:
        with pytest.raises(RowError, match=reason) as caught:
            shelter_record(ROW | {column: value})
        assert caught.value.column == column


def test_capacity_and_the_period_of_an_instant() -> None:
    assert capacity("300", "200").night == 200
    with pytest.raises(ShelterError, match="night capacity"):
        capacity("300", "0")
    assert period_of(dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)) is Period.DAY  # 12:00 JST
    assert period_of(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)) is Period.NIGHT  # 18:00 JST
    assert period_of(dt.datetime(2026, 11, 30, 21, 0, tzinfo=dt.UTC)) is Period.DAY  # 06:00 JST
