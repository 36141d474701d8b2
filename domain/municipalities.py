"""Japan's municipalities (the shipped municipalities.csv): the one list every part of the platform uses.

Codes are kept as text (they are zero-padded, with a check digit). The six Northern Territories villages
(population 0) are left out: nobody lives in the register of those municipalities."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from domain.errors import ReferenceDataError, UnknownMunicipalityError
from domain.reference_data import MUNICIPALITIES_FILE, number, read_rows

# The units that are billed and counted in statistics: a designated city's wards are parts of their city
# (a certificate names the city).
BILLING_KINDS = ("designated_city", "city", "special_ward", "town", "village")


@dataclass(frozen=True)
class Municipality:
    code: str
    prefecture: str
    name: str
    name_kana: str
    kind: str
    # None where the source has no figure (the Hamamatsu wards created in 2024).
    population: int | None
    # The year of the population figure.
    population_year: int | None
    # 郡 for towns and villages that belong to one, else None.
    county: str | None
    lat: float
    lon: float

    @property
    def full_name(self) -> str:
        """The municipality as written in an address: with its county (郡) where it has one."""
        return f"{self.county or ''}{self.name}"

    @property
    def is_billing_unit(self) -> bool:
        return self.kind in BILLING_KINDS and bool(self.population)


@cache
def all_municipalities() -> tuple[Municipality, ...]:
    """Every inhabited municipality, ordered by code."""
    found = []
    columns = {"code", "prefecture", "name", "name_kana", "kind", "population", "county", "lat", "lon"}
    for row in read_rows(MUNICIPALITIES_FILE, columns):
        population = int(row["population"]) if row["population"] else None
        if population == 0:
            continue  # the Northern Territories villages
        found.append(Municipality(
            code=row["code"], prefecture=row["prefecture"], name=row["name"], name_kana=row["name_kana"],
            kind=row["kind"], population=population,
            population_year=int(row["population_year"]) if row.get("population_year") else None,
            county=row["county"] or None,
            lat=number(row["lat"], MUNICIPALITIES_FILE), lon=number(row["lon"], MUNICIPALITIES_FILE)))
    if not found:
        raise ReferenceDataError(f"the shipped {MUNICIPALITIES_FILE} holds no municipality")
    return tuple(sorted(found, key=lambda m: m.code))


@cache
def _by_code() -> dict[str, Municipality]:
    return {m.code: m for m in all_municipalities()}


def municipality(code: str) -> Municipality:
    """The municipality of a code, or UnknownMunicipalityError naming the code."""
    try:
        return _by_code()[code]
    except KeyError:
        raise UnknownMunicipalityError(
            f"municipality code {code!r} is not a known municipality (6 digits with check digit, "
            "e.g. 131121 for 世田谷区; the Northern Territories villages have no residents)"
        ) from None


def is_known_municipality(code: str) -> bool:
    """Whether a code is one of the inhabited municipalities of the shipped list."""
    return code in _by_code()


def billing_units() -> tuple[Municipality, ...]:
    """The municipalities that are billed and counted in statistics, ordered by code."""
    return tuple(m for m in all_municipalities() if m.is_billing_unit)
