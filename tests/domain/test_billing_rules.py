"""Billing periods, the monthly settlement and the year-end charges under each kind of participation."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.billing import (
    BillingMonth,
    CertificateCount,
    FiscalYearStatement,
    MunicipalityInfo,
    Participation,
    certificate_rejection,
    fiscal_year_charges,
    fiscal_year_months,
    population_basis_date,
    settle,
)
from domain.fees import FeeError, IssuingMode, MunicipalityClass

CITY = MunicipalityClass.CITY
TOWN = MunicipalityClass.TOWN


def test_billing_month_parse_bounds_and_fiscal_year() -> None:
    assert BillingMonth.parse("2026-02") == BillingMonth(2026, 2)
    assert BillingMonth(2026, 2).last_day == dt.date(2026, 2, 28)
    assert BillingMonth(2024, 2).last_day == dt.date(2024, 2, 29)
    assert BillingMonth(2025, 12).last_day == dt.date(2025, 12, 31)
    assert (BillingMonth(2026, 3).fiscal_year, BillingMonth(2026, 4).fiscal_year) == (2025, 2026)
    months = fiscal_year_months(2025)
    assert (months[0], months[-1], len(months)) == (BillingMonth(2025, 4), BillingMonth(2026, 3), 12)
    for bad in ("2025-13", "2025/11", "25-11", "2025-1"):
        with pytest.raises(FeeError):
            BillingMonth.parse(bad)
    assert population_basis_date(2025) == dt.date(2025, 1, 1)


def test_settlement_is_fees_minus_consignment() -> None:
    s = settle(10, 2_500)
    assert (s.consignment_fee, s.net_income, s.bcl_fee_accrued) == (1_170, 1_330, 1_800)
    assert settle(3, 0).net_income == -351  # free disaster certificates still cost the consignment fee


def test_year_end_charges_whole_year() -> None:
    charges = fiscal_year_charges(2025, 1_000, CITY, 29_999, Participation())
    assert (charges.bcl_fee, charges.contribution, charges.disaster_system_fee) == (180_000, 1_873_259, 484_990)
    assert charges.total == 180_000 + 1_873_259 + 484_990
    assert (charges.contribution_months, charges.disaster_system_months) == (12, 12)


def test_year_end_charges_in_and_around_the_joining_year() -> None:
    joined_october = Participation(joined=BillingMonth(2025, 10))
    during = fiscal_year_charges(2025, 10, CITY, 29_999, joined_october)
    # 6 months (October–March): floor(1,873,259 × 6 / 12); disaster floor(484,990 / 12) × 6.
    assert (during.contribution, during.contribution_months) == (936_629, 6)
    assert (during.disaster_system_fee, during.disaster_system_months) == (40_415 * 6, 6)
    before = fiscal_year_charges(2024, 0, CITY, 29_999, joined_october)
    assert (before.contribution, before.disaster_system_fee, before.total) == (0, 0, 0)
    after = fiscal_year_charges(2026, 0, CITY, 29_999, joined_october)
    assert (after.contribution, after.disaster_system_fee) == (1_873_259, 484_990)
    january = fiscal_year_charges(2025, 0, CITY, 29_999, Participation(joined=BillingMonth(2026, 1)))
    assert january.contribution_months == 3


def test_mode_and_disaster_system_options() -> None:
    own = fiscal_year_charges(2025, 0, TOWN, 8_000, Participation(mode=IssuingMode.OWN))
    bcl = fiscal_year_charges(2025, 0, TOWN, 8_000, Participation())
    assert (own.contribution, bcl.contribution) == (690_963, 345_481)
    none = fiscal_year_charges(2025, 0, TOWN, 8_000, Participation(disaster_system=False))
    assert (none.disaster_system_fee, none.disaster_system_months) == (0, 0)
    later = Participation(disaster_system_from=BillingMonth(2026, 3))
    assert fiscal_year_charges(2025, 0, TOWN, 8_000, later).disaster_system_fee == (185_000 + 80_000) // 12


def test_fiscal_year_statement_totals() -> None:
    info = MunicipalityInfo("011002", "札幌市", "北海道", MunicipalityClass.DESIGNATED_CITY, 1_960_668, 2022)
    counts = (CertificateCount(BillingMonth(2025, 4), "RESIDENT_RECORD", "Lawson", 5, 1_000),
              CertificateCount(BillingMonth(2026, 3), "INCOME", "Lawson", 2, 600),
              CertificateCount(BillingMonth(2026, 3), "RESIDENT_RECORD", "FamilyMart", 1, 200))
    totals = FiscalYearStatement(info, 2025, counts, Participation(), dt.date(2026, 4, 10)).totals()
    assert (totals["certificates"], totals["fees_collected"], totals["consignment_fee"]) == (8, 1_800, 936)
    assert (totals["bcl_fee"], totals["contribution"]) == (1_440, 9_879_630)
    assert totals["disaster_system_fee"] == 185_000 + 19_606_680
    assert totals["year_end_total"] == 1_440 + 9_879_630 + 185_000 + 19_606_680
    assert totals["by_month"]["2026-03"]["certificates"] == 3 and totals["by_month"]["2025-05"]["certificates"] == 0
    assert list(totals["by_type"]) == ["RESIDENT_RECORD", "INCOME"]  # the contract's order
    assert totals["by_vendor"]["Lawson"]["net_income"] == 1_600 - 7 * 117


def test_certificate_rejection_reasons() -> None:
    good = {"certificate_id": "c1", "municipality_code": "011002", "kiosk_municipality_code": "131016",
            "copy_number": 1, "copies": 2, "pages": 1, "fee_yen": 300,
            "issued_at": dt.datetime(2025, 11, 1, tzinfo=dt.UTC)}
    assert certificate_rejection(good) is None
    cases = {"certificate_id": "", "municipality_code": "011003", "kiosk_municipality_code": "1310",
             "copy_number": 3, "pages": 0, "fee_yen": -1, "issued_at": dt.datetime(2025, 11, 1)}
    for name, value in cases.items():
        reason = certificate_rejection({**good, name: value})
        assert reason is not None and name in reason
