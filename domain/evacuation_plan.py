"""The 個別避難計画 of a listed person (災害対策基本法 49条の14; docs/domain.md §6.5): who helps them evacuate
(避難支援等実施者), where to (a shelter of their municipality, by its code in the shipped open data
domain/data/shelters.csv), the route and what they need. Pure checks; the store is sinks.evacuation_roster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from domain.errors import InvalidArgumentError
from domain.reference_data import read_rows

SHELTERS_FILE = "shelters.csv"
MAX_SUPPORTERS = 5
MAX_TEXT = 500  # route notes, needs
MAX_SUPPORTER_FIELD = 100


@dataclass(frozen=True)
class Supporter:
    """One 避難支援等実施者: a name, how they relate to the person (家族, 近隣住民, 民生委員, 自主防災組織...),
    a telephone number."""

    name: str
    relation: str
    phone: str


@dataclass(frozen=True)
class Shelter:
    municipality_code: str
    shelter_id: str
    name: str
    address: str
    kind: str  # designated_shelter (指定避難所) or emergency_site (指定緊急避難場所)


@dataclass(frozen=True)
class EvacuationPlan:
    supporters: tuple[Supporter, ...]
    shelter: Shelter
    route: str
    needs: str


@cache
def _shelters() -> dict[str, Shelter]:
    rows = read_rows(SHELTERS_FILE, {"municipality_code", "shelter_id", "name", "address", "kind"})
    return {r["shelter_id"]: Shelter(r["municipality_code"], r["shelter_id"], r["name"], r["address"], r["kind"])
            for r in rows}


def shipped_shelter(municipality_code: str, shelter_id: str) -> Shelter:
    """The shelter of that code in the shipped open data, which must be one of the municipality's."""
    shelter = _shelters().get(shelter_id)
    if shelter is None:
        raise InvalidArgumentError("shelter", f"{shelter_id!r} is not a shelter code of the shipped open data "
                                              "(domain/data/shelters.csv)")
    if shelter.municipality_code != municipality_code:
        raise InvalidArgumentError("shelter", f"{shelter_id!r} is a shelter of {shelter.municipality_code}, "
                                              f"not of {municipality_code}")
    return shelter


def supporter(text: str) -> Supporter:
    """`name:relation:phone` as a person types it."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise InvalidArgumentError("supporter", f"{text!r} is not name:relation:phone (the phone may be empty)")
    if any(len(p) > MAX_SUPPORTER_FIELD for p in parts):
        raise InvalidArgumentError("supporter", f"a part is over {MAX_SUPPORTER_FIELD} characters")
    return Supporter(*parts)


def evacuation_plan(municipality_code: str, *, supporters: Sequence[Supporter], shelter_id: str, route: str,
                    needs: str) -> EvacuationPlan:
    """A checked plan: at least one and at most MAX_SUPPORTERS supporters, a shipped shelter of the municipality,
    route notes and needs of at most MAX_TEXT characters each."""
    if not 1 <= len(supporters) <= MAX_SUPPORTERS:
        raise InvalidArgumentError("supporter", f"a plan names 1 to {MAX_SUPPORTERS} supporters, not "
                                                f"{len(supporters)}")
    for name, value in (("route", route), ("needs", needs)):
        if len(value) > MAX_TEXT:
            raise InvalidArgumentError(name, f"is {len(value)} characters, over {MAX_TEXT}")
    return EvacuationPlan(tuple(supporters), shipped_shelter(municipality_code, shelter_id), route, needs)
