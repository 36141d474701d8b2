"""Who is unaccounted for, live (docs/domain.md §6.6): the cost of `Unaccounted.counts` and of a page of names for
a municipality of 70,000 residents, computed each time from the ledger, the damage levels, the list and the stays
(SQLite on disk, WAL, synchronous=FULL).

    .venv/bin/python bench/unaccounted_counts.py [--residents 70000] [--damaged 0.3] [--listed 3000] [--sheltered 0.5]

Set up untimed, in the stores' own tables: the ledger of 田辺市 (302066) with about `--residents` residents in
dwellings of one to three households (tests.ledger_dwellings_factory); `--damaged` of the dwellings surveyed 全壊;
`--listed` people on the list; `--sheltered` of the damaged dwellings' residents checked in at the municipality's
shipped shelters. Timed: `counts` (repeated, p50 and p99), the first page of the unaccounted-for names, and the
latency from a check-in committed by the intake (`Shelters.receive`, a staff entry) to the count that shows it.
The machine is named with its core count and load; it is shared, so run it twice and read both."""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.machine import machine
from domain.disasters import declaration
from domain.shelter_stays import StayAction, StayEvent, TerminalEvent, TokenKind
from sinks.disaster_ledger import COLUMNS, put_residents
from sinks.unaccounted import NamesQuery
from tests.ledger_dwellings_factory import add_dwellings, grid_dwellings
from tests.platforms import make_platform

TANABE = "302066"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=70_000)
    parser.add_argument("--damaged", type=float, default=0.3, help="share of the dwellings surveyed 全壊")
    parser.add_argument("--listed", type=int, default=3_000)
    parser.add_argument("--sheltered", type=float, default=0.5, help="share of the damaged checked in")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    print(machine())
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        platform = make_platform(data_dir)
        now = dt.datetime.now(dt.UTC)
        disaster = platform.disaster_store.declare(declaration(
            name="令和8年紀伊半島沖地震", kind="earthquake", municipality_codes=[TANABE],
            occurred_at=now - dt.timedelta(hours=6), now=now), now)
        d = disaster.disaster_id
        unaccounted = platform.unaccounted  # every table it reads, made by their stores
        dwellings = grid_dwellings(TANABE, args.residents // 2, 135.3, 33.7, 135.5, 33.8)
        add_dwellings(data_dir, d, TANABE, dwellings)
        con = platform.disaster_store.connection
        with resources.as_file(resources.files("domain").joinpath("data", "shelters.csv")) as shipped:
            platform.shelters.import_csv(shipped, None, now)
        shelters = [e.shelter.shelter_id for e in platform.shelters.shelters(TANABE)][:60]
        for shelter in shelters:
            platform.shelters.open(d, shelter, "bench", now)
        ms = int(now.timestamp() * 1000)
        damaged = [w.dwelling_id for w in dwellings if rng.random() < args.damaged]
        residents = [r for (r,) in con.execute("SELECT resident_code FROM ledger_residents WHERE disaster_id=?",
                                               (d,))]
        with platform.disaster_store.transaction():
            con.executemany("INSERT INTO ledger_builds VALUES (?, ?, 'csv', 0, ?, ?, 0)",
                            [(d, TANABE, len(residents), len(dwellings))])
            con.executemany(
                "INSERT INTO dwelling_surveys VALUES (?, ?, ?, 'ZENKAI', 'SURVEY', NULL, NULL, 'bench', ?, NULL, "
                "NULL, ?)", [(d, w, TANABE, now.date().isoformat(), ms) for w in damaged])
            listed = rng.choice(residents, size=min(args.listed, len(residents)), replace=False)
            con.executemany(
                "INSERT INTO roster_people VALUES (?, ?, '被災', '花子', 'ヒサイ', 'ハナコ', '1940-01-01', 'FEMALE', "
                "'住所', '町', ?, 'CURRENT', NULL, NULL, 'ELDERLY_ALONE', 1, 1, ?, ?)",
                [(TANABE, r, f"L{r}", now.date().isoformat(), now.date().isoformat()) for r in listed])
            damaged_residents = [r for (r,) in con.execute(
                "SELECT l.resident_code FROM dwelling_surveys s JOIN ledger_dwellings w ON w.disaster_id = "
                "s.disaster_id AND w.dwelling_id = s.dwelling_id JOIN ledger_residents l ON l.dwelling = w.dwelling "
                "WHERE s.disaster_id=?", (d,))]
            sheltered = [r for r in damaged_residents if rng.random() < args.sheltered]
            con.executemany("INSERT INTO shelter_stays VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                            [(d, TANABE, r, shelters[i % len(shelters)], ms) for i, r in enumerate(sheltered)])
        print(f"ledger: {len(residents):,} residents, {len(dwellings):,} dwellings, {len(damaged):,} surveyed 全壊 "
              f"({len(damaged_residents):,} residents), {len(listed):,} listed, {len(sheltered):,} checked in at "
              f"{len(shelters)} shelters")

        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            counts = unaccounted.counts(d, TANABE)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(f"counts: looked for {counts.looked_for:,}, unaccounted for {counts.unaccounted:,}")
        print(f"  counts ({args.repeat} calls)                      p50 {statistics.median(times) * 1000:8.1f} ms   "
              f"p99 {times[int(len(times) * 0.99) - 1] * 1000:8.1f} ms")
        t0 = time.perf_counter()
        page = unaccounted.people(d, TANABE, NamesQuery(), actor="bench")
        print(f"  first page of names ({len(page.people)} of {page.total:,})         "
              f"{(time.perf_counter() - t0) * 1000:8.1f} ms")

        # A check-in through the intake's store, then the count that shows it.
        waiting = [r for r in damaged_residents if r not in set(sheltered)]
        # The factory's residents share one name and birth date: give this one its own, so a staff entry finds them.
        with platform.disaster_store.transaction():
            row = con.execute(f"SELECT {', '.join(COLUMNS)} FROM ledger_residents WHERE disaster_id=? AND "
                              "resident_code=?", (d, waiting[0])).fetchone()
            named = dict(zip(COLUMNS, row, strict=True)) | {"family_name_kana": "ベンチ", "given_name_kana": "イチロウ",
                                                            "birth_date": "1999-09-09"}
            put_residents(con, [tuple(named[c] for c in COLUMNS)])
        before = unaccounted.counts(d, TANABE).unaccounted
        event = TerminalEvent(StayEvent(str(uuid.uuid4()), StayAction.CHECK_IN, shelters[0], now, "bench", 1), d,
                              TokenKind.STAFF, {"kana": "ベンチイチロウ", "birth_date": "1999-09-09", "staff": "bench"})
        t0 = time.perf_counter()
        [receipt] = platform.shelters.receive([event], dt.datetime.now(dt.UTC))
        committed = time.perf_counter()
        after = unaccounted.counts(d, TANABE).unaccounted
        shown = time.perf_counter()
        assert receipt.status.value == "APPLIED" and after == before - 1, (receipt, before, after)
        print(f"  check-in committed (receive, one event)            {(committed - t0) * 1000:8.1f} ms")
        print(f"  then the count showing it                          {(shown - committed) * 1000:8.1f} ms")
        platform.disaster_store.close()


if __name__ == "__main__":
    main()
