"""Dwellings and residents in a disaster's ledger, written straight into it (sinks.disaster_ledger's put_dwellings
and put_residents, over the store of the composition root): for the damage assessment's tests and benchmark, which
need dwellings at chosen coordinates (and many of them) without building a register backup first. Only the identity
columns the assessment never reads are placeholders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sinks.disaster_ledger import COLUMNS, put_dwellings, put_residents
from tests.platforms import make_platform


@dataclass(frozen=True)
class Dwelling:
    dwelling_id: str
    lon: float
    lat: float
    households: int = 1  # each of one resident


def ledger_row(disaster_id: str, municipality_code: str, resident_code: str, dwelling_id: str,
               **values: object) -> tuple[object, ...]:
    """One row of the view `ledger_residents` in COLUMNS order (for put_residents): a current resident of
    `dwelling_id`, unchanged since the base (the current columns equal to the base's), with placeholder identity;
    `values` set any column (the base address is the dwelling's, whatever `address` says)."""
    row: dict[str, object] = {
        "disaster_id": disaster_id, "municipality_code": municipality_code, "resident_code": resident_code,
        "in_base": 1, "family_name": "被災", "given_name": "太郎", "family_name_kana": "ヒサイ",
        "given_name_kana": "タロウ", "birth_date": "1970-01-01", "sex": "MALE", "individual_number": "000000000000",
        "jpki_serials": "", "household_head_name": "被災 太郎", "relationship": "世帯主",
        "address": f"住所 {dwelling_id}", "dwelling_id": dwelling_id, "household_number": f"H-{resident_code}",
        "current_status": "CURRENT", "deletion_reason": None, "deleted_on": None, "flags": "", "review_reasons": "",
        "moved_to": None}
    row |= values
    row |= {"current_address": values.get("current_address", row["address"]),
            "current_dwelling_id": values.get("current_dwelling_id", row["dwelling_id"]),
            "current_household_number": values.get("current_household_number", row["household_number"])}
    return tuple(row[c] for c in COLUMNS)


def _resident(disaster_id: str, municipality_code: str, d: Dwelling, household: int) -> tuple[object, ...]:
    return ledger_row(disaster_id, municipality_code, f"{d.dwelling_id}-{household}", d.dwelling_id,
                      household_number=f"H-{d.dwelling_id}-{household}")


def add_dwellings(data_dir: Path, disaster_id: str, municipality_code: str, dwellings: Iterable[Dwelling]) -> int:
    """Write the dwellings (and one resident per household) into the disaster's ledger; how many dwellings."""
    ledger = make_platform(data_dir).disaster_ledger
    rows = list(dwellings)
    con = ledger.store.connection
    with ledger.store.transaction():
        put_dwellings(con, [(disaster_id, d.dwelling_id, municipality_code, f"住所 {d.dwelling_id}", d.lat, d.lon)
                            for d in rows])
        put_residents(con, [_resident(disaster_id, municipality_code, d, h) for d in rows for h in range(d.households)])
    ledger.store.close()
    return len(rows)


def grid_dwellings(municipality_code: str, count: int, west: float, south: float, east: float, north: float,
                   seed: int = 1) -> list[Dwelling]:
    """`count` dwellings spread at random over the box, with one to three households each."""
    rng = np.random.default_rng(seed)
    lons, lats = rng.uniform(west, east, count), rng.uniform(south, north, count)
    households = rng.integers(1, 4, count)
    return [Dwelling(f"{municipality_code}-{i:07d}", float(lon), float(lat), int(h))
            for i, (lon, lat, h) in enumerate(zip(lons, lats, households, strict=True))]
