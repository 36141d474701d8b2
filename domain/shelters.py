"""Shelters (避難所, docs/domain.md §6.6): one row of the open-data format, capacity by day and by night, and
occupancy. Pure.

The open-data format is the columns of the shipped `domain/data/shelters.csv` (国土地理院「指定緊急避難場所・指定避難所
データ」, see domain/data/SOURCES.md §4): a municipality's own file in the same columns imports the same way.
`shelter_record` reads one row or raises RowError naming the column (the importer adds the line).

Day and night: a shelter holds fewer people at night (everyone lies down) than by day, and people who go back to
their homes or to work by day come back in the evening, so staff enter both capacities and the headcount is
compared with the one of the period: night is 18:00 to 06:00 Japan time (our convention, the hours most shelters
count their night roll), day the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from domain.codes import is_valid_municipality_code
from domain.errors import BclError
from domain.japan_time import to_japan_time
from domain.register_csv import RowError

HAZARDS = ("flood", "landslide", "storm_surge", "earthquake", "tsunami", "fire", "inland_flood", "volcano")
HAZARD_COLUMNS = tuple(f"hazard_{h}" for h in HAZARDS)
COLUMNS = ("municipality_code", "shelter_id", "name", "address", "lat", "lon", "kind", *HAZARD_COLUMNS, "capacity")
MAX_ID = 40  # GSI's 共通ID is 14 characters; room for a municipality's own ids
MAX_NAME = 200
MAX_ADDRESS = 300
MAX_CAPACITY = 100_000  # a stadium; more is a typing mistake
# Japan's extent (南鳥島 to 与那国島, 沖ノ鳥島 to 択捉島): a point outside is a mistake, e.g. lat and lon swapped.
LATITUDE_RANGE = (20.0, 46.0)
LONGITUDE_RANGE = (122.0, 154.0)
NIGHT_STARTS = dt.time(18, 0)
NIGHT_ENDS = dt.time(6, 0)


class ShelterKind(StrEnum):
    EMERGENCY_SITE = "emergency_site"  # 指定緊急避難場所: a place to flee to from a hazard
    DESIGNATED_SHELTER = "designated_shelter"  # 指定避難所: a place to stay


class Period(StrEnum):
    DAY = "DAY"
    NIGHT = "NIGHT"


class ShelterError(BclError):
    """A staff entry about shelters that cannot be taken (unknown shelter, not open, bad capacity)."""


class UnknownShelterError(ShelterError, LookupError):
    pass


@dataclass(frozen=True)
class Shelter:
    shelter_id: str
    municipality_code: str
    name: str
    address: str
    latitude: float
    longitude: float
    kind: ShelterKind
    hazards: frozenset[str]  # the hazards it is designated for (emergency sites only)
    published_capacity: int | None  # what the open data says (GSI publishes none)


@dataclass(frozen=True)
class Capacity:
    day: int
    night: int


@dataclass(frozen=True)
class Occupancy:
    """The headcount of an open shelter at an instant, against the capacity of that instant's period."""

    shelter_id: str
    headcount: int
    period: Period
    capacity: int | None  # staff-entered for the period, else the published one, else unknown

    @property
    def ratio(self) -> float | None:
        return None if not self.capacity else self.headcount / self.capacity


def _text(row: Mapping[str, str], column: str, limit: int) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise RowError(column, "empty")
    if len(value) > limit:
        raise RowError(column, f"longer than {limit} characters")
    return value


def _degrees(row: Mapping[str, str], column: str, bounds: tuple[float, float]) -> float:
    value = (row.get(column) or "").strip()
    try:
        number = float(value)
    except ValueError:
        raise RowError(column, f"{value!r} is not a number") from None
    if not bounds[0] <= number <= bounds[1]:
        raise RowError(column, f"{value} is outside Japan ({bounds[0]} to {bounds[1]}); are lat and lon swapped?")
    return number


def _count(value: str, what: str) -> int:
    """A whole number of people, 1 to MAX_CAPACITY, or ValueError with the reason."""
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{what} {value!r} is not a whole number of people")
    number = int(text)
    if not 1 <= number <= MAX_CAPACITY:
        raise ValueError(f"{what} {number} is not between 1 and {MAX_CAPACITY:,}")
    return number


def shelter_record(row: Mapping[str, str]) -> Shelter:
    """One row of the open-data format, or RowError naming the column and what is wrong."""
    code = (row.get("municipality_code") or "").strip()
    if not is_valid_municipality_code(code):
        raise RowError("municipality_code", f"{code!r} is not a 全国地方公共団体コード (6 digits with check digit)")
    kind_text = (row.get("kind") or "").strip()
    try:
        kind = ShelterKind(kind_text)
    except ValueError:
        raise RowError("kind", f"{kind_text!r} is not one of {', '.join(k.value for k in ShelterKind)}") from None
    hazards = set()
    for hazard, column in zip(HAZARDS, HAZARD_COLUMNS, strict=True):
        flag = (row.get(column) or "").strip()
        if flag not in ("", "0", "1"):
            raise RowError(column, f"{flag!r} is not 1, 0 or empty")
        if flag == "1":
            hazards.add(hazard)
    capacity_text = (row.get("capacity") or "").strip()
    try:
        capacity = _count(capacity_text, "capacity") if capacity_text else None
    except ValueError as exc:
        raise RowError("capacity", str(exc)) from None
    return Shelter(_text(row, "shelter_id", MAX_ID), code, _text(row, "name", MAX_NAME),
                   _text(row, "address", MAX_ADDRESS), _degrees(row, "lat", LATITUDE_RANGE),
                   _degrees(row, "lon", LONGITUDE_RANGE), kind, frozenset(hazards), capacity)


def capacity(day: str | int, night: str | int) -> Capacity:
    """The capacities staff enter, or ShelterError: whole people, 1 to MAX_CAPACITY each."""
    try:
        return Capacity(_count(str(day), "the day capacity"), _count(str(night), "the night capacity"))
    except ValueError as exc:
        raise ShelterError(str(exc)) from None


def period_of(instant: dt.datetime) -> Period:
    local = to_japan_time(instant).time()
    return Period.NIGHT if local >= NIGHT_STARTS or local < NIGHT_ENDS else Period.DAY


def capacity_for(period: Period, entered: Capacity | None, published: int | None) -> int | None:
    if entered is not None:
        return entered.night if period is Period.NIGHT else entered.day
    return published
