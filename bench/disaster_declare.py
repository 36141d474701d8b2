"""Declaring a disaster for a large municipality (its 被災者台帳 built from the backup as of 発災日時) against a
point-in-time restore of the same municipality as of the same instant, in the same run (target: at most 2×).

    .venv/bin/python bench/disaster_declare.py [--population 1000000] [--municipality 131121] [--runs 2]

The history is bench/restore.py's (its builder: the full load in parts of 50,000 rows, a week of changes in parts
of 1,000), untimed; the disaster occurs in the middle of the week. Timed, alternately, --runs times each: the
restore (Parquet, current records only: the ledger's residents) and the declaration (the store's transaction, the
point-in-time read and the ledger's transaction), with the load average before each pair and each pair's ratio
(other work on a shared machine moves both); then `refresh` (the register-derived part recomputed from the
backup now) and `apply_register_states` of the week's changes after the disaster.

With --history DIR the built history is kept in DIR (the snapshot store and the week's changes) and a later run
with the same DIR starts from it instead of building it again (minutes at a million residents); the disaster
store there is made anew each run."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine
from bench.restore import simulated_register
from domain.disasters import declaration
from sinks.restore import restore
from streams.platform import Platform
from streams.settings import load_settings
from tests.sinks.history_factory import append_events


def timed(what: str, fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    print(f"  {what:58}{seconds:8.2f} s")
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--municipality", default="131121", help="default: 世田谷区, scaled to --population")
    parser.add_argument("--history", type=Path, help="keep the built history here and reuse it in later runs")
    parser.add_argument("--runs", type=int, default=2, help="restores and declarations, alternately (default 2)")
    args = parser.parse_args()
    code = args.municipality
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        root = args.history or Path(tmp)
        kept = root / f"week-{code}-{args.population}.pickle"
        shutil.rmtree(root / "data" / "disaster", ignore_errors=True)
        platform = Platform(load_settings({"data_dir": root / "data"}))
        if kept.exists():
            week = pickle.loads(kept.read_bytes())
            print(f"history of {args.population:,} residents reused from {root}")
        else:
            _, load, week = simulated_register(code, args.population)
            append_events(platform.snapshot_store, code, load, 50_000)
            append_events(platform.snapshot_store, code, week, 1_000)
            del load
            if args.history:
                kept.write_bytes(pickle.dumps(week))
        occurred = week[len(week) // 2]["event_time"]
        ledger = platform.disaster_ledger
        restores, declares = [], []
        for run in range(1, args.runs + 1):
            print(f"  run {run}, load average {os.getloadavg()[0]:.1f}")
            seconds, count = timed(f"restore as of the disaster, current records (run {run})",
                                   lambda: restore(platform.snapshot_store, code, occurred, root / "r.parquet",
                                                   current_only=True))
            restores.append(seconds)

            def declare() -> object:
                now = dt.datetime.now(dt.UTC)
                return ledger.declare(declaration(name="ベンチ地震", kind="earthquake", municipality_codes=[code],
                                                  occurred_at=occurred, now=now), now)

            seconds, (disaster, [build]) = timed(f"declare, ledger built (run {run})", declare)
            declares.append(seconds)
            assert build.residents == count, (build, count)  # type: ignore[union-attr]
            print(f"  {'declare / restore of this run':58}{declares[-1] / restores[-1]:8.2f}")
        print(f"  {count:,} residents, {build.dwellings:,} dwellings in the ledger")  # type: ignore[union-attr]
        after = [e["after"] for e in week if e["event_time"] > occurred and e["after"] is not None]
        timed(f"apply_register_states of the {len(after):,} changes after it (both ledgers)",
              lambda: ledger.apply_register_states(after))
        timed("refresh from the backup now (one ledger)",
              lambda: ledger.refresh(disaster.disaster_id, week[-1]["event_time"]))
    ratios = sorted(d / r for d, r in zip(declares, restores, strict=True))
    print(f"\ndeclare / restore: {min(declares) / min(restores):.2f} (fastest of each: {min(declares):.2f} s, "
          f"{min(restores):.2f} s; target at most 2); of each run: {', '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
