"""Bulk area registration (docs/domain.md §6.2): one damage level for every dwelling inside a GeoJSON area, for
100,000 dwellings of one municipality's ledger, on the disaster store (SQLite, WAL, synchronous=FULL).

    .venv/bin/python bench/disaster_area.py [--dwellings 100000] [--municipality 131121]

The dwellings (default: 世田谷区) are written into the ledger tables untimed, spread over the municipality's
sample towns (each at a town centroid with up to ±0.004° of jitter, one to three households each). The area is a
detailed flood zone: the hull of every dwelling widened by 0.005°, drawn with about 1,000 vertices, so every
dwelling is inside. Timed, each in the bench's process:
  reading the GeoJSON (parse, validity, union); the municipality's extent (hull of towns and dwellings);
  the selection alone (shapely intersects_xy over the NumPy arrays of the dwellings' coordinates);
  preview (read the dwellings, extent, selection, current levels, households: what the staff page shows);
  apply on an unassessed ledger (100,000 current rows, 100,000 history rows, the area, 10 outbox events,
    one transaction, committed with synchronous=FULL);
  apply again with another level (every dwelling changes: updates instead of inserts);
  apply the same area and level again (nothing changes: no write but the area row).
The machine is named with its core count and CPU model; it is shared, so run it twice and read both."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import shapely

from bench.machine import machine
from domain.damage_levels import DamageLevel
from domain.disaster_area import inside, municipality_extent, parse_area, town_points
from domain.disasters import declaration
from tests.ledger_dwellings_factory import Dwelling, add_dwellings
from tests.platforms import make_platform


def timed(what: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = fn()
    print(f"  {what:64}{time.perf_counter() - t0:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dwellings", type=int, default=100_000)
    parser.add_argument("--municipality", default="131121", help="default: 世田谷区")
    args = parser.parse_args()
    code, count = args.municipality, args.dwellings
    print(machine())
    towns = np.asarray(town_points(code)[1:] or town_points(code))
    rng = np.random.default_rng(1)
    at = towns[rng.integers(0, len(towns), count)] + rng.uniform(-0.004, 0.004, (count, 2))
    households = rng.integers(1, 4, count)
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        store_platform = make_platform(data_dir)
        disaster = store_platform.disaster_store.declare(declaration(
            name="ベンチマーク豪雨", kind="flood", municipality_codes=[code], occurred_at=now - dt.timedelta(days=1),
            now=now), now)
        t0 = time.perf_counter()
        add_dwellings(data_dir, disaster.disaster_id, code,
                      [Dwelling(f"{code}-{i:07d}", float(lon), float(lat), int(h))
                       for i, ((lon, lat), h) in enumerate(zip(at, households, strict=True))])
        print(f"{count:,} dwellings ({int(households.sum()):,} households) of {code} in the ledger, written in "
              f"{time.perf_counter() - t0:.1f} s (untimed below)")
        zone = shapely.MultiPoint(at).convex_hull.buffer(0.005, quad_segs=250)
        text = shapely.to_geojson(zone)
        print(f"the area: {len(zone.exterior.coords):,} vertices, {len(text) / 1024:.0f} KiB of GeoJSON")

        assessment = store_platform.damage_assessment
        area = timed("read the GeoJSON (parse, validity, union)", lambda: parse_area(text))
        lons, lats = at[:, 0].copy(), at[:, 1].copy()
        timed("the municipality's extent (hull of towns and dwellings)", lambda: municipality_extent(code, lons, lats))
        mask = timed(f"selection alone: {count:,} points, intersects_xy", lambda: inside(area, lons, lats))
        assert mask.all()
        preview = timed("preview (dwellings, households, surveyed)", lambda: assessment.preview_area(
            disaster.disaster_id, code, area, DamageLevel.ZENKAI))
        print(f"    {preview.dwellings:,} dwellings, {preview.households:,} households, {preview.surveyed} surveyed")
        for level, what in ((DamageLevel.ZENKAI, "apply, unassessed ledger (inserts)"),
                            (DamageLevel.DAIKIBO_HANKAI, "apply again, another level (updates)"),
                            (DamageLevel.DAIKIBO_HANKAI, "apply again, the same level (no change)")):
            applied = timed(what, lambda level=level: assessment.apply_area(
                disaster.disaster_id, code, area, level, staff="ベンチ", now=dt.datetime.now(dt.UTC)))
            print(f"    {applied.preview.changes:,} changed, {applied.events} events")
        print(f"store file: {os.path.getsize(store_platform.settings.disaster_store_file) / 2**20:.0f} MiB; "
              f"outbox {json.dumps(store_platform.disaster_store.outbox_counts())}")


if __name__ == "__main__":
    main()
