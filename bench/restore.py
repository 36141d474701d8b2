"""Point-in-time restore of a large municipality, with and without checkpoints, against a Parquet copy of the
same number of rows in the same run; with --weeks N, over N weeks of changes with a checkpoint each week.

    .venv/bin/python bench/restore.py [--population 1000000] [--municipality 131121] [--weeks 1]

The history is written as the materialiser writes it (parts of 50,000 rows for the full load, then the changes
in parts of 1,000), untimed. Timed, each after the history it needs:
  copies (the baselines): DuckDB copying as many rows as the register to Parquet (zstd), twice: the encrypted
    copy reads the store's own encrypted parts of the full load and writes an encrypted file, as a restore does
    (the fair baseline: the same decryption and encryption); the plain copy reads a plain Parquet file of the
    same rows and writes a plain one;
  full scan: the restore without a checkpoint, before and after the week;
  checkpointed: the restore from the last checkpoint at or before the instant plus the parts after it,
    right after the full load's checkpoint, after the week (checkpoint + the week's parts), and after a
    second checkpoint; and the time to write each checkpoint.
With --weeks N > 1, then weeks 2..N of changes (the simulator's rate), a checkpoint of every week (the
compactor: `bcl backup checkpoint`): in odd weeks the checkpoint of the weeks before runs in another process
while the week's parts are appended, then the week's own is written; even weeks' parts are appended alone, so
the appends' time with and without the compactor running are compared in the same run. At the end: the restore
from the last checkpoint, from it plus a week of parts, and the full scan of the whole history, against the same
copies."""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from bench.machine import machine
from domain.japan_time import JST
from sinks import encrypted_parquet
from sinks.register_checkpoints import write_checkpoint
from sinks.restore import restore
from sinks.snapshot_store import ParquetSnapshotStore
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.sinks.history_factory import append_events

START = dt.datetime(2026, 11, 9, tzinfo=JST)


