"""The statistics the operator publishes (docs/domain.md §7), as DuckDB queries over the issued-certificate log.

Definitions come from domain: office hours and holidays from domain/office_hours.py, categories from
domain/statistics.py. So that no Python runs per row, the holiday rules are evaluated once per day into a
small table `office_days` that the queries join, and the certificate categories are a small table
`certificate_categories`.

Every query makes a single pass over the log, grouping to a small intermediate result (per month and
municipality, say) from which national and per-municipality figures are both taken.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from domain.fees import FISCAL_YEAR_FIRST_MONTH
from domain.office_hours import OFFICE_CLOSES_MINUTE, OFFICE_OPENS_MINUTE, office_calendar
from domain.statistics import CATEGORIES, CATEGORY_OF_TYPE
from sinks.certificate_log import VIEW_NAME, register_view
from sinks.municipalities import register_municipalities

NATIONAL = "全国"
PARTICIPATING = "参加団体計"


@dataclass(frozen=True)
class StatTable:
    """A published table: a title, column names and rows of plain values (int, float share, str)."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    # Columns holding a share (0..1), shown and written as percentages.
    share_columns: frozenset[str] = field(default_factory=frozenset)

    def write_csv(self, path: Path) -> None:
        """UTF-8 CSV with a header; shares as percentages with two decimals."""
        share_at = {i for i, c in enumerate(self.columns) if c in self.share_columns}
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([f"{c} (%)" if i in share_at else c for i, c in enumerate(self.columns)])
            for row in self.rows:
                writer.writerow([f"{v * 100:.2f}" if i in share_at else v for i, v in enumerate(row)])

    def column(self, name: str) -> list[Any]:
        at = self.columns.index(name)
        return [row[at] for row in self.rows]


