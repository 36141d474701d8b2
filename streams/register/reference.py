"""The reference data behind the synthetic register: real municipalities, towns and names, read
from the CSV files of the reference-data folder (Settings.reference_data_dir; see its SOURCES.md).

Codes are kept as strings (they are zero-padded). The six Northern Territories villages
(population 0) are excluded: nobody lives in the register of those municipalities.

Addresses. towns_sample.csv has real 町丁目 for 15 municipalities only. For every other
municipality, `ReferenceData.towns_for` makes up addresses from a small fixed list of very common
real Japanese town names (本町, 中央, 栄町, 幸町, 旭町, 緑町, 東町, 西町, 南町, 北町, each with
一丁目..五丁目), placed around the municipality's representative point with a small deterministic
jitter (at most about ±1.5 km). Such a town may well not exist in that municipality; it is a
plausible address, not a real one. Sample towns are always preferred when the municipality has
them. Sample towns without coordinates take the municipality's representative point.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streams.register.errors import ReferenceDataError, UnknownMunicipalityError

MUNICIPALITIES_FILE = "municipalities.csv"
TOWNS_FILE = "towns_sample.csv"
FAMILY_NAMES_FILE = "names_family.csv"
GIVEN_NAMES_FILE = "names_given.csv"

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
class Municipality:
    code: str
    prefecture: str
    name: str
    name_kana: str
    kind: str
    # None where the source has no figure (the Hamamatsu wards created in 2024).
    population: int | None
    # 郡 for towns and villages that belong to one, else None.
    county: str | None
    lat: float
    lon: float

    @property
    def full_name(self) -> str:
        """The municipality as written in an address: with its county (郡) where it has one."""
        return f"{self.county or ''}{self.name}"


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
    _by_code: dict[str, Municipality] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {m.code: m for m in self.municipalities})

    def municipality(self, code: str) -> Municipality:
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownMunicipalityError(
                f"municipality code {code!r} is not in the reference data (6 digits with check digit, "
                "e.g. 131121 for 世田谷区; the Northern Territories villages have no residents)"
            ) from None

    def rank(self, code: str) -> int:
        """Position of the municipality in the code-ordered list: a small number unique per municipality."""
        return self.municipalities.index(self.municipality(code))

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


def _read_rows(folder: Path, name: str, columns: set[str]) -> list[dict[str, str]]:
    path = folder / name
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = columns - set(reader.fieldnames or ())
            if missing:
                raise ReferenceDataError(f"{path} lacks the columns {', '.join(sorted(missing))}")
            return list(reader)
    except FileNotFoundError:
        raise ReferenceDataError(
            f"reference data not found at {path}; set BCL_REFERENCE_DATA_DIR to the folder holding {name}"
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceDataError(f"cannot read the reference data file {path}: {exc}") from exc


def _float(value: str, path: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ReferenceDataError(f"not a number in {path}: {value!r}") from None


def load_reference_data(path: Path) -> ReferenceData:
    """Read the four reference CSV files of the folder `path`."""
    folder = Path(path)
    if not folder.is_dir():
        raise ReferenceDataError(f"reference data not found at {folder}; set BCL_REFERENCE_DATA_DIR")

    municipalities = []
    for row in _read_rows(folder, MUNICIPALITIES_FILE, {"code", "prefecture", "name", "name_kana", "kind",
                                                          "population", "county", "lat", "lon"}):
        population = int(row["population"]) if row["population"] else None
        if population == 0:
            continue  # the Northern Territories villages
        municipalities.append(
            Municipality(
                code=row["code"],
                prefecture=row["prefecture"],
                name=row["name"],
                name_kana=row["name_kana"],
                kind=row["kind"],
                population=population,
                county=row["county"] or None,
                lat=_float(row["lat"], MUNICIPALITIES_FILE),
                lon=_float(row["lon"], MUNICIPALITIES_FILE),
            )
        )
    municipalities.sort(key=lambda m: m.code)
    points = {m.code: (m.lat, m.lon) for m in municipalities}

    towns: dict[str, list[Town]] = {}
    for row in _read_rows(folder, TOWNS_FILE, {"municipality_code", "town_name", "town_kana", "lat", "lon"}):
        code = row["municipality_code"]
        if code not in points:
            continue
        lat, lon = (
            (_float(row["lat"], TOWNS_FILE), _float(row["lon"], TOWNS_FILE)) if row["lat"] and row["lon"]
            else points[code]
        )
        towns.setdefault(code, []).append(
            Town(municipality_code=code, name=row["town_name"], kana=row["town_kana"] or None, lat=lat, lon=lon)
        )

    family = tuple(
        PersonName(r["kanji"], r["katakana"])
        for r in _read_rows(folder, FAMILY_NAMES_FILE, {"kanji", "katakana"})
    )
    male: list[PersonName] = []
    female: list[PersonName] = []
    for r in _read_rows(folder, GIVEN_NAMES_FILE, {"kanji", "katakana", "sex"}):
        (male if r["sex"] == "male" else female).append(PersonName(r["kanji"], r["katakana"]))
    if not municipalities or not family or not male or not female:
        raise ReferenceDataError(f"reference data at {folder} is incomplete (no municipalities or names)")
    return ReferenceData(
        municipalities=tuple(municipalities),
        sample_towns={code: tuple(ts) for code, ts in towns.items()},
        family_names=family,
        male_given_names=tuple(male),
        female_given_names=tuple(female),
    )
