"""The billing units of domain.municipalities as DuckDB and Arrow tables, for the statistics (population
share), billing and the national-year generator."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from domain.municipalities import billing_units

VIEW_NAME = "municipalities"


def municipalities_table() -> pa.Table:
    """The billing units as an Arrow table (code, prefecture, name, kind, population) ordered by code."""
    units = billing_units()
    return pa.table({
        "code": [m.code for m in units],
        "prefecture": [m.prefecture for m in units],
        "name": [m.name for m in units],
        "kind": [m.kind for m in units],
        "population": pa.array([m.population for m in units], pa.int64()),
    })


def register_municipalities(con: duckdb.DuckDBPyConnection, name: str = VIEW_NAME) -> None:
    """A table `name`(code, prefecture, name, kind, population) of the billing units, codes as text."""
    con.register(f"{name}_arrow", municipalities_table())
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_arrow ORDER BY code")
    con.unregister(f"{name}_arrow")