def open_statistics(snapshot_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the log view, the office-day calendar, the category map and the
    municipalities."""
    con = duckdb.connect()
    register_view(con, snapshot_dir)
    register_municipalities(con)
    first, last = con.execute(f"SELECT min(issued_date), max(issued_date) FROM {VIEW_NAME}").fetchall()[0]
    days = office_calendar(first, last)
    con.register("office_days_arrow", pa.table({"day": [d for d, _ in days], "is_office_day": [o for _, o in days]}))
    con.execute("CREATE TABLE office_days AS SELECT * FROM office_days_arrow")
    con.unregister("office_days_arrow")
    con.register("categories_arrow", pa.table({"certificate_type": [str(t) for t in CATEGORY_OF_TYPE],
                                               "category": list(CATEGORY_OF_TYPE.values())}))
    con.execute("CREATE TABLE certificate_categories AS SELECT * FROM categories_arrow")
    con.unregister("categories_arrow")
    return con


def _by_category(
    con: duckdb.DuckDBPyConnection, period_sql: str, title: str, period_column: str, municipality: str | None
) -> StatTable:
    where = "WHERE municipality_code = $municipality" if municipality else ""
    params = {"municipality": municipality} if municipality else {}
    grouped = f"""
        WITH g AS (
            SELECT {period_sql} AS period, municipality_code, certificate_type, count(*) AS n
            FROM {VIEW_NAME} {where} GROUP BY ALL
        )
        SELECT period, c.category, sum(n)::BIGINT FROM g JOIN certificate_categories c USING (certificate_type)
        GROUP BY ALL
        UNION ALL
        SELECT period, NULL, count(DISTINCT municipality_code) FROM g GROUP BY period
    """
    counts: dict[Any, dict[str | None, int]] = {}
    for period, category, n in con.execute(grouped, params).fetchall():
        counts.setdefault(period, {})[category] = n
    rows = []
    for period in sorted(counts):
        by_category = [counts[period].get(c, 0) for c in CATEGORIES]
        rows.append((period, *by_category, sum(by_category), counts[period][None]))
    scope = f" — {municipality}" if municipality else ""
    return StatTable(f"{title}{scope}", (period_column, *CATEGORIES, "計", "参加団体"), rows)


def monthly(con: duckdb.DuckDBPyConnection, municipality: str | None = None) -> StatTable:
    """Certificates per month (Japan time) by category, and the municipalities that issued in the month."""
    return _by_category(con, "printf('%04d-%02d', year, month)", "Certificates issued per month", "month",
                        municipality)


def fiscal_year(con: duckdb.DuckDBPyConnection, municipality: str | None = None) -> StatTable:
    """Certificates per fiscal year (April–March) by category, and the municipalities that issued in it."""
    fiscal_year_sql = f"CASE WHEN month >= {FISCAL_YEAR_FIRST_MONTH} THEN year ELSE year - 1 END"
    return _by_category(con, fiscal_year_sql, "Certificates issued per fiscal year", "fiscal_year", municipality)


def _share_by_municipality(con: duckdb.DuckDBPyConnection, flag_sql: str, join_sql: str, title: str,
                           flag_column: str, top: int) -> StatTable:
    query = f"""
        WITH per AS (
            SELECT municipality_code, count(*) AS n, count(*) FILTER (WHERE {flag_sql}) AS flagged
            FROM {VIEW_NAME} {join_sql} GROUP BY municipality_code
        )
        SELECT NULL AS code, NULL AS name, sum(n)::BIGINT, sum(flagged)::BIGINT, 0 AS rank FROM per
        UNION ALL
        SELECT * FROM (
            SELECT per.municipality_code, m.name, n, flagged, 1 FROM per
            LEFT JOIN municipalities m ON m.code = per.municipality_code
            ORDER BY n DESC, per.municipality_code LIMIT $top
        )
        ORDER BY rank, 3 DESC, 1
    """
    rows = [
        (code or "", name or (NATIONAL if code is None else ""), n, flagged, flagged / n if n else 0.0)
        for code, name, n, flagged, _ in con.execute(query, {"top": top}).fetchall()
    ]
    return StatTable(title, ("code", "municipality", "certificates", flag_column, "share"), rows,
                     frozenset({"share"}))


def off_hours(con: duckdb.DuckDBPyConnection, top: int = 10) -> StatTable:
    """Share issued outside municipal office hours (窓口時間外), nationally and for the `top` municipalities
    by certificates issued."""
    flag = (f"NOT (o.is_office_day AND issued_minute >= {OFFICE_OPENS_MINUTE} "
            f"AND issued_minute < {OFFICE_CLOSES_MINUTE})")
    return _share_by_municipality(con, flag, "JOIN office_days o ON o.day = issued_date",
                                  "Issued outside office hours (窓口時間外)", "outside_hours", top)


def other_municipality(con: duckdb.DuckDBPyConnection, top: int = 10) -> StatTable:
    """Share issued at a kiosk in another municipality (他市区町村), nationally and for the `top`
    municipalities by certificates issued."""
    return _share_by_municipality(con, "kiosk_municipality_code <> municipality_code", "",
                                  "Issued in another municipality (他市区町村)", "elsewhere", top)


def vendors(con: duckdb.DuckDBPyConnection) -> StatTable:
    """Certificates by kiosk vendor, with the vendor's share and its number of kiosks that issued."""
    rows = con.execute(f"""
        SELECT kiosk_vendor, count(*) AS n, count(DISTINCT kiosk_id) FROM {VIEW_NAME}
        GROUP BY kiosk_vendor ORDER BY n DESC, kiosk_vendor
    """).fetchall()
    total = sum(n for _, n, _ in rows)
    return StatTable(
        "Certificates by kiosk vendor",
        ("vendor", "certificates", "share", "kiosks"),
        [(vendor, n, n / total, kiosks) for vendor, n, kiosks in rows],
        frozenset({"share"}),
    )


def population_share(con: duckdb.DuckDBPyConnection, top: int = 10) -> StatTable:
    """Certificates issued over the period in the log as a share of the population: nationally (all
    municipalities' population), over the participating municipalities (those that issued), and for the
    `top` municipalities by that share. The log holds no personal identifier, so this counts certificates
    per resident, not distinct residents who used a kiosk. Certificates of a code missing from the
    reference data count in the national total only."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE issued_per_municipality AS "
                f"SELECT municipality_code AS code, count(*) AS n FROM {VIEW_NAME} GROUP BY ALL")
    total_n, total_population, part_n, part_population = con.execute("""
        SELECT (SELECT sum(n) FROM issued_per_municipality)::BIGINT,
               (SELECT sum(population) FROM municipalities)::BIGINT,
               sum(i.n)::BIGINT, sum(m.population)::BIGINT
        FROM issued_per_municipality i JOIN municipalities m USING (code)
    """).fetchall()[0]
    top_rows = con.execute("""
        SELECT code, m.name, m.population, i.n FROM issued_per_municipality i JOIN municipalities m USING (code)
        ORDER BY i.n / m.population DESC, code LIMIT $top
    """, {"top": top}).fetchall()
    part_n, part_population = part_n or 0, part_population or 0
    rows = [
        ("", NATIONAL, total_population, total_n, total_n / total_population),
        ("", PARTICIPATING, part_population, part_n, part_n / part_population if part_population else 0.0),
    ]
    rows += [(code, name, population, n, n / population) for code, name, population, n in top_rows]
    return StatTable("Certificates issued as a share of population",
                     ("code", "municipality", "population", "certificates", "share"), rows, frozenset({"share"}))


QUERIES = ("monthly", "fiscal-year", "off-hours", "other-municipality", "vendors", "population-share")
