"""Fee rules of docs/domain.md §5: table boundaries, pro-rating and the disaster-system fee."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fees import (
    FeeError,
    IssuingMode,
    MunicipalityClass,
    annual_contribution,
    billed_contribution,
    billed_disaster_system_fee,
    certificate_fees,
    disaster_system_annual_fee,
    disaster_system_monthly_fee,
    months_of_participation,
)

MC, IM = MunicipalityClass, IssuingMode


def test_certificate_fees_are_180_and_117_each() -> None:
    fees = certificate_fees(1000)
    assert (fees.bcl_fee, fees.consignment_fee) == (180_000, 117_000)
    assert certificate_fees(0).bcl_fee == 0
    with pytest.raises(FeeError, match="negative"):
        certificate_fees(-1)


@pytest.mark.parametrize(
    ("cls", "population", "own", "bcl_2021", "bcl_2023"),
    [
        (MC.DESIGNATED_CITY, 1_000_000, 9_879_630, 9_879_630, 9_879_630),
        (MC.DESIGNATED_CITY, 999_999, 7_842_593, 7_842_593, 7_842_593),
        (MC.CITY, 150_000, 4_787_037, 4_787_037, 4_787_037),
        (MC.SPECIAL_WARD, 150_000, 4_787_037, 4_787_037, 4_787_037),
        (MC.CITY, 149_999, 2_728_000, 2_728_000, 2_728_000),
        (MC.CITY, 50_000, 2_728_000, 2_728_000, 2_728_000),
        (MC.CITY, 49_999, 2_218_741, 2_218_741, 2_218_741),
        (MC.SPECIAL_WARD, 30_000, 2_218_741, 2_218_741, 2_218_741),
        (MC.CITY, 29_999, 2_218_741, 1_527_778, 1_873_259),
        (MC.CITY, 0, 2_218_741, 1_527_778, 1_873_259),
        (MC.TOWN, 2_000_000, 690_963, 0, 345_481),
        (MC.VILLAGE, 300, 690_963, 0, 345_481),
    ],
)
def test_contribution_table(cls: MunicipalityClass, population: int, own: int, bcl_2021: int, bcl_2023: int) -> None:
    for year in (2021, 2023, 2030):
        assert annual_contribution(cls, population, IM.OWN, year) == own
    assert annual_contribution(cls, population, IM.BCL, 2021) == bcl_2021
    assert annual_contribution(cls, population, IM.BCL, 2022) == bcl_2021
    assert annual_contribution(cls, population, IM.BCL, 2023) == bcl_2023
    assert annual_contribution(cls, population, IM.BCL, 2026) == bcl_2023


def test_contribution_rejects_years_before_the_table_and_negative_population() -> None:
    with pytest.raises(FeeError, match="fiscal year 2020"):
        annual_contribution(MC.CITY, 1, IM.BCL, 2020)
    with pytest.raises(FeeError, match="population"):
        annual_contribution(MC.CITY, -1, IM.BCL, 2023)
    with pytest.raises(ValueError):
        annual_contribution("metropolis", 1, IM.BCL, 2023)  # type: ignore[arg-type]


@pytest.mark.parametrize(("month", "months"), [(4, 12), (5, 11), (10, 6), (12, 4), (1, 3), (2, 2), (3, 1)])
def test_months_of_participation_run_through_march(month: int, months: int) -> None:
    assert months_of_participation(month) == months


@pytest.mark.parametrize("month", [0, 13, -1])
def test_month_outside_the_calendar_is_refused(month: int) -> None:
    with pytest.raises(FeeError, match="1–12"):
        months_of_participation(month)
    with pytest.raises(FeeError):
        billed_disaster_system_fee(1000, month)


def test_prorated_contribution_rounds_down() -> None:
    # 1,873,259 × 6 / 12 = 936,629.5 → 936,629
    assert billed_contribution(MC.CITY, 29_999, IM.BCL, 2023, join_month=10) == 936_629
    # 4,787,037 × 1 / 12 = 398,919.75 → 398,919
    assert billed_contribution(MC.CITY, 200_000, IM.BCL, 2025, join_month=3) == 398_919
    assert billed_contribution(MC.CITY, 200_000, IM.BCL, 2025, join_month=4) == 4_787_037
    assert billed_contribution(MC.CITY, 200_000, IM.BCL, 2025) == 4_787_037
    assert billed_contribution(MC.TOWN, 5_000, IM.BCL, 2022, join_month=7) == 0


def test_disaster_fee() -> None:
    assert disaster_system_annual_fee(100_000) == 1_185_000
    assert disaster_system_monthly_fee(100_000) == 98_750
    assert billed_disaster_system_fee(100_000) == 1_185_000
    assert billed_disaster_system_fee(100_000, start_month=10) == 98_750 * 6
    # annual 185,010 → monthly floor(15,417.5) = 15,417; a January start pays 3 months
    assert billed_disaster_system_fee(1, start_month=1) == 15_417 * 3
    # an April start is the whole year at the annual amount, not 12 × the rounded-down monthly fee
    assert billed_disaster_system_fee(1, start_month=4) == 185_010
    with pytest.raises(FeeError, match="population"):
        disaster_system_annual_fee(-5)


classes = st.sampled_from(list(MunicipalityClass))
modes = st.sampled_from(list(IssuingMode))
populations = st.integers(min_value=0, max_value=4_000_000)
years = st.integers(min_value=2021, max_value=2040)
months = st.integers(min_value=1, max_value=12)


@given(classes, populations, modes, years, months)
def test_prorated_contribution_never_exceeds_the_annual_and_grows_with_months(
    cls: MunicipalityClass, population: int, mode: IssuingMode, year: int, month: int
) -> None:
    annual = annual_contribution(cls, population, mode, year)
    billed = billed_contribution(cls, population, mode, year, month)
    n = months_of_participation(month)
    assert 0 <= billed <= annual
    assert billed == annual * n // 12
    assert annual * n - 12 < billed * 12 <= annual * n
    if month != 3:  # joining one month later never costs more
        later = 1 if month == 12 else month + 1
        assert billed_contribution(cls, population, mode, year, later) <= billed


@given(classes, populations, years)
def test_own_server_never_costs_less_than_bcl(cls: MunicipalityClass, population: int, year: int) -> None:
    assert annual_contribution(cls, population, IM.OWN, year) >= annual_contribution(cls, population, IM.BCL, year)


@given(classes, st.integers(min_value=0, max_value=4_000_000), st.integers(min_value=0, max_value=4_000_000), years)
def test_contribution_is_monotonic_in_population_within_a_class(
    cls: MunicipalityClass, a: int, b: int, year: int
) -> None:
    low, high = sorted((a, b))
    for mode in IssuingMode:
        assert annual_contribution(cls, low, mode, year) <= annual_contribution(cls, high, mode, year)


@given(populations, months)
def test_disaster_fee_for_a_start_during_the_year(population: int, month: int) -> None:
    annual = disaster_system_annual_fee(population)
    billed = billed_disaster_system_fee(population, month)
    n = months_of_participation(month)
    assert billed <= annual
    assert billed == (annual if n == 12 else (annual // 12) * n)
