"""Point-in-time restore of a large municipality, with and without checkpoints, against a Parquet copy of the
same number of rows in the same run.

    .venv/bin/python bench/restore.py [--population 1000000] [--municipality 131121]

The history is written as the materialiser writes it (parts of 50,000 rows for the full load, then a week of
changes in parts of 1,000), untimed. Timed, each after the history it needs:
  copy: DuckDB reading a Parquet file of as many rows as the register and writing them to Parquet (zstd);
  full scan: today's restore (no checkpoint), before and after the week;
  checkpointed: the restore from the last checkpoint at or before the instant plus the parts after it,
    right after the full load's checkpoint, after the week (checkpoint + the week's parts), and after a
    second checkpoint; and the time to write each checkpoint."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from domain.japan_time import JST
from sinks.register_checkpoints import write_checkpoint
from sinks.restore import restore
from sinks.snapshot_store import ParquetSnapshotStore
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.sinks.history_factory import append_events

START = dt.datetime(2026, 11, 9, tzinfo=JST)


def timed(what: str, fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    print(f"  {what:58}{seconds:8.2f} s")
    return seconds


def simulated_register(code: str, population: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The full load of `code` scaled to `population` and a week of its changes, from the register simulator seeded
    as the settings say (untimed by the benches; prints how long it took)."""
    t0 = time.perf_counter()
    sim = RegisterSimulator(load_reference_data(), code, population=population, seed=load_settings().seed,
                            start=START, font_path=load_settings().mincho_font)
    load, week = list(sim.full_load()), list(sim.changes(7))
    print(f"{len(load):,} residents and {len(week):,} changes in a week, built in {time.perf_counter() - t0:.0f} s")
    return load, week


def machine() -> str:
    return (f"machine: {platform.node()}, {platform.processor() or platform.machine()}, "
            f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--municipality", default="131121", help="default: 世田谷区, scaled to --population")
    args = parser.parse_args()
    code = args.municipality
    print(machine())
    load, week = simulated_register(code, args.population)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = ParquetSnapshotStore(root / "snapshots")
        append_events(store, code, load, 50_000)
        plain = ParquetSnapshotStore(root / "plain")
        out = root / "restore.parquet"
        con = duckdb.connect()
        # The copy is of plain Parquet (the store's files are encrypted): the restores pay for decryption.
        con.execute(f"""COPY (SELECT * FROM {store.history_relation(con)})
                        TO '{root}/rows.parquet' (FORMAT parquet, COMPRESSION zstd)""")

        def copy() -> None:
            con.execute(f"COPY (SELECT * FROM '{root}/rows.parquet') TO '{root}/copy.parquet' "
                        "(FORMAT parquet, COMPRESSION zstd)")

        def run(s: ParquetSnapshotStore, instant: dt.datetime):  # type: ignore[no-untyped-def]
            return lambda: restore(s, code, instant, out)

        after_load, after_week = START + dt.timedelta(hours=1), week[-1]["event_time"]
        print("before the week of changes:")
        copy_s = timed(f"copy of {len(load):,} Parquet rows", copy)
        full_s = timed("restore, full scan (today)", run(store, after_load))
        timed("checkpoint (the full load)", lambda: write_checkpoint(store, code))
        ck_s = timed("restore from the checkpoint", run(store, after_load))
        copy2_s = timed(f"copy of {len(load):,} Parquet rows (again)", copy)
        append_events(store, code, week, 1_000)
        shutil.copytree(store.history_dir, plain.history_dir)
        print(f"after the week ({len(week):,} changes in {-(-len(week) // 1000)} parts):")
        full2_s = timed("restore, full scan (today)", run(plain, after_week))
        ckw_s = timed("restore from the full load's checkpoint + the week", run(store, after_week))
        timed("checkpoint (previous one + the week)", lambda: write_checkpoint(store, code))
        ck2_s = timed("restore from the new checkpoint", run(store, after_week))
        copy3_s = timed(f"copy of {len(load):,} Parquet rows (again)", copy)
    copy_m = min(copy_s, copy2_s, copy3_s)
    print(f"\nratios to the fastest copy ({copy_m:.2f} s): full scan {full_s / copy_m:.2f} before, "
          f"{full2_s / copy_m:.2f} after the week; checkpointed {ck_s / copy_m:.2f} before, "
          f"{ckw_s / copy_m:.2f} after the week from the old checkpoint, {ck2_s / copy_m:.2f} from the new one")


if __name__ == "__main__":
    main()
