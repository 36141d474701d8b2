"""Analyst access: DuckDB over the backup, k-anonymous, scoped and audited (docs/domain.md §8.1).

An analyst session is opened for a named analyst and holds only the municipalities granted to them
(sinks.analyst_grants). Its tables are built from the history into an in-memory database:

- no identifier at all, neither plain nor pseudonymous (a per-person or per-household id would form
  groups of one, and would link a person's rows into a unique profile), and no names, exact dates,
  blocks, coordinates, previous addresses, 本籍 or seal images;
- every other column coarsened per municipality until each row has at least K - 1 identical rows
  (domain.anonymity), the rows of cells still below K left out, and the rows sorted, so that neither
  a column, a combination of columns nor the row order singles anybody out.

External access is then switched off and the configuration locked, so a query cannot reach the raw
Parquet files; every query is written to the audit log (who, the SQL, how many rows)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from domain.anonymity import (
    HOUSEHOLD_SIZE_CAPS,
    INCOME_BAND_BOUNDS_YEN,
    TAX_YEAR_BAND_WIDTHS,
    YEAR_BAND_WIDTHS,
    CellCounts,
    K,
    coarsening_levels,
)
from domain.errors import BclError
from sinks.analyst_grants import AnalystNotGrantedError, granted_municipalities
from sinks.audit import record_access
from sinks.encrypted_parquet import release
from sinks.snapshot_store import BaseSnapshotStore, latest_changes

JST_OFFSET_MS = 9 * 3600 * 1000  # Japan keeps no daylight saving time: Japan time is UTC + 9 h all year


class QueryError(BclError):
    pass


def _year_band(column: str, width: int) -> str:
    low = f"({width} * ({column} // {width}))"
    return f"CAST({low} AS VARCHAR) || '-' || CAST({low} + {width - 1} AS VARCHAR)"


def _household_size(column: str, cap: int) -> str:
    return f"CASE WHEN {column} >= {cap} THEN '{cap}+' ELSE CAST({column} AS VARCHAR) END"


def _income_band(column: str, bounds: Sequence[int]) -> str:
    cases = [f"WHEN {column} >= {bounds[-1]} THEN '{bounds[-1]}+'"]
    pairs = reversed(list(itertools.pairwise(bounds)))
    cases += [f"WHEN {column} >= {low} THEN '{low}-{high - 1}'" for low, high in pairs]
    return f"CASE {' '.join(cases)} END"


@dataclass(frozen=True)
class _View:
    """An analyst table: the SQL of its fine columns over the history, the coarsening ladder of each
    column (SQL per level, finest first, the last one withheld) and the order in which the levels are
    climbed (domain.anonymity). `_person` is who a row is about: it counts residents, and is not shown."""

    name: str
    doc: str
    fixed: tuple[str, ...]  # not coarsened: the municipality (a cell never spans two)
    base: str  # over the tables _history (the granted municipalities' history rows) and _latest (their latest state)
    ladders: Mapping[str, tuple[str, ...]]
    path: tuple[str, ...]

    def __post_init__(self) -> None:
        for column, ladder in self.ladders.items():
            if self.path.count(column) != len(ladder) - 1:  # the path ends with every column withheld
                raise ValueError(f"{self.name}: the path climbs {column} {self.path.count(column)} times, "
                                 f"its ladder has {len(ladder) - 1} steps")

    @property
    def columns(self) -> tuple[str, ...]:
        return self.fixed + tuple(self.ladders)


def _ladder(*levels: str, withheld: str = "VARCHAR") -> tuple[str, ...]:
    return (*levels, f"NULL::{withheld}")


_MUNICIPALITY = ("municipality_code", "prefecture", "municipality")
_NAMED = """SELECT municipality_code, address.prefecture AS prefecture, address.municipality AS municipality,
                   resident_code AS _person, sex AS sex_value, year(birth_date) AS birth_year"""
_CURRENT = "FROM _latest WHERE NOT removed AND status = 'CURRENT'"

_VIEWS = (
    _View(
        "residents",
        "current residents, one row each: municipality, area (大字・町 without 丁目), sex, birth years, "
        "household size",
        _MUNICIPALITY,
        f"""{_NAMED}, regexp_replace(address.town, '[一二三四五六七八九十〇]+丁目$', '') AS town_area,
                   count(*) OVER (PARTITION BY municipality_code, household_number) AS members {_CURRENT}""",
        {
            "area": _ladder("town_area"),
            "sex": _ladder("sex_value"),
            "birth_years": _ladder(*(_year_band("birth_year", w) for w in YEAR_BAND_WIDTHS)),
            "household_size": _ladder(*(_household_size("members", cap) for cap in HOUSEHOLD_SIZE_CAPS)),
        },
        ("birth_years", "household_size", "birth_years", "household_size", "sex", "area", "birth_years"),
    ),
    _View(
        "resident_services",
        "current residents, one row each: municipality, sex, birth years, household head, years of becoming "
        "a resident, seal registered, JPKI certificate",
        _MUNICIPALITY,
        f"""{_NAMED}, relationship = '世帯主' AS head, year(became_resident_on) AS resident_year,
                   seal IS NOT NULL AND seal.status = 'REGISTERED' AS seal,
                   coalesce(len(jpki_certificates), 0) > 0 AS jpki {_CURRENT}""",
        {
            "sex": _ladder("sex_value"),
            "birth_years": _ladder(*(_year_band("birth_year", w) for w in YEAR_BAND_WIDTHS)),
            "household_head": _ladder("head", withheld="BOOLEAN"),
            "resident_since_years": _ladder(*(_year_band("resident_year", w) for w in YEAR_BAND_WIDTHS)),
            "seal_registered": _ladder("seal", withheld="BOOLEAN"),
            "jpki_certificate": _ladder("jpki", withheld="BOOLEAN"),
        },
        ("resident_since_years", "birth_years", "resident_since_years", "birth_years", "resident_since_years",
         "household_head", "sex", "seal_registered", "birth_years", "jpki_certificate"),
    ),
    _View(
        "resident_taxes",
        "current residents with a tax record, one row each (the latest fiscal year): municipality, sex, birth "
        "years, fiscal year, income band (yen), tax exempt, payment status",
        _MUNICIPALITY,
        f"""{_NAMED}, tax_records[-1].fiscal_year AS year_assessed, tax_records[-1].income_yen AS income,
                   tax_records[-1].tax_exempt AS exempt, tax_records[-1].payment_status AS payment
            {_CURRENT} AND len(tax_records) > 0""",
        {
            "sex": _ladder("sex_value"),
            "birth_years": _ladder(*(_year_band("birth_year", w) for w in TAX_YEAR_BAND_WIDTHS)),
            "fiscal_year": _ladder("year_assessed", withheld="INTEGER"),
            "income_band_yen": _ladder(*(_income_band("income", bounds) for bounds in INCOME_BAND_BOUNDS_YEN)),
            "tax_exempt": _ladder("exempt", withheld="BOOLEAN"),
            "tax_payment_status": _ladder("payment"),
        },
        ("birth_years", "income_band_yen", "tax_payment_status", "sex", "tax_exempt", "birth_years", "fiscal_year",
         "income_band_yen"),
    ),
    _View(
        "register_changes",
        "applied changes: municipality, change type, month of the change (Japan time); each cell holds changes "
        "of at least k residents",
        ("municipality_code",),
        f"""SELECT municipality_code, resident_code AS _person, change_type AS kind,
                   strftime(epoch_ms(epoch_ms(event_time) + {JST_OFFSET_MS}), '%Y-%m') AS month_of_change
            FROM _history""",
        {
            "change_type": _ladder("kind"),
            "month": _ladder("month_of_change", "substr(month_of_change, 1, 4)"),
        },
        ("month", "change_type", "month"),
    ),
)

ANALYST_TABLES = {view.name: view.doc for view in _VIEWS}


def _levelled(view: _View, levels: Mapping[str, int]) -> str:
    return ", ".join(f"{ladder[levels[column]]} AS {column}" for column, ladder in view.ladders.items())


def _measure(con: duckdb.DuckDBPyConnection, view: _View, code: str, levels: Mapping[str, int]) -> CellCounts:
    columns = list(view.ladders)
    row = con.execute(f"""
        WITH t AS (SELECT _person, {_levelled(view, levels)} FROM _base WHERE municipality_code = $code),
             cells AS (SELECT count(*) AS n, count(DISTINCT _person) AS persons FROM t GROUP BY {', '.join(columns)})
        SELECT (SELECT count(*) FROM t), (SELECT coalesce(sum(n), 0) FROM cells WHERE persons < {K})""",
                      {"code": code}).fetchone()
    assert row is not None
    return CellCounts(rows=row[0], rows_in_small_cells=row[1])


def _build(con: duckdb.DuckDBPyConnection, view: _View, municipalities: Sequence[str]) -> None:
    con.execute(f"CREATE TEMP TABLE _base AS {view.base}")
    parts = []
    for code in municipalities:
        levels = coarsening_levels(tuple(view.ladders), view.path, lambda lv, code=code: _measure(con, view, code, lv))
        parts.append(f"SELECT {', '.join(view.fixed)}, _person, {_levelled(view, levels)} FROM _base "
                     f"WHERE municipality_code = '{code}'")  # a checked 6-digit code (analyst_grants)
    columns = ", ".join(view.columns)
    # Cells below K are left out; sorting on every column leaves no trace of the records' order
    # (the history is in household order, so neighbouring rows would otherwise be one household).
    con.execute(f"""
        CREATE TABLE {view.name} AS
        SELECT {columns} FROM (
            SELECT *, count(DISTINCT _person) OVER (PARTITION BY {columns}) AS _persons
            FROM ({' UNION ALL '.join(parts)}))
        WHERE _persons >= {K} ORDER BY ALL""")
    con.execute("DROP TABLE _base")


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def analyst_connection(store: BaseSnapshotStore, municipalities: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """The k-anonymous tables of these municipalities, in a database that can read nothing else."""
    if not store.has_history():
        raise QueryError("the snapshot store holds no history yet: run the materialiser first")
    if not municipalities:
        raise QueryError("an analyst connection needs at least one municipality")
    con = duckdb.connect()
    granted = "list_contains($codes, municipality_code)"
    # Read once: the granted municipalities' history and its latest state, which the tables are built from.
    # Without the seal images (most of the bytes): the tables need only the seal's status.
    con.execute(f"""CREATE TEMP TABLE _history AS
                    SELECT * REPLACE (CASE WHEN seal IS NOT NULL THEN struct_pack(status := seal.status) END AS seal)
                    FROM {store.history_relation(con)} WHERE {granted}""", {"codes": list(municipalities)})
    con.execute(f"CREATE TEMP TABLE _latest AS {latest_changes('_history')}")
    for view in _VIEWS:
        _build(con, view, municipalities)
    con.execute("DROP TABLE _history")
    con.execute("DROP TABLE _latest")
    release(con)  # the decrypting scans of the history: an analyst's SQL must not reach them
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> QueryResult:
    try:
        cur = con.execute(sql)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc
    if cur.description is None:
        return QueryResult([], [])
    return QueryResult([d[0] for d in cur.description], cur.fetchall())


class AnalystSession:
    """One analyst's queries over the municipalities granted to them; each query is audited."""

    def __init__(self, store: BaseSnapshotStore, grants_file: Path, audit_file: Path, analyst: str) -> None:
        self.analyst = analyst
        self._audit_file = audit_file
        try:
            self.municipalities = granted_municipalities(grants_file, analyst)
        except AnalystNotGrantedError:
            record_access(audit_file, "analyst.query", [], 0, analyst=analyst, outcome="refused: no grant")
            raise
        self._con = analyst_connection(store, self.municipalities)

    def query(self, sql: str) -> QueryResult:
        try:
            result = run_query(self._con, sql)
        except QueryError as exc:
            self._audit(sql, 0, f"failed: {exc}")
            raise
        self._audit(sql, len(result.rows), "answered")
        return result

    def _audit(self, sql: str, rows: int, outcome: str) -> None:
        record_access(self._audit_file, "analyst.query", list(self.municipalities), rows, analyst=self.analyst,
                      sql=sql, outcome=outcome)
