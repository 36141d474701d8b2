"""How long it takes to build a synthetic register and simulate its days, on one core.

    .venv/bin/python bench/register_build.py [--population 1000000] [--days 30] [--code 131121]

Prints the build time of the register, the peak memory, the time to encode every record with
fastavro, and the time and event count of the simulated days.
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from datetime import UTC, datetime

import fastavro

from schemas.contracts import SCHEMA_DIR
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--code", default="131121")
    parser.add_argument("--start", default="2026-10-01T00:00:00+09:00")
    args = parser.parse_args()
    settings = load_settings()
    reference = load_reference_data()
    simulator = RegisterSimulator(
        reference, args.code, population=args.population, seed=settings.seed,
        start=datetime.fromisoformat(args.start).astimezone(UTC), font_path=settings.mincho_font,
    )
    t = time.perf_counter()
    records = simulator.register.records
    build = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"build: {len(records):,} residents of {simulator.municipality.name} in {build:.1f} s "
          f"({len(records) / build:,.0f}/s), peak RSS {rss_mb:,.0f} MB")

    named: dict = {}
    schema = fastavro.schema.load_schema(SCHEMA_DIR / "resident.avsc", named_schemas=named)
    out = io.BytesIO()
    t = time.perf_counter()
    for record in records:
        fastavro.schemaless_writer(out, schema, record)
    encode = time.perf_counter() - t
    print(f"encode: {len(records):,} records, {out.tell() / 1e6:,.0f} MB in {encode:.1f} s")

    t = time.perf_counter()
    count = sum(1 for _ in simulator.changes(args.days))
    simulate = time.perf_counter() - t
    print(f"simulate: {args.days} days, {count:,} events in {simulate:.1f} s "
          f"(includes the first copy of the state)")


if __name__ == "__main__":
    main()
