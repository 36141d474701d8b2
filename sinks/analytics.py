"""Analyst access: DuckDB over the snapshots, with identifying fields never in plain text (docs/domain.md §8).

The analyst tables are built from the history into an in-memory database, with the individual
number, the resident code and the household number replaced by keyed pseudonyms, and names, exact
birth dates, block numbers and seal images left out. External access is then switched off and the
configuration locked, so a query cannot reach the raw Parquet files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from domain.errors import BclError
from sinks.snapshot_store import BaseSnapshotStore, latest_changes


class QueryError(BclError):
    pass


ANALYST_TABLES = {
    "residents": "latest state of every record: pseudonymous ids, household, sex, birth year, town, status, "
    "seal and JPKI flags, latest tax year figures",
    "register_changes": "every applied change: municipality, pseudonymous resident id, change type, times",
}


def _pseudonym(column: str) -> str:
    # Keyed SHA-256: stable within one deployment (joins work), not reversible without the key.
    return f"sha256($key || ':' || {column})"


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def analyst_connection(store: BaseSnapshotStore, pseudonym_key: str) -> duckdb.DuckDBPyConnection:
    if not store.has_history():
        raise QueryError("the snapshot store holds no history yet: run the materialiser first")
    con = duckdb.connect()
    rel = store.history_relation(con)
    params = {"key": pseudonym_key}
    con.execute(f"""
        CREATE TABLE residents AS
        SELECT municipality_code,
               {_pseudonym('resident_code')} AS resident_id,
               {_pseudonym('individual_number')} AS individual_number_id,
               {_pseudonym("municipality_code || household_number")} AS household_id,
               relationship, sex, year(birth_date) AS birth_year,
               address.prefecture AS prefecture, address.municipality AS municipality, address.town AS town,
               address.latitude AS town_latitude, address.longitude AS town_longitude,
               became_resident_on, address_set_on, status, deletion_reason, deleted_on,
               seal IS NOT NULL AND seal.status = 'REGISTERED' AS seal_registered,
               len(jpki_certificates) AS jpki_certificates,
               tax_records[-1].fiscal_year AS tax_fiscal_year, tax_records[-1].income_yen AS income_yen,
               tax_records[-1].tax_yen AS tax_yen, tax_records[-1].tax_exempt AS tax_exempt,
               tax_records[-1].payment_status AS tax_payment_status
        FROM ({latest_changes(rel)}) WHERE NOT removed""", params)
    con.execute(f"""
        CREATE TABLE register_changes AS
        SELECT municipality_code, {_pseudonym('resident_code')} AS resident_id, sequence, change_type,
               event_time, event_notified_on AS notified_on, sent_at
        FROM {rel}""", params)
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