def timed(what: str, fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    print(f"  {what:62}{seconds:8.2f} s", flush=True)
    return seconds


def simulated_register(code: str, population: int) -> tuple[RegisterSimulator, list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """The register simulator of `code` scaled to `population` and seeded as the settings say, its full load and
    its first week of changes (untimed by the benches; prints how long it took)."""
    t0 = time.perf_counter()
    settings = load_settings()
    sim = RegisterSimulator(load_reference_data(), code, population=population, seed=settings.seed,
                            start=START, font_path=settings.mincho_font)
    load, week = list(sim.full_load()), list(sim.changes(7))
    print(f"{len(load):,} residents and {len(week):,} changes in a week, built in {time.perf_counter() - t0:.0f} s")
    return sim, load, week


def compactor(snapshots: str, code: str, ready: Any) -> None:
    """The compactor in a process of its own: one checkpoint of the municipality (as `bcl backup checkpoint`)."""
    store = ParquetSnapshotStore(Path(snapshots))
    ready.set()  # started (imports done): the checkpoint lists the parts there are now, then writes
    write_checkpoint(store, code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--municipality", default="131121", help="default: 世田谷区, scaled to --population")
    parser.add_argument("--weeks", type=int, default=1, help="weeks of changes after the full load (default 1)")
    args = parser.parse_args()
    code = args.municipality
    print(machine())
    sim, load, week = simulated_register(code, args.population)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = ParquetSnapshotStore(root / "snapshots")
        append_events(store, code, load, 50_000)
        loaded = store.history_parts(code)
        out = root / "restore.parquet"
        con = duckdb.connect()
        con.execute(f"""COPY (SELECT * FROM {store.history_relation(con)})
                        TO '{root}/rows.parquet' (FORMAT parquet, COMPRESSION zstd)""")
        key = store.write_key(code)

        def copy_plain() -> None:
            con.execute(f"COPY (SELECT * FROM '{root}/rows.parquet') TO '{root}/copy.parquet' "
                        "(FORMAT parquet, COMPRESSION zstd)")

        def copy_encrypted() -> None:
            # The store's encrypted parts of the full load, decrypted, written encrypted: what a restore pays
            # for the files alone.
            copying = duckdb.connect()
            encrypted_parquet.write_query(copying, store.cipher, f"SELECT * FROM {store.read_files(copying, loaded)}",
                                          root / "copy.enc.parquet", key)

        copies: dict[str, list[float]] = {"encrypted": [], "plain": []}

        def copies_now() -> None:
            copies["encrypted"].append(timed(f"copy of {len(load):,} rows, encrypted Parquet", copy_encrypted))
            copies["plain"].append(timed(f"copy of {len(load):,} rows, plain Parquet", copy_plain))

        def run(s: ParquetSnapshotStore, instant: dt.datetime) -> Callable[[], Any]:
            return lambda: restore(s, code, instant, out)

        after_load, after_week = START + dt.timedelta(hours=1), week[-1]["event_time"]
        print("before the week of changes:")
        copies_now()
        full_s = timed("restore, full scan", run(store, after_load))
        timed("checkpoint (the full load)", lambda: write_checkpoint(store, code))
        ck_s = timed("restore from the checkpoint", run(store, after_load))
        append_events(store, code, week, 1_000)
        # The full scan after the week reads a copy of the history without the checkpoint.
        shutil.copytree(store.history_dir, root / "nocheckpoint" / "register_history")
        nock = ParquetSnapshotStore(root / "nocheckpoint", store.keys)
        print(f"after the week ({len(week):,} changes in {-(-len(week) // 1000)} parts):")
        copies_now()
        full2_s = timed("restore, full scan", run(nock, after_week))
        ckw_s = timed("restore from the full load's checkpoint + the week", run(store, after_week))
        timed("checkpoint (previous one + the week)", lambda: write_checkpoint(store, code))
        ck2_s = timed("restore from the new checkpoint", run(store, after_week))
        copies_now()
        enc, pl = min(copies["encrypted"]), min(copies["plain"])
        print(f"\nfastest copies: encrypted {enc:.2f} s, plain {pl:.2f} s (encrypted / plain {enc / pl:.2f})")
        for what, s in (("full scan, before the week", full_s), ("checkpoint, before the week", ck_s),
                        ("full scan, after the week", full2_s), ("old checkpoint + the week", ckw_s),
                        ("new checkpoint, after the week", ck2_s)):
            print(f"  {what:40} {s:7.2f} s  / encrypted copy {s / enc:.2f}  / plain copy {s / pl:.2f}")
        if args.weeks > 1:
            long_history(args.weeks, sim, store, nock, code, run, copies_now, copies, ck2_s, ckw_s)


def long_history(weeks: int, sim: RegisterSimulator, store: ParquetSnapshotStore, nock: ParquetSnapshotStore,
                 code: str, run: Callable[[ParquetSnapshotStore, dt.datetime], Callable[[], Any]],
                 copies_now: Callable[[], None], copies: dict[str, list[float]], week1_ck: float,
                 week1_ckw: float) -> None:
    print(f"\nweeks 2..{weeks}: a checkpoint of every week; in odd weeks the compactor checkpoints the weeks before "
          "in another process while the week's parts are appended")
    spawn = mp.get_context("spawn")
    appends: dict[bool, list[float]] = {True: [], False: []}
    checkpoints: list[float] = []
    total = 0
    last_time = START
    t_gen = 0.0
    for number in range(2, weeks + 1):
        t0 = time.perf_counter()
        changes = list(sim.changes(7, from_day=7 * (number - 1) + 1))
        t_gen += time.perf_counter() - t0
        total += len(changes)
        last_time = changes[-1]["event_time"]
        # Odd weeks: the compactor writes the checkpoint of the weeks so far (through the week before) in a
        # process of its own while this week's parts are appended; even weeks' parts are appended alone.
        proc = None
        if number % 2 == 1:
            ready = spawn.Event()
            proc = spawn.Process(target=compactor, args=(str(store.root), code, ready))
            proc.start()
            ready.wait()
            time.sleep(0.5)  # it has listed the history's parts and is writing the checkpoint
        t0 = time.perf_counter()
        append_events(store, code, changes, 1_000)
        appended = time.perf_counter() - t0
        note = ""
        if proc is not None:
            note = " (compactor running throughout)" if proc.is_alive() else " (compactor running, ended before)"
            proc.join()
            assert proc.exitcode == 0
            t0 = time.perf_counter()
            write_checkpoint(store, code)  # this week's, from the compactor's one + the week
            checkpoints.append(time.perf_counter() - t0)
        appends[proc is not None].append(appended)
        append_events(nock, code, changes, 1_000)  # the full scan's copy of the history, untimed
        print(f"  week {number:3}: {len(changes):6,} changes, appended in {appended:5.2f} s{note}", flush=True)
    if weeks % 2 == 0:
        write_checkpoint(store, code)
    print(f"{total:,} changes in weeks 2..{weeks} (generated in {t_gen:.0f} s), history "
          f"{len(store.history_parts(code)):,} parts; checkpoints written in {statistics.median(checkpoints):.2f} s "
          f"(median of {len(checkpoints)})")
    for beside, times in appends.items():
        if times:
            print(f"  a week's appends (parts of 1,000 rows), "
                  f"{'with the compactor running' if beside else 'alone':28}: median {statistics.median(times):.2f} s "
                  f"of {len(times)}")
    more = list(sim.changes(7, from_day=7 * weeks + 1))
    append_events(store, code, more, 1_000)
    append_events(nock, code, more, 1_000)
    end = more[-1]["event_time"]
    print(f"at the end of week {weeks} (and {len(more):,} changes of week {weeks + 1} after its checkpoint):")
    copies_now()
    ck_end = timed(f"restore from week {weeks}'s checkpoint", run(store, last_time))
    ckw_end = timed(f"restore from week {weeks}'s checkpoint + week {weeks + 1}", run(store, end))
    full_end = timed("restore, full scan of the whole history", run(nock, end))
    copies_now()
    enc, pl = min(copies["encrypted"]), min(copies["plain"])
    print(f"\nfastest copies: encrypted {enc:.2f} s, plain {pl:.2f} s")
    for what, s in ((f"week {weeks}'s checkpoint", ck_end), (f"week {weeks}'s checkpoint + a week", ckw_end),
                    (f"full scan, {weeks + 1} weeks", full_end), ("week 1's checkpoint", week1_ck),
                    ("full load's checkpoint + week 1", week1_ckw)):
        print(f"  {what:40} {s:7.2f} s  / encrypted copy {s / enc:.2f}  / plain copy {s / pl:.2f}")


if __name__ == "__main__":
    main()
