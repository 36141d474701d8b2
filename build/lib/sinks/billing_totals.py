"""Billing figures as DuckDB queries over the billing ledger (the de-duplicated issued-certificate log), and the
statements built from them with the fee rules (domain.billing, domain.fees).

Counts are taken over distinct certificate_ids, so a row that reached the log twice by any route is still
billed once. Only the partitions of the months asked for are read.

Population: the reference data has one figure per municipality (municipalities.csv, its population_year);
the rules want the register population on 1 January of the previous fiscal year. That figure is used for
every fiscal year, and the statement says so (population_basis_date, population_figure_year).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import duckdb

from domain.billing import (
    BillingMonth,
    CertificateCount,
    FiscalYearStatement,
    MonthlyStatement,
    MunicipalityInfo,
    fiscal_year_months,
)
from domain.errors import UnknownMunicipalityError
from domain.fees import MunicipalityClass
from domain.municipalities import municipality
from sinks.billing_participation import participation_of
from sinks.certificate_log import partition_dir


def municipality_info(code: str) -> MunicipalityInfo:
    """A billing unit (designated city, city, special ward, town, village)."""
    found = municipality(code)
    if not found.is_billing_unit:
        raise UnknownMunicipalityError(
            f"municipality {code!r} ({found.name}) is not billed on its own: wards of designated cities are billed "
            "with their city"
        )
    return MunicipalityInfo(found.code, found.name, found.prefecture, MunicipalityClass(found.kind),
                            int(found.population or 0), found.population_year)


def certificate_counts(snapshot_dir: Path, code: str, months: Sequence[BillingMonth]) -> tuple[CertificateCount, ...]:
    """Certificates of one municipality per month, type and kiosk vendor, with the kiosk fees collected."""
    parts = [p for m in months for p in sorted(partition_dir(snapshot_dir, m.year, m.month).glob("part-*.parquet"))]
    if not parts:
        return ()
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""
            SELECT year, month, certificate_type, kiosk_vendor, count(*)::BIGINT, sum(fee_yen)::BIGINT FROM (
                SELECT DISTINCT ON (certificate_id) year, month, certificate_type::VARCHAR AS certificate_type,
                       kiosk_vendor::VARCHAR AS kiosk_vendor, fee_yen
                FROM read_parquet({files}, hive_partitioning = true,
                                  hive_types = {{'year': INTEGER, 'month': INTEGER}})
                WHERE municipality_code = $code
            ) GROUP BY ALL ORDER BY ALL
            """,
            {"code": code},
        ).fetchall()
    finally:
        con.close()
    return tuple(CertificateCount(BillingMonth(y, m), t, v, n, fees) for y, m, t, v, n, fees in rows)


def monthly_statement(snapshot_dir: Path, code: str, month: BillingMonth,
                      issued_on: dt.date) -> MonthlyStatement:
    info = municipality_info(code)
    return MonthlyStatement(info, month, certificate_counts(snapshot_dir, code, [month]), issued_on)


def fiscal_year_statement(snapshot_dir: Path, participation_file: Path, code: str,
                          fiscal_year: int, issued_on: dt.date) -> FiscalYearStatement:
    info = municipality_info(code)
    counts = certificate_counts(snapshot_dir, code, fiscal_year_months(fiscal_year))
    return FiscalYearStatement(info, fiscal_year, counts, participation_of(participation_file, code), issued_on)
