"""Dwellings and residents in a disaster's ledger, written straight into the disaster store's database through the
shared design's tables (`ledger_dwellings`, `ledger_residents`, owned by sinks.disaster_ledger): for the damage
assessment's tests and benchmark until they can build a ledger by declaring. Only the columns the assessment
reads are filled; the table definitions are the design's (CREATE TABLE IF NOT EXISTS: a real ledger's tables are
left as they are)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TABLES = """
    CREATE TABLE IF NOT EXISTS ledger_dwellings (
        disaster_id TEXT NOT NULL, dwelling_id TEXT NOT NULL, municipality_code TEXT NOT NULL, address TEXT NOT NULL,
        latitude REAL, longitude REAL, PRIMARY KEY (disaster_id, dwelling_id));
    CREATE TABLE IF NOT EXISTS ledger_residents (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL,
        household_number TEXT NOT NULL, dwelling_id TEXT NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code, resident_code));
"""


@dataclass(frozen=True)
class Dwelling:
    dwelling_id: str
    lon: float
    lat: float
    households: int = 1  # each of one resident


def add_dwellings(store_file: Path, disaster_id: str, municipality_code: str, dwellings: Iterable[Dwelling]) -> int:
    """Write the dwellings (and one resident per household) into the disaster's ledger; how many dwellings."""
    con = sqlite3.connect(store_file, isolation_level=None)
    try:
        con.executescript(_TABLES)
        con.execute("BEGIN IMMEDIATE")
        rows = list(dwellings)
        con.executemany("INSERT INTO ledger_dwellings VALUES (?, ?, ?, ?, ?, ?)",
                        [(disaster_id, d.dwelling_id, municipality_code, f"住所 {d.dwelling_id}", d.lat, d.lon)
                         for d in rows])
        con.executemany("INSERT INTO ledger_residents VALUES (?, ?, ?, ?, ?)",
                        [(disaster_id, municipality_code, f"{d.dwelling_id}-{h}", f"H-{d.dwelling_id}-{h}",
                          d.dwelling_id) for d in rows for h in range(d.households)])
        con.execute("COMMIT")
        return len(rows)
    finally:
        con.close()


def grid_dwellings(municipality_code: str, count: int, west: float, south: float, east: float, north: float,
                   seed: int = 1) -> list[Dwelling]:
    """`count` dwellings spread at random over the box, with one to three households each."""
    rng = np.random.default_rng(seed)
    lons, lats = rng.uniform(west, east, count), rng.uniform(south, north, count)
    households = rng.integers(1, 4, count)
    return [Dwelling(f"{municipality_code}-{i:07d}", float(lon), float(lat), int(h))
            for i, (lon, lat, h) in enumerate(zip(lons, lats, households, strict=True))]
