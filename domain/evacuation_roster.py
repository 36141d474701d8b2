"""The 避難行動要支援者名簿 (災害対策基本法 49条の10; docs/domain.md §6.5): who is listed, why, and when a listing asks
staff to seek the person's consent to share the list in normal times.

Pure rules on three inputs: the municipality's criteria (`RosterCriteria`, set by each municipality, the defaults
those of DOMAIN §6.5), the person's welfare status (`WelfareStatus`, from the welfare feed: care level, disability
certificates, designated intractable disease, living at home) and the register (birth date, the ages of the
household's current members). The day matters: a person turns 75 without any event, so every rule takes `on`.

A person is listed when they live at home and meet any criterion; a person the welfare systems do not know is
taken as living at home (the welfare systems record a facility stay only for the people they serve). A listing
gained, or a new reason to be listed, makes a consent task (`task_cause`): the cause names what changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.codes import is_valid_municipality_code, is_valid_resident_code
from domain.errors import InvalidArgumentError
from domain.municipalities import is_known_municipality
from domain.register_validation import Rejection, is_event_time_plausible, message_key


class CareLevel(StrEnum):
    """要介護認定 (介護保険法): the levels of need, lightest first."""

    SUPPORT_1 = "SUPPORT_1"
    SUPPORT_2 = "SUPPORT_2"
    CARE_1 = "CARE_1"
    CARE_2 = "CARE_2"
    CARE_3 = "CARE_3"
    CARE_4 = "CARE_4"
    CARE_5 = "CARE_5"

    @property
    def japanese(self) -> str:
        kind, number = self.value.split("_")
        return f"{'要支援' if kind == 'SUPPORT' else '要介護'}{number}"


class IntellectualGrade(StrEnum):
    """療育手帳: A (重度) or B (その他); the prefectures' sub-grades (A1, A2...) are folded into these two."""

    A = "A"
    B = "B"


PHYSICAL_GRADES = range(1, 7)  # 身体障害者手帳 1級 (heaviest) to 6級
MENTAL_GRADES = range(1, 4)  # 精神障害者保健福祉手帳 1級 to 3級
ELDERLY_AGE_RANGE = range(60, 100)


class Criterion(StrEnum):
    """The criteria a municipality may use; each listed person holds the ones they meet."""

    CARE = "CARE"  # 要介護 (the configured levels)
    PHYSICAL = "PHYSICAL"  # 身体障害者手帳 (up to the configured grade)
    INTELLECTUAL = "INTELLECTUAL"  # 療育手帳 (the configured grades)
    MENTAL = "MENTAL"  # 精神障害者保健福祉手帳 (up to the configured grade)
    INTRACTABLE_DISEASE = "INTRACTABLE_DISEASE"  # 指定難病
    ELDERLY_HOUSEHOLD = "ELDERLY_HOUSEHOLD"  # a household of people of the elderly age only (alone included)


def criterion(text: str) -> Criterion:
    try:
        return Criterion(text.upper())
    except ValueError:
        raise InvalidArgumentError("criterion", f"{text!r} is not one of {', '.join(c.value for c in Criterion)}") \
            from None


@dataclass(frozen=True)
class WelfareStatus:
    """What the welfare systems know of a person (the WelfareStatus contract, schemas/avro/welfare_status.avsc)."""

    care_level: CareLevel | None = None
    physical_grade: int | None = None
    intellectual_grade: IntellectualGrade | None = None
    mental_grade: int | None = None
    intractable_disease: bool = False
    living_at_home: bool = True


NO_WELFARE = WelfareStatus()


def welfare_status(record: Mapping[str, Any]) -> WelfareStatus:
    """A WelfareStatus event's status, checked (InvalidArgumentError naming the field that is out of range)."""
    physical, mental = record.get("physical_grade"), record.get("mental_grade")
    if physical is not None and physical not in PHYSICAL_GRADES:
        raise InvalidArgumentError("physical_grade", f"{physical} is not a 身体障害者手帳 grade (1–6)")
    if mental is not None and mental not in MENTAL_GRADES:
        raise InvalidArgumentError("mental_grade", f"{mental} is not a 精神障害者保健福祉手帳 grade (1–3)")
    care, intellectual = record.get("care_level"), record.get("intellectual_grade")
    return WelfareStatus(CareLevel(care) if care else None, physical,
                         IntellectualGrade(intellectual) if intellectual else None, mental,
                         bool(record.get("intractable_disease")), bool(record.get("living_at_home", True)))


