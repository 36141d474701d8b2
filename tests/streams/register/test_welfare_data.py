"""The synthetic welfare data: prevalences that rise with age (the shape of the national figures), valid
WelfareStatus events (they encode with the contract), deterministic from the seed, and changes over the days that
are the same whether the days are asked for at once or in parts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import fastavro

from infra import topics
from schemas.contracts import CONTRACTS, expanded_schema
from streams.register.reference import ReferenceData
from streams.register.simulator import RegisterSimulator
from streams.register.welfare import CARE_RATE, PHYSICAL_RATE, initial_statuses

ONAGAWA = "045811"


def _simulator(reference: ReferenceData, start: datetime, font_path: Path, seed: int = 7) -> RegisterSimulator:
    return RegisterSimulator(reference, ONAGAWA, population=4000, seed=seed, start=start, font_path=font_path)


def test_prevalences_rise_with_age(reference: ReferenceData, start: datetime, font_path: Path) -> None:
    sim = _simulator(reference, start, font_path)
    records = sim.register.records
    statuses = initial_statuses(records, 7, ONAGAWA, sim.as_of)

    def share(low: int, high: int, held: str) -> float:
        people = [r for r in records if low <= (sim.as_of - r["birth_date"]).days / 365.2425 < high]
        return sum(1 for r in people if statuses.get(r["resident_code"], {}).get(held)) / max(1, len(people))

    care = [share(0, 40, "care_level"), share(65, 75, "care_level"), share(75, 85, "care_level"),
            share(85, 130, "care_level")]
    assert care[0] == 0 and care[1] < care[2] < care[3]
    assert 0.02 < care[1] < 0.08 and 0.35 < care[3] < 0.8  # the orders of the national figures
    assert share(0, 18, "physical_grade") < share(18, 65, "physical_grade") < share(75, 130, "physical_grade")
    # Some of the heavily certified live in a facility, nobody uncertified does.
    assert any(not s["living_at_home"] for s in statuses.values())
    assert all(s["living_at_home"] for s in statuses.values() if s["care_level"] is None)


def test_welfare_events_are_valid_deterministic_and_the_same_in_parts(reference: ReferenceData, start: datetime,
                                                                       font_path: Path) -> None:
    sim = _simulator(reference, start, font_path)
    load, changes = list(sim.welfare_full_load()), list(sim.welfare_changes(60))
    assert load and changes
    schema = fastavro.parse_schema(expanded_schema(CONTRACTS[topics.WELFARE_STATUS]))
    for event in load + changes:
        assert fastavro.validation.validate(event, schema)
    assert all(e["event_time"] == sim.start for e in load)
    assert [e["event_time"] for e in changes] == sorted(e["event_time"] for e in changes)
    again = _simulator(reference, start, font_path)
    assert list(again.welfare_full_load()) == load
    parts = list(again.welfare_changes(30)) + list(again.welfare_changes(30, from_day=31))
    assert parts == changes
    other = _simulator(reference, start, font_path, seed=8)
    assert list(other.welfare_full_load()) != load


def test_the_prevalences_are_the_ones_domain_data_sources_states() -> None:
    sources = (Path(__file__).resolve().parents[3] / "domain" / "data" / "SOURCES.md").read_text()
    for low, rate in (*CARE_RATE[1:], *PHYSICAL_RATE):
        assert f"{rate * 100:g} %" in sources, (low, rate)
