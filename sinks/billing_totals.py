"""Billing figures as DuckDB queries over the billing ledger (the de-duplicated issued-certificate log), and the
statements built from them with the fee rules (streams.domain.billing, streams.domain.fees).

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

from schemas.errors import BclError
from sinks.billing_participation import participation_of
from sinks.certificate_log import partition_dir
from sinks.municipalities import MUNICIPALITIES_FILE, VIEW_NAME, register_municipalities
from streams.domain.billing import (
    BillingMonth,
    CertificateCount,
    FiscalYearStatement,
    MonthlyStatement,
    MunicipalityInfo,
    fiscal_year_months,
)
from streams.domain.fees import MunicipalityClass


class UnknownMunicipalityError(BclError):
    pass


def municipality_info(reference_data_dir: Path, code: str) -> MunicipalityInfo:
    """A billing unit of the reference data (designated city, city, special ward, town, village)."""
    con = duckdb.connect()
    try:
        register_municipalities(con, reference_data_dir)
        row = con.execute(f"SELECT code, name, prefecture, kind, population FROM {VIEW_NAME} WHERE code = $code",
                          {"code": code}).fetchone()
        if row is None:
            raise UnknownMunicipalityError(
                f"no municipality {code!r} among the billing units of {reference_data_dir / MUNICIPALITIES_FILE} "
                "(6-digit code with check digit of a city, special ward, town or village; wards of designated "
                "cities are billed with their city)"
            )
        path = str(reference_data_dir / MUNICIPALITIES_FILE).replace("'", "''")
        year = con.execute(f"SELECT population_year FROM read_csv('{path}', header = true, all_varchar = true) "
                           "WHERE code = $code", {"code": code}).fetchone()
    finally:
        con.close()
    figure_year = int(year[0]) if year and year[0] else None
    return MunicipalityInfo(row[0], row[1], row[2], MunicipalityClass(row[3]), int(row[4]), figure_year)


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


def monthly_statement(snapshot_dir: Path, reference_data_dir: Path, code: str, month: BillingMonth,
                      issued_on: dt.date) -> MonthlyStatement:
    info = municipality_info(reference_data_dir, code)
    return MonthlyStatement(info, month, certificate_counts(snapshot_dir, code, [month]), issued_on)


def fiscal_year_statement(snapshot_dir: Path, reference_data_dir: Path, participation_file: Path, code: str,
                          fiscal_year: int, issued_on: dt.date) -> FiscalYearStatement:
    info = municipality_info(reference_data_dir, code)
    counts = certificate_counts(snapshot_dir, code, fiscal_year_months(fiscal_year))
    return FiscalYearStatement(info, fiscal_year, counts, participation_of(participation_file, code), issued_on)
