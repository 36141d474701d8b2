"""The latency the certificate worker adds to a disaster-certificate request: reading the household's facts from
the disaster store (sinks.household_facts), one query per open disaster asked.

    .venv/bin/python bench/household_facts.py [--population 100000] [--lookups 5000]

Set-up (untimed): 女川町's synthetic register of --population residents as the backup; an earthquake declared a day
after the full load (its ledger built from the backup into the real disaster store file); about half the dwellings
surveyed (one area would do, but the survey API is per dwelling: the rows are written in one transaction here).
Then --lookups look-ups of random residents through the worker's reader (read-only connection, as the worker
opens it): p50, p99 and max, cold (the first look-up, opening the store) apart. No cluster: the figure is the store
read alone, which is what the worker's request path adds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's tests.sinks.history_factory

from bench.disaster_world import ONAGAWA, declared_onagawa
from bench.machine import machine
from sinks.household_facts import HouseholdFactsReader
from streams.platform import Platform
from streams.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=5000)
    args = parser.parse_args()
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="bench-facts-"))
    settings = load_settings({"data_dir": root / "var"}, environ={})
    platform = Platform(settings)
    disaster, load = declared_onagawa(platform, args.population)
    # The survey and application tables, as the staff's processes create them.
    tables = (platform.damage_assessment, platform.disaster_applications)
    store = platform.disaster_store
    with store.transaction():  # the dwellings whose (hex) id ends in 0-7, about half, surveyed 半壊
        store.connection.execute(
            "INSERT INTO dwelling_surveys (disaster_id, dwelling_id, municipality_code, level, source, surveyed_by, "
            "surveyed_on, recorded_at) SELECT disaster_id, dwelling_id, municipality_code, 'HANKAI', 'SURVEY', "
            "'bench', '2026-11-11', 0 FROM ledger_dwellings WHERE disaster_id=? AND substr(dwelling_id, -1) < '8'",
            (disaster.disaster_id,))
    del tables
    store.close()
    records = [{"municipality_code": ONAGAWA, "resident_code": e["after"]["resident_code"]} for e in load]
    print(f"ledger of {ONAGAWA}: {len(records):,} residents, disaster {disaster.disaster_id}")
    reader = HouseholdFactsReader(settings.disaster_store_file)
    rng = random.Random(5)
    started = time.perf_counter()
    first = reader.disaster_facts(disaster.disaster_id, rng.choice(records))
    cold_ms = (time.perf_counter() - started) * 1000
    timings, found, assessed = [], 0, 0
    for _ in range(args.lookups):
        record = rng.choice(records)
        started = time.perf_counter()
        facts = reader.disaster_facts(disaster.disaster_id, record)
        timings.append((time.perf_counter() - started) * 1000)
        found += facts is not None
        assessed += facts is not None and facts.assessed
    reader.close()
    timings.sort()
    print(f"cold (opening the store): {cold_ms:.2f} ms; first found: {first is not None}")
    print(f"{args.lookups} look-ups: p50 {statistics.median(timings):.3f} ms, "
          f"p99 {timings[int(len(timings) * 0.99) - 1]:.3f} ms, max {timings[-1]:.3f} ms "
          f"({found} in the ledger, {assessed} assessed)")


if __name__ == "__main__":
    main()
