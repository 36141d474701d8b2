"""The synthetic welfare data of a register (care levels, disability certificates, designated intractable diseases,
living at home): what a municipality's welfare systems would send as WelfareStatus events
(schemas/avro/welfare_status.avsc), deterministic from the seed like the register itself.

The prevalences rise with age as Japan's do. They are round approximations of national figures (recorded in
domain/data/SOURCES.md, "Welfare prevalences"), applied to each person independently, not a model of any real
municipality:
- care certification (要介護・要支援認定) rate by age band and the split by level: 厚生労働省「介護保険事業状況報告」
  (年報, 令和3年度 and later, 認定者数 by age band over 第1号被保険者 by age band; 40–64: 第2号);
- facility stays by level: the same report's 施設サービス受給者 over 認定者 (about a third of 要介護3–5);
- 身体障害者手帳, 療育手帳, 精神障害者保健福祉手帳 holders by age and their grades: 厚生労働省
  「生活のしづらさなどに関する調査」(平成28年) as summarised in 内閣府「障害者白書」, and 衛生行政報告例 for
  the mental-health certificate grades;
- 指定難病 (特定医療費受給者証所持者数 by age band): 厚生労働省「衛生行政報告例」(令和3年度).

Changes: welfare changes happen on office days (a certification, a new certificate, a heavier level, a move into a
facility), WELFARE_CHANGES_PER_1000 per 1,000 residents a year, drawn among the current residents with a weight
that rises with age."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from domain.japan_time import start_of_day
from domain.office_hours import is_office_day
from streams.register.office_calendar import OFFICE_DAY_MS, OFFICE_OPENS_MS

Status = dict[str, Any]  # the status fields of a WelfareStatus event

DAYS_PER_YEAR = 365.2425
# Tables are (lowest age of the band, value), ascending: the value of the last band whose lowest age is reached.
# Share of each age band certified 要支援 or 要介護 (介護保険事業状況報告, rounded).
CARE_RATE = ((0, 0.0), (40, 0.004), (65, 0.03), (70, 0.06), (75, 0.12), (80, 0.26), (85, 0.48), (90, 0.73))
# The levels among the certified, lightest first (SUPPORT_1 … CARE_5): 14, 14, 21, 17, 13, 12, 9 %.
CARE_LEVELS = ("SUPPORT_1", "SUPPORT_2", "CARE_1", "CARE_2", "CARE_3", "CARE_4", "CARE_5")
CARE_LEVEL_WEIGHTS = (0.14, 0.14, 0.21, 0.17, 0.13, 0.12, 0.09)
# Share living in a facility (特養, 老健, 介護医療院), by level: a third of 要介護3–5, a few of 要介護1–2.
FACILITY_SHARE = {"CARE_1": 0.05, "CARE_2": 0.05, "CARE_3": 0.3, "CARE_4": 0.35, "CARE_5": 0.4}
# 身体障害者手帳 holders by age (生活のしづらさなどに関する調査 H28: 4.3 million at home, 73 % of them 65+).
PHYSICAL_RATE = ((0, 0.004), (18, 0.015), (65, 0.06), (75, 0.11))
PHYSICAL_GRADE_WEIGHTS = (0.26, 0.15, 0.18, 0.27, 0.07, 0.07)  # 1級 … 6級
# 療育手帳 holders (about 0.96 million, most of them young), A (重度) 40 %.
INTELLECTUAL_RATE = ((0, 0.012), (18, 0.008), (65, 0.004))
INTELLECTUAL_A_SHARE = 0.4
# 精神障害者保健福祉手帳 holders (about 1.1 million, most aged 18–64); grades 1: 11 %, 2: 59 %, 3: 30 %.
MENTAL_RATE = ((0, 0.002), (18, 0.012), (65, 0.006))
MENTAL_GRADE_WEIGHTS = (0.11, 0.59, 0.30)
# 特定医療費(指定難病)受給者証 holders (about 1.05 million), rising with age.
INTRACTABLE_RATE = ((0, 0.001), (20, 0.004), (40, 0.009), (65, 0.014), (75, 0.016))
# Welfare changes per 1,000 residents per year (new certifications, changed levels, new certificates), on office
# days; which kind of change: care 70 %, physical 15 %, intellectual 5 %, mental 5 %, intractable disease 5 %.
WELFARE_CHANGES_PER_1000 = 30.0
WORKING_DAYS_PER_YEAR = 243.0
CHANGE_KINDS = ("care", "physical", "intellectual", "mental", "intractable")
CHANGE_KIND_WEIGHTS = (0.70, 0.15, 0.05, 0.05, 0.05)
# A heavier care level at 要介護3 or more moves the person into a facility this often.
INTO_FACILITY_SHARE = 0.1
EVENT_NAMESPACE = uuid.UUID("0c6f51a4-3d7e-4f0e-9a55-5d6a8c1e2b90")


def _by_age(table: Sequence[tuple[int, float]], age: float) -> float:
    value = table[0][1]
    for lowest, rate in table:
        if age >= lowest:
            value = rate
    return value


def _age(birth_date: date, on: date) -> float:
    return (on.toordinal() - birth_date.toordinal()) / DAYS_PER_YEAR


def _empty() -> Status:
    return {"care_level": None, "physical_grade": None, "intellectual_grade": None, "mental_grade": None,
            "intractable_disease": False, "living_at_home": True}


def _has_any(status: Status) -> bool:
    return status != _empty()


def initial_statuses(records: Sequence[Mapping[str, Any]], seed: int, municipality_code: str,
                     as_of: date) -> dict[str, Status]:
    """The welfare status of every person of the initial register who has one, by resident code (the others have
    none: not certified, no certificate, at home)."""
    rng = np.random.default_rng([seed, int(municipality_code), 3])
    n = len(records)
    u = rng.random((n, 10)).tolist()
    statuses: dict[str, Status] = {}
    for k, record in enumerate(records):
        if record["status"] != "CURRENT":
            continue
        age = _age(record["birth_date"], as_of)
        draw = u[k]
        status = _empty()
        if draw[0] < _by_age(CARE_RATE, age):
            level = CARE_LEVELS[_index(CARE_LEVEL_WEIGHTS, draw[1])]
            status["care_level"] = level
            status["living_at_home"] = draw[2] >= FACILITY_SHARE.get(level, 0.0)
        if draw[3] < _by_age(PHYSICAL_RATE, age):
            status["physical_grade"] = 1 + _index(PHYSICAL_GRADE_WEIGHTS, draw[4])
        if draw[5] < _by_age(INTELLECTUAL_RATE, age):
            status["intellectual_grade"] = "A" if draw[9] < INTELLECTUAL_A_SHARE else "B"
        if draw[6] < _by_age(MENTAL_RATE, age):
            status["mental_grade"] = 1 + _index(MENTAL_GRADE_WEIGHTS, draw[7])
        status["intractable_disease"] = draw[8] < _by_age(INTRACTABLE_RATE, age)
        if _has_any(status):
            statuses[record["resident_code"]] = status
    return statuses


def _index(weights: Sequence[float], u: float) -> int:
    """The index drawn by the uniform `u` among `weights` (which need not sum to 1)."""
    total = sum(weights)
    running = 0.0
    for k, weight in enumerate(weights):
        running += weight / total
        if u < running:
            return k
    return len(weights) - 1


def _changed(status: Status, kind: str, rng: np.random.Generator) -> Status:
    """The status after one change of `kind`: a first certificate or certification, else one step heavier."""
    new = dict(status)
    if kind == "care":
        level = status["care_level"]
        if level is None:
            new["care_level"] = CARE_LEVELS[_index(CARE_LEVEL_WEIGHTS[:4], float(rng.random()))]
        elif level != CARE_LEVELS[-1]:
            new["care_level"] = CARE_LEVELS[CARE_LEVELS.index(level) + 1]
        if CARE_LEVELS.index(new["care_level"]) >= 4 and rng.random() < INTO_FACILITY_SHARE:
            new["living_at_home"] = False
    elif kind == "physical":
        grade = status["physical_grade"]
        new["physical_grade"] = 1 + _index(PHYSICAL_GRADE_WEIGHTS, float(rng.random())) if grade is None \
            else max(1, grade - 1)
    elif kind == "intellectual":
        new["intellectual_grade"] = "A" if status["intellectual_grade"] == "B" or rng.random() < 0.4 else "B"
    elif kind == "mental":
        grade = status["mental_grade"]
        new["mental_grade"] = 2 if grade is None else max(1, grade - 1)
    else:
        new["intractable_disease"] = True
    return new


def day_changes(statuses: dict[str, Status], records: Mapping[str, Mapping[str, Any]], current: Sequence[str],
                seed: int, municipality_code: str, number: int, on: date) -> list[tuple[datetime, str, Status]]:
    """The welfare changes of simulated day `number` (date `on`) among the `current` residents, in time order:
    (event time, resident code, the new status). Updates `statuses`."""
    if not is_office_day(on) or not current:
        return []
    rng = np.random.default_rng([seed, int(municipality_code), 4, number])
    count = int(rng.poisson(WELFARE_CHANGES_PER_1000 * len(current) / 1000 / WORKING_DAYS_PER_YEAR))
    midnight = start_of_day(on)
    changes: list[tuple[datetime, str, Status]] = []
    for _ in range(count):
        code = None
        for _try in range(200):  # the weight rises with age: the certification rate, at least 2 %
            candidate = current[int(rng.random() * len(current))]
            weight = max(0.02, _by_age(CARE_RATE, _age(records[candidate]["birth_date"], on)))
            if rng.random() < weight:
                code = candidate
                break
        if code is None:
            continue
        kind = CHANGE_KINDS[_index(CHANGE_KIND_WEIGHTS, float(rng.random()))]
        before = statuses.get(code, _empty())
        after = _changed(before, kind, rng)
        if after == before:
            continue
        statuses[code] = after
        at = midnight + timedelta(milliseconds=OFFICE_OPENS_MS + int(rng.random() * OFFICE_DAY_MS))
        changes.append((at, code, after))
    changes.sort(key=lambda c: c[0])
    return changes


def welfare_event(seed: int, municipality_code: str, resident_code: str, at: datetime, status: Status,
                  ordinal: str) -> dict[str, Any]:
    """A WelfareStatus event (the fields of the contract); `ordinal` makes its id (the same on every run)."""
    return {"event_id": str(uuid.uuid5(EVENT_NAMESPACE, f"{seed}/{municipality_code}/{ordinal}")),
            "municipality_code": municipality_code, "resident_code": resident_code, "event_time": at, **status}


def replay(initial: dict[str, Status], days: Iterator[tuple[int, date, Mapping[str, Mapping[str, Any]],
                                                             Sequence[str]]],
           seed: int, municipality_code: str, from_day: int) -> Iterator[dict[str, Any]]:
    """The welfare events of the days (day number, date, the register's records and current residents at its
    end), those of days from `from_day` on; the earlier days only bring the statuses up to date."""
    statuses = {code: dict(status) for code, status in initial.items()}
    for number, on, records, current in days:
        for k, (at, code, status) in enumerate(day_changes(statuses, records, current, seed, municipality_code,
                                                           number, on)):
            if number >= from_day:
                yield welfare_event(seed, municipality_code, code, at, status, f"{number}/{k}")