@dataclass(frozen=True)
class RosterCriteria:
    """A municipality's criteria; the defaults are DOMAIN §6.5's: living at home and any of 要介護3–5, 身体1–2級,
    療育A, 精神1級, 指定難病, or a household of people aged 75 or more only (living alone included)."""

    care_levels: frozenset[CareLevel] = frozenset({CareLevel.CARE_3, CareLevel.CARE_4, CareLevel.CARE_5})
    physical_up_to: int | None = 2
    intellectual_grades: frozenset[IntellectualGrade] = frozenset({IntellectualGrade.A})
    mental_up_to: int | None = 1
    intractable_disease: bool = True
    elderly_age: int | None = 75

    def as_dict(self) -> dict[str, Any]:
        return {"care_levels": sorted(c.value for c in self.care_levels), "physical_up_to": self.physical_up_to,
                "intellectual_grades": sorted(g.value for g in self.intellectual_grades),
                "mental_up_to": self.mental_up_to, "intractable_disease": self.intractable_disease,
                "elderly_age": self.elderly_age}


DEFAULT_CRITERIA = RosterCriteria()


def roster_criteria(*, care_levels: Iterable[str] | None = None, physical_up_to: int | None = None,
                    intellectual_grades: Iterable[str] | None = None, mental_up_to: int | None = None,
                    intractable_disease: bool = True, elderly_age: int | None = None) -> RosterCriteria:
    """Criteria from their parts, each checked (InvalidArgumentError naming the part). An empty set of care levels
    or grades, or None for a grade or the age, leaves that criterion out."""
    levels = frozenset(_care_level(c) for c in (care_levels or ()))
    grades = frozenset(_intellectual_grade(g) for g in (intellectual_grades or ()))
    if physical_up_to is not None and physical_up_to not in PHYSICAL_GRADES:
        raise InvalidArgumentError("physical_up_to", f"{physical_up_to} is not a 身体障害者手帳 grade (1–6)")
    if mental_up_to is not None and mental_up_to not in MENTAL_GRADES:
        raise InvalidArgumentError("mental_up_to", f"{mental_up_to} is not a 精神障害者保健福祉手帳 grade (1–3)")
    if elderly_age is not None and elderly_age not in ELDERLY_AGE_RANGE:
        raise InvalidArgumentError("elderly_age", f"{elderly_age} is outside {ELDERLY_AGE_RANGE.start}–"
                                                  f"{ELDERLY_AGE_RANGE.stop - 1}")
    return RosterCriteria(levels, physical_up_to, grades, mental_up_to, intractable_disease, elderly_age)


def criteria_from_dict(values: Mapping[str, Any]) -> RosterCriteria:
    """The inverse of RosterCriteria.as_dict (the stored form)."""
    return roster_criteria(**values)


def _care_level(text: str) -> CareLevel:
    for level in CareLevel:
        if text in (level.value, level.japanese):
            return level
    raise InvalidArgumentError("care_levels", f"{text!r} is not a care level (要支援1–2, 要介護1–5 or "
                                              f"{', '.join(c.value for c in CareLevel)})")


def _intellectual_grade(text: str) -> IntellectualGrade:
    try:
        return IntellectualGrade(text.upper())
    except ValueError:
        raise InvalidArgumentError("intellectual_grades", f"{text!r} is not a 療育手帳 grade (A or B)") from None


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Age in whole years on `on` (年齢計算ニ関スル法律: one year older at the end of the day before the birthday; the
    list counts the birthday itself, as municipalities do)."""
    years = on.year - birth_date.year
    return years - 1 if (on.month, on.day) < (birth_date.month, birth_date.day) else years


@dataclass(frozen=True)
class Listing:
    """Why a person is listed on a day (no reasons: not listed), and what the household looked like then."""

    reasons: tuple[Criterion, ...]
    elderly: bool  # of the elderly age on that day
    household_size: int

    @property
    def listed(self) -> bool:
        return bool(self.reasons)


def listing(criteria: RosterCriteria, welfare: WelfareStatus, birth_date: dt.date,
            household_birth_dates: Sequence[dt.date], on: dt.date) -> Listing:
    """The reasons a person is listed on `on`. `household_birth_dates`: every current member of the person's
    household, the person included."""
    elderly = criteria.elderly_age is not None and age_on(birth_date, on) >= criteria.elderly_age
    size = len(household_birth_dates)
    if not welfare.living_at_home:
        return Listing((), elderly, size)
    met = []
    if welfare.care_level in criteria.care_levels:
        met.append(Criterion.CARE)
    if criteria.physical_up_to is not None and welfare.physical_grade is not None \
            and welfare.physical_grade <= criteria.physical_up_to:
        met.append(Criterion.PHYSICAL)
    if welfare.intellectual_grade in criteria.intellectual_grades:
        met.append(Criterion.INTELLECTUAL)
    if criteria.mental_up_to is not None and welfare.mental_grade is not None \
            and welfare.mental_grade <= criteria.mental_up_to:
        met.append(Criterion.MENTAL)
    if criteria.intractable_disease and welfare.intractable_disease:
        met.append(Criterion.INTRACTABLE_DISEASE)
    if elderly and criteria.elderly_age is not None \
            and all(age_on(b, on) >= criteria.elderly_age for b in household_birth_dates):
        met.append(Criterion.ELDERLY_HOUSEHOLD)
    return Listing(tuple(met), elderly, size)


def reason_text(reasons: Iterable[Criterion], welfare: WelfareStatus, household_size: int,
                criteria: RosterCriteria) -> str:
    """避難支援等を必要とする事由 as the list prints it, e.g. "要介護4・75歳以上の一人暮らし"."""
    words = []
    for reason in reasons:
        if reason is Criterion.CARE and welfare.care_level is not None:
            words.append(welfare.care_level.japanese)
        elif reason is Criterion.PHYSICAL:
            words.append(f"身体障害者手帳{welfare.physical_grade}級")
        elif reason is Criterion.INTELLECTUAL and welfare.intellectual_grade is not None:
            words.append(f"療育手帳{welfare.intellectual_grade.value}")
        elif reason is Criterion.MENTAL:
            words.append(f"精神障害者保健福祉手帳{welfare.mental_grade}級")
        elif reason is Criterion.INTRACTABLE_DISEASE:
            words.append("指定難病")
        elif reason is Criterion.ELDERLY_HOUSEHOLD:
            words.append(f"{criteria.elderly_age}歳以上の一人暮らし" if household_size == 1
                         else f"{criteria.elderly_age}歳以上のみの世帯")
    return "・".join(words)


class TaskCause(StrEnum):
    """Why staff are asked to seek a person's consent."""

    NEW_CONDITION = "NEW_CONDITION"  # a care level, certificate or disease that meets a criterion
    TURNED_ELDERLY = "TURNED_ELDERLY"  # turned 75 (the configured age) in a household of the elderly only
    ONE_PERSON_HOUSEHOLD = "ONE_PERSON_HOUSEHOLD"  # became a one-person household, of the elderly age
    ELDERLY_HOUSEHOLD = "ELDERLY_HOUSEHOLD"  # the household is now of the elderly only (a younger member left)


