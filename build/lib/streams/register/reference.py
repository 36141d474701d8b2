"""The reference data behind the synthetic register: real municipalities, towns and names, shipped
with the package (domain/data/, its sources and licences in domain/data/SOURCES.md); the municipalities are
domain.municipalities.

Addresses. towns_sample.csv has real 町丁目 for 15 municipalities only. For every other
municipality, `ReferenceData.towns_for` makes up addresses from a small fixed list of very common
real Japanese town names (本町, 中央, 栄町, 幸町, 旭町, 緑町, 東町, 西町, 南町, 北町, each with
一丁目..五丁目), placed around the municipality's representative point with a small deterministic
jitter (at most about ±1.5 km). Such a town may well not exist in that municipality; it is a
plausible address, not a real one. Sample towns are always preferred when the municipality has
them. Sample towns without coordinates take the municipality's representative point.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from domain.errors import ReferenceDataError
from domain.municipalities import Municipality, all_municipalities
from domain.municipalities import municipality as find_municipality
from domain.reference_data import FAMILY_NAMES_FILE, GIVEN_NAMES_FILE, TOWNS_FILE, number, read_rows

# (kanji, reading) of very common real town names, used where the sample has no towns.
COMMON_TOWN_NAMES: tuple[tuple[str, str], ...] = (
    ("本町", "ホンチョウ"),
    ("中央", "チュウオウ"),
    ("栄町", "サカエマチ"),
    ("幸町", "サイワイチョウ"),
    ("旭町", "アサヒマチ"),
    ("緑町", "ミドリチョウ"),
    ("東町", "ヒガシマチ"),
    ("西町", "ニシマチ"),
    ("南町", "ミナミマチ"),
    ("北町", "キタマチ"),
)
CHOME: tuple[tuple[str, str], ...] = (("一", "１"), ("二", "２"), ("三", "３"), ("四", "４"), ("五", "５"))
# About ±1.5 km in latitude; the longitude jitter is of the same order in degrees.
FALLBACK_JITTER_DEGREES = 0.0135


@dataclass(frozen=True)
class Town:
    municipality_code: str
    name: str
    # None for the few sample towns without a known reading.
    kana: str | None
    lat: float
    lon: float


@dataclass(frozen=True)
class PersonName:
    """One name with its reading in full-width katakana (振り仮名)."""

    kanji: str
    kana: str


@dataclass(frozen=True)
class ReferenceData:
    # Ordered by code; Northern Territories villages excluded.
    municipalities: tuple[Municipality, ...]
    # Real sample towns by municipality code, in file order.
    sample_towns: dict[str, tuple[Town, ...]]
    # Roughly in order of frequency (most common first), as in the source.
    family_names: tuple[PersonName, ...]
    male_given_names: tuple[PersonName, ...]
    female_given_names: tuple[PersonName, ...]
    _rank: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rank", {m.code: i for i, m in enumerate(self.municipalities)})

    def municipality(self, code: str) -> Municipality:
        return find_municipality(code)

    def rank(self, code: str) -> int:
        """Position of the municipality in the code-ordered list: a small number unique per municipality."""
        return self._rank[self.municipality(code).code]

    def towns_for(self, code: str) -> tuple[Town, ...]:
        """The towns addresses of this municipality are drawn from (see the module docstring)."""
        municipality = self.municipality(code)
        sample = self.sample_towns.get(code)
        if sample:
            return sample
        return fallback_towns(municipality)


def fallback_towns(municipality: Municipality) -> tuple[Town, ...]:
    """Common town names with 一..五丁目 around the representative point, jittered deterministically."""
    rng = np.random.default_rng(zlib.crc32(municipality.code.encode()))
    count = len(COMMON_TOWN_NAMES) * len(CHOME)
    jitter = rng.uniform(-FALLBACK_JITTER_DEGREES, FALLBACK_JITTER_DEGREES, size=(count, 2)).tolist()
    towns = []
    for i, ((name, kana), (chome, chome_kana)) in enumerate(
        (t, c) for t in COMMON_TOWN_NAMES for c in CHOME
    ):
        dlat, dlon = jitter[i]
        towns.append(
            Town(
                municipality_code=municipality.code,
                name=f"{name}{chome}丁目",
                kana=f"{kana}{chome_kana}チョウメ",
                lat=round(municipality.lat + dlat, 6),
                lon=round(municipality.lon + dlon, 6),
            )
        )
    return tuple(towns)


@cache
def load_reference_data() -> ReferenceData:
    """The municipalities, sample towns and names shipped with the package (read once per process)."""
    municipalities = all_municipalities()
    points = {m.code: (m.lat, m.lon) for m in municipalities}

    towns: dict[str, list[Town]] = {}
    for row in read_rows(TOWNS_FILE, {"municipality_code", "town_name", "town_kana", "lat", "lon"}):
        code = row["municipality_code"]
        if code not in points:
            continue
        lat, lon = (
            (number(row["lat"], TOWNS_FILE), number(row["lon"], TOWNS_FILE)) if row["lat"] and row["lon"]
            else points[code]
        )
        towns.setdefault(code, []).append(
            Town(municipality_code=code, name=row["town_name"], kana=row["town_kana"] or None, lat=lat, lon=lon)
        )

    family = tuple(PersonName(r["kanji"], r["katakana"]) for r in read_rows(FAMILY_NAMES_FILE, {"kanji", "katakana"}))
    male: list[PersonName] = []
    female: list[PersonName] = []
    for r in read_rows(GIVEN_NAMES_FILE, {"kanji", "katakana", "sex"}):
        (male if r["sex"] == "male" else female).append(PersonName(r["kanji"], r["katakana"]))
    if not family or not male or not female:
        raise ReferenceDataError("the shipped reference data is incomplete (no family or given names)")
    return ReferenceData(
        municipalities=municipalities,
        sample_towns={code: tuple(ts) for code, ts in towns.items()},
        family_names=family,
        male_given_names=tuple(male),
        female_given_names=tuple(female),
    )
