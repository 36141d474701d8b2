"""The roster store (sinks.evacuation_roster) on a real disaster-store file, as the processor calls it: a batch given
again (a redelivery) changes nothing — no new task, no new history line —; the latest welfare status wins whatever
the arrival order; a welfare status that arrives before the person's register record is used when it does; a
municipality's own criteria, once set, evaluate its people again and survive a reopening of the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from domain.evacuation_roster import Criterion, roster_criteria
from sinks.evacuation_roster import EvacuationRoster
from tests.factories import make_resident
from tests.platforms import make_platform

TANABE = "302066"
DAY = dt.date(2026, 12, 2)


def _roster(tmp_path: Path) -> EvacuationRoster:
    return make_platform(tmp_path).evacuation_roster


def _welfare(n: int, at: dt.datetime, **status: Any) -> dict[str, Any]:
    return {"municipality_code": TANABE, "resident_code": f"{n:011d}", "event_time": at, "living_at_home": True,
            **status}


def _listed(roster: EvacuationRoster) -> dict[str, tuple[Criterion, ...]]:
    return {p.resident_code: p.reasons for p in roster.listed(TANABE, actor="test")}


def _counts(roster: EvacuationRoster) -> tuple[int, int]:
    con = roster.store.connection
    return (con.execute("SELECT count(*) FROM roster_tasks").fetchone()[0],
            con.execute("SELECT count(*) FROM roster_history").fetchone()[0])


def test_a_batch_given_again_changes_nothing(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    people = [make_resident(TANABE, n, household_number=f"H{n}", birth_date=dt.date(1945, 1, n)) for n in (1, 2)]
    welfare = [_welfare(3, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), physical_grade=1)]
    assert roster.apply(people, welfare, DAY) == 2
    before = _counts(roster)
    assert roster.apply(people, welfare, DAY) == 0
    assert _counts(roster) == before == (2, 2)
    assert _listed(roster) == {f"{1:011d}": (Criterion.ELDERLY_HOUSEHOLD,), f"{2:011d}": (Criterion.ELDERLY_HOUSEHOLD,)}
    # The welfare status of resident 3 arrived before their register record: used when it arrives.
    assert roster.apply([make_resident(TANABE, 3, household_number="H3")], [], DAY) == 1
    assert _listed(roster)[f"{3:011d}"] == (Criterion.PHYSICAL,)


def test_the_latest_welfare_status_wins_whatever_the_order(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    person = make_resident(TANABE, 1, household_number="H1")
    newer = _welfare(1, dt.datetime(2026, 11, 2, tzinfo=dt.UTC), care_level="CARE_5")
    older = _welfare(1, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), care_level="CARE_1")
    roster.apply([person], [newer], DAY)
    roster.apply([], [older], DAY)
    assert _listed(roster) == {f"{1:011d}": (Criterion.CARE,)}
    roster.apply([], [_welfare(1, dt.datetime(2026, 11, 3, tzinfo=dt.UTC), care_level="CARE_5",
                               living_at_home=False)], DAY)
    assert _listed(roster) == {}  # in a facility now: unlisted, its task closed
    [task] = roster.tasks(TANABE, actor="test", open_only=False)
    assert task.outcome == "UNLISTED"


def test_own_criteria_evaluate_again_and_are_durable(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    roster.apply([make_resident(TANABE, 1, household_number="H1")],
                 [_welfare(1, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), care_level="CARE_2")], DAY)
    assert _listed(roster) == {}
    own = roster_criteria(care_levels=["CARE_2", "CARE_3"], physical_up_to=2, intellectual_grades=["A"],
                          mental_up_to=1, elderly_age=75)
    assert roster.set_criteria(TANABE, own, by="tester", now=dt.datetime.now(dt.UTC), on=DAY) == 1
    assert _listed(roster) == {f"{1:011d}": (Criterion.CARE,)}
    roster.store.close()
    assert _roster(tmp_path).criteria(TANABE) == own
