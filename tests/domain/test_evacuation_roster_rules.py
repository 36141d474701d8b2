"""The rules of the 避難行動要支援者名簿 (domain.evacuation_roster): who is listed under DOMAIN §6.5's default
criteria and a municipality's own, the day someone turns 75, the cause of a consent task, and the refusals of bad
criteria and welfare statuses (each naming its argument)."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.errors import InvalidArgumentError
from domain.evacuation_roster import (
    DEFAULT_CRITERIA,
    NO_WELFARE,
    CareLevel,
    Criterion,
    IntellectualGrade,
    Listing,
    TaskCause,
    WelfareStatus,
    age_on,
    criterion,
    listing,
    reason_text,
    roster_criteria,
    task_cause,
    welfare_rejection,
    welfare_status,
)

DAY = dt.date(2026, 12, 2)
YOUNG = dt.date(1980, 5, 17)
OLD = dt.date(1946, 1, 1)


def _listed(welfare: WelfareStatus, birth: dt.date = YOUNG, household: tuple[dt.date, ...] = (YOUNG, YOUNG),
            criteria=DEFAULT_CRITERIA) -> tuple[Criterion, ...]:  # type: ignore[no-untyped-def]
    return listing(criteria, welfare, birth, household, DAY).reasons


def test_the_default_criteria() -> None:
    assert _listed(WelfareStatus(care_level=CareLevel.CARE_3)) == (Criterion.CARE,)
    assert _listed(WelfareStatus(care_level=CareLevel.CARE_2)) == ()
    assert _listed(WelfareStatus(physical_grade=2)) == (Criterion.PHYSICAL,)
    assert _listed(WelfareStatus(physical_grade=3)) == ()
    assert _listed(WelfareStatus(intellectual_grade=IntellectualGrade.A)) == (Criterion.INTELLECTUAL,)
    assert _listed(WelfareStatus(intellectual_grade=IntellectualGrade.B)) == ()
    assert _listed(WelfareStatus(mental_grade=1)) == (Criterion.MENTAL,)
    assert _listed(WelfareStatus(mental_grade=2)) == ()
    assert _listed(WelfareStatus(intractable_disease=True)) == (Criterion.INTRACTABLE_DISEASE,)
    # Not at home: not listed, whatever else.
    assert _listed(WelfareStatus(care_level=CareLevel.CARE_5, living_at_home=False)) == ()


def test_households_of_the_elderly_only() -> None:
    assert _listed(NO_WELFARE, OLD, (OLD,)) == (Criterion.ELDERLY_HOUSEHOLD,)
    assert _listed(NO_WELFARE, OLD, (OLD, dt.date(1950, 1, 1))) == (Criterion.ELDERLY_HOUSEHOLD,)
    assert _listed(NO_WELFARE, OLD, (OLD, YOUNG)) == ()  # a younger member lives with them
    turning = dt.date(DAY.year - 75, DAY.month, DAY.day)
    assert age_on(turning, DAY) == 75 and age_on(turning, DAY - dt.timedelta(days=1)) == 74
    assert listing(DEFAULT_CRITERIA, NO_WELFARE, turning, (turning,), DAY - dt.timedelta(days=1)).reasons == ()
    assert listing(DEFAULT_CRITERIA, NO_WELFARE, turning, (turning,), DAY).reasons == (Criterion.ELDERLY_HOUSEHOLD,)


def test_a_municipality_of_its_own_criteria() -> None:
    own = roster_criteria(care_levels=["要介護2", "CARE_3"], physical_up_to=None, intellectual_grades=["A", "B"],
                          mental_up_to=2, intractable_disease=False, elderly_age=80)
    assert _listed(WelfareStatus(care_level=CareLevel.CARE_2), criteria=own) == (Criterion.CARE,)
    assert _listed(WelfareStatus(care_level=CareLevel.CARE_5), criteria=own) == ()
    assert _listed(WelfareStatus(physical_grade=1), criteria=own) == ()
    assert _listed(WelfareStatus(intellectual_grade=IntellectualGrade.B), criteria=own) == (Criterion.INTELLECTUAL,)
    assert _listed(WelfareStatus(intractable_disease=True), criteria=own) == ()
    assert _listed(NO_WELFARE, dt.date(1950, 1, 1), (dt.date(1950, 1, 1),), criteria=own) == ()  # 76 < 80
    assert roster_criteria(**own.as_dict()) == own


def test_reasons_as_the_list_prints_them() -> None:
    welfare = WelfareStatus(care_level=CareLevel.CARE_4, physical_grade=1)
    reasons = listing(DEFAULT_CRITERIA, welfare, OLD, (OLD,), DAY).reasons
    assert reason_text(reasons, welfare, 1, DEFAULT_CRITERIA) == "要介護4・身体障害者手帳1級・75歳以上の一人暮らし"
    assert reason_text((Criterion.ELDERLY_HOUSEHOLD,), NO_WELFARE, 2, DEFAULT_CRITERIA) == "75歳以上のみの世帯"


def test_the_cause_of_a_consent_task() -> None:
    none = Listing((), False, 2)
    assert task_cause(None, Listing((Criterion.CARE,), False, 2)) is TaskCause.NEW_CONDITION
    assert task_cause(none, Listing((Criterion.PHYSICAL,), False, 2)) is TaskCause.NEW_CONDITION
    assert task_cause(Listing((), False, 1), Listing((Criterion.ELDERLY_HOUSEHOLD,), True, 1)) \
        is TaskCause.TURNED_ELDERLY
    assert task_cause(Listing((), True, 2), Listing((Criterion.ELDERLY_HOUSEHOLD,), True, 1)) \
        is TaskCause.ONE_PERSON_HOUSEHOLD
    assert task_cause(Listing((), True, 3), Listing((Criterion.ELDERLY_HOUSEHOLD,), True, 2)) \
        is TaskCause.ELDERLY_HOUSEHOLD
    # Nothing gained (the same, or a reason lost): no task.
    assert task_cause(Listing((Criterion.CARE,), False, 2), Listing((Criterion.CARE,), False, 2)) is None
    assert task_cause(Listing((Criterion.CARE, Criterion.MENTAL), False, 2), Listing((Criterion.CARE,), False, 2)) \
        is None


@pytest.mark.parametrize(("parts", "argument"), [
    ({"care_levels": ["要介護9"]}, "care_levels"),
    ({"physical_up_to": 7}, "physical_up_to"),
    ({"intellectual_grades": ["C"]}, "intellectual_grades"),
    ({"mental_up_to": 0}, "mental_up_to"),
    ({"elderly_age": 120}, "elderly_age"),
])
def test_bad_criteria_are_refused_naming_the_argument(parts: dict[str, object], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        roster_criteria(**parts)  # type: ignore[arg-type]
    assert refused.value.argument == argument


def test_bad_welfare_statuses_and_criterion_names_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="physical_grade"):
        welfare_status({"physical_grade": 0})
    with pytest.raises(InvalidArgumentError, match="mental_grade"):
        welfare_status({"mental_grade": 4})
    with pytest.raises(InvalidArgumentError, match="criterion"):
        criterion("wealthy")
    assert criterion("elderly_household") is Criterion.ELDERLY_HOUSEHOLD


@pytest.mark.parametrize(("changes", "key", "code"), [
    ({"municipality_code": "999999"}, b"999999:00000000001", "BAD_MUNICIPALITY_CODE"),
    ({"municipality_code": "999997"}, b"999997:00000000001", "UNKNOWN_MUNICIPALITY"),
    ({"resident_code": "123"}, b"302066:123", "BAD_RESIDENT_CODE"),
    ({}, b"302066:00000000002", "KEY_MISMATCH"),
    ({}, None, "KEY_MISMATCH"),
    ({"event_time": dt.datetime(1900, 1, 1, tzinfo=dt.UTC)}, b"302066:00000000001", "BAD_EVENT_TIME"),
    ({"physical_grade": 7}, b"302066:00000000001", "BAD_WELFARE_STATUS"),
    ({}, b"302066:00000000001", None),
])
def test_welfare_events_that_cannot_be_applied(changes: dict[str, object], key: bytes | None,
                                               code: str | None) -> None:
    event = {"municipality_code": "302066", "resident_code": "00000000001",
             "event_time": dt.datetime(2026, 12, 1, tzinfo=dt.UTC), "care_level": "CARE_3", **changes}
    rejection = welfare_rejection(event, key, dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    assert (rejection.code if rejection else None) == code
    assert rejection is None or "CARE" not in rejection.reason  # the status itself is never in a reason