def task_cause(before: Listing | None, after: Listing) -> TaskCause | None:
    """The consent task a change of listing makes, if any: a reason gained (a first listing included) makes one;
    a reason lost, or none gained, makes none. `before` is None for a person not evaluated before."""
    gained = set(after.reasons) - set(before.reasons if before else ())
    if not gained:
        return None
    if gained - {Criterion.ELDERLY_HOUSEHOLD}:
        return TaskCause.NEW_CONDITION
    if before is not None and not before.elderly:
        return TaskCause.TURNED_ELDERLY
    if after.household_size == 1 and (before is None or before.household_size != 1):
        return TaskCause.ONE_PERSON_HOUSEHOLD
    return TaskCause.ELDERLY_HOUSEHOLD


class ConsentDecision(StrEnum):
    """平常時からの名簿情報の外部提供への同意 (49条の11 2項)."""

    GIVEN = "GIVEN"
    REFUSED = "REFUSED"
    WITHDRAWN = "WITHDRAWN"

    @property
    def japanese(self) -> str:
        return {"GIVEN": "同意", "REFUSED": "不同意", "WITHDRAWN": "撤回"}[self.value]


CONSENT_UNASKED = "未確認"  # no decision recorded yet


def consent_label(decision: ConsentDecision | None) -> str:
    """How the list prints a consent decision (未確認 while none is recorded)."""
    return CONSENT_UNASKED if decision is None else decision.japanese


def consent_decision(text: str) -> ConsentDecision:
    try:
        return ConsentDecision(text.upper())
    except ValueError:
        raise InvalidArgumentError("decision", f"{text!r} is not one of "
                                               f"{', '.join(d.value.lower() for d in ConsentDecision)}") from None


def welfare_rejection(event: Mapping[str, Any], key: bytes | None, now: dt.datetime) -> Rejection | None:
    """Why a decoded WelfareStatus event cannot be applied (its dead-letter reason), or None. Never mentions the
    status itself (要配慮個人情報)."""
    code, resident = event["municipality_code"], event["resident_code"]
    if not is_valid_municipality_code(code):
        return Rejection("BAD_MUNICIPALITY_CODE", f"municipality code {code!r} fails its check digit or form")
    if not is_known_municipality(code):
        return Rejection("UNKNOWN_MUNICIPALITY", f"municipality code {code!r} is not in the list of municipalities")
    if not is_valid_resident_code(resident):
        return Rejection("BAD_RESIDENT_CODE", "resident code is not 11 digits")
    if key != message_key(code, resident):
        return Rejection("KEY_MISMATCH", "message key is not <municipality>:<resident code> of the event")
    if not is_event_time_plausible(event["event_time"], now):
        return Rejection("BAD_EVENT_TIME", "event time is before the register's start or more than a year ahead")
    try:
        welfare_status(event)
    except InvalidArgumentError as exc:
        return Rejection("BAD_WELFARE_STATUS", f"{exc.argument} is out of range")
    return None
