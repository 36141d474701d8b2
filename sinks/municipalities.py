"""The municipalities of the reference data (municipalities.csv, see its SOURCES.md) as DuckDB and Arrow
tables, for the statistics (population share) and the national-year generator.

Only the billing units are kept: designated cities, cities, Tokyo's special wards, towns and villages
(the wards of designated cities are parts of their city; a certificate names the city). Municipalities
without residents (the six Northern Territories villages, population 0 or missing) are left out.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from schemas.errors import BclError

MUNICIPALITIES_FILE = "municipalities.csv"
BILLING_KINDS = ("designated_city", "city", "special_ward", "town", "village")
VIEW_NAME = "municipalities"


class ReferenceDataMissingError(BclError):
    pass


def _csv_path(reference_data_dir: Path) -> Path:
    path = reference_data_dir / MUNICIPALITIES_FILE
    if not path.is_file():
        raise ReferenceDataMissingError(
            f"no {MUNICIPALITIES_FILE} in {reference_data_dir}: point reference_data_dir (BCL_REFERENCE_DATA_DIR) "
            "at the reference-data folder"
        )
    return path


def register_municipalities(con: duckdb.DuckDBPyConnection, reference_data_dir: Path, name: str = VIEW_NAME) -> None:
    """A table `name`(code, prefecture, name, kind, population) of the billing units, codes as text."""
    path = str(_csv_path(reference_data_dir)).replace("'", "''")
    kinds = ", ".join(f"'{k}'" for k in BILLING_KINDS)
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT code, prefecture, name, kind, CAST(population AS BIGINT) AS "
        f"population FROM read_csv('{path}', header = true, all_varchar = true) "
        f"WHERE kind IN ({kinds}) AND coalesce(population, '') <> '' AND CAST(population AS BIGINT) > 0 "
        "ORDER BY code"
    )


def read_municipalities(reference_data_dir: Path) -> pa.Table:
    """The billing units as an Arrow table ordered by code."""
    con = duckdb.connect()
    try:
        register_municipalities(con, reference_data_dir)
        return con.sql(f"SELECT * FROM {VIEW_NAME}").to_arrow_table()
    finally:
        con.close()
