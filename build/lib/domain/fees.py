"""Billing rules of docs/domain.md §5 as plain functions (no I/O). Amounts are yen, tax included.

- Per issued certificate: the BCL issuing fee (180) and the consignment fee to the kiosk operator (117).
- The annual operating contribution (運営負担金) by municipality class, population, issuing mode and fiscal
  year, pro-rated by the months of participation in the joining year.
- The cloud disaster-victim support system fee: 185,000 + 10 × population a year, or
  floor(annual / 12) × months for a municipality that starts during the year.

The fiscal year (年度) runs 1 April – 31 March and is named by the calendar year in which it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import BclError

BCL_FEE_PER_CERTIFICATE = 180
CONSIGNMENT_FEE_PER_CERTIFICATE = 117

DISASTER_SYSTEM_BASE_FEE = 185_000
DISASTER_SYSTEM_FEE_PER_RESIDENT = 10

# The contribution table starts with the fiscal year 2021; earlier years have no rule here.
FIRST_CONTRIBUTION_FISCAL_YEAR = 2021
# From this fiscal year on, the BCL column for small cities and for towns/villages changed.
CONTRIBUTION_REVISION_FISCAL_YEAR = 2023

FISCAL_YEAR_FIRST_MONTH = 4


class FeeError(BclError, ValueError):
    """A fee rule was asked about something it does not cover (bad count, population, month or year)."""


class MunicipalityClass(StrEnum):
    DESIGNATED_CITY = "designated_city"  # 政令市
    CITY = "city"  # 市
    SPECIAL_WARD = "special_ward"  # 特別区 (Tokyo's 23 wards), billed like a city
    TOWN = "town"  # 町
    VILLAGE = "village"  # 村


class IssuingMode(StrEnum):
    BCL = "bcl"  # certificates issued through BCL's issuing centres
    OWN = "own"  # the municipality runs its own issuing server


@dataclass(frozen=True)
class CertificateFees:
    bcl_fee: int
    consignment_fee: int


@dataclass(frozen=True)
class _ContributionRow:
    own: int
    bcl_fy2021_2022: int
    bcl_fy2023_on: int

    def amount(self, mode: IssuingMode, fiscal_year: int) -> int:
        if mode is IssuingMode.OWN:
            return self.own
        return self.bcl_fy2021_2022 if fiscal_year < CONTRIBUTION_REVISION_FISCAL_YEAR else self.bcl_fy2023_on


_DESIGNATED_LARGE = _ContributionRow(9_879_630, 9_879_630, 9_879_630)  # population ≥ 1,000,000
_DESIGNATED_SMALL = _ContributionRow(7_842_593, 7_842_593, 7_842_593)
_CITY_150K = _ContributionRow(4_787_037, 4_787_037, 4_787_037)  # ≥ 150,000
_CITY_50K = _ContributionRow(2_728_000, 2_728_000, 2_728_000)  # 50,000 – 149,999
_CITY_30K = _ContributionRow(2_218_741, 2_218_741, 2_218_741)  # 30,000 – 49,999
_CITY_SMALL = _ContributionRow(2_218_741, 1_527_778, 1_873_259)  # < 30,000
_TOWN_VILLAGE = _ContributionRow(690_963, 0, 345_481)


def certificate_fees(certificates: int) -> CertificateFees:
    """The BCL issuing fee (settled at fiscal-year end) and the consignment fee to the kiosk operator
    (settled monthly) for a number of certificates issued through BCL."""
    if certificates < 0:
        raise FeeError(f"the number of certificates cannot be negative, got {certificates}")
    return CertificateFees(
        bcl_fee=certificates * BCL_FEE_PER_CERTIFICATE,
        consignment_fee=certificates * CONSIGNMENT_FEE_PER_CERTIFICATE,
    )


def _check_population(population: int) -> None:
    if population < 0:
        raise FeeError(f"population cannot be negative, got {population}")


def _check_month(month: int, what: str) -> None:
    if not 1 <= month <= 12:
        raise FeeError(f"{what} must be a calendar month 1–12, got {month}")


def _contribution_row(municipality_class: MunicipalityClass, population: int) -> _ContributionRow:
    match municipality_class:
        case MunicipalityClass.DESIGNATED_CITY:
            return _DESIGNATED_LARGE if population >= 1_000_000 else _DESIGNATED_SMALL
        case MunicipalityClass.CITY | MunicipalityClass.SPECIAL_WARD:
            if population >= 150_000:
                return _CITY_150K
            if population >= 50_000:
                return _CITY_50K
            if population >= 30_000:
                return _CITY_30K
            return _CITY_SMALL
        case MunicipalityClass.TOWN | MunicipalityClass.VILLAGE:
            return _TOWN_VILLAGE
    raise FeeError(f"unknown municipality class {municipality_class!r}")


def annual_contribution(
    municipality_class: MunicipalityClass, population: int, mode: IssuingMode, fiscal_year: int
) -> int:
    """The annual operating contribution (運営負担金) for a whole fiscal year of participation."""
    _check_population(population)
    if fiscal_year < FIRST_CONTRIBUTION_FISCAL_YEAR:
        raise FeeError(
            f"the contribution table starts with fiscal year {FIRST_CONTRIBUTION_FISCAL_YEAR}; "
            f"no rule for fiscal year {fiscal_year}"
        )
    return _contribution_row(MunicipalityClass(municipality_class), population).amount(IssuingMode(mode), fiscal_year)


def months_of_participation(start_month: int) -> int:
    """Months from a calendar start month through March, the start month included, within a fiscal year
    (April..March): April → 12, December → 4, January → 3, March → 1."""
    _check_month(start_month, "the start month")
    return (FISCAL_YEAR_FIRST_MONTH + 12 - start_month - 1) % 12 + 1


def billed_contribution(
    municipality_class: MunicipalityClass,
    population: int,
    mode: IssuingMode,
    fiscal_year: int,
    join_month: int | None = None,
) -> int:
    """The contribution billed for one fiscal year. In the joining year (join_month given, a calendar month
    1–12 of that fiscal year) it is pro-rated by the months of participation and rounded down to the yen:
    floor(annual × months / 12). Without a join month the municipality took part all year."""
    annual = annual_contribution(municipality_class, population, mode, fiscal_year)
    if join_month is None:
        return annual
    return annual * months_of_participation(join_month) // 12


def disaster_system_annual_fee(population: int) -> int:
    """185,000 + 10 × population, the population being the register population on 1 January of the previous
    fiscal year (the caller picks that figure)."""
    _check_population(population)
    return DISASTER_SYSTEM_BASE_FEE + DISASTER_SYSTEM_FEE_PER_RESIDENT * population


def disaster_system_monthly_fee(population: int) -> int:
    """floor(annual / 12): the monthly amount used for a start during the year."""
    return disaster_system_annual_fee(population) // 12


def billed_disaster_system_fee(population: int, start_month: int | None = None) -> int:
    """The disaster-system fee billed for one fiscal year. A municipality using the system all year pays the
    annual amount. One that starts during the year (start_month, a calendar month 5–3 of the fiscal year)
    pays floor(annual / 12) × the months from the start month through March, the start month included.
    A start in April is a whole year and pays the annual amount (not 12 × the rounded-down monthly fee)."""
    annual = disaster_system_annual_fee(population)
    if start_month is None:
        return annual
    months = months_of_participation(start_month)
    if months == 12:
        return annual
    return disaster_system_monthly_fee(population) * months
