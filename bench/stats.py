"""Benchmark: each `bcl stats` query over a national year (~36 million issued certificates).

Generates the year once into <data dir>/bench/national-year-<scale>/snapshots (kept between runs; delete
the folder to regenerate; BCL_DATA_DIR=/tmp/... keeps the 1.6 GB outside the repository), then times every
statistics query on a fresh DuckDB connection, as the command does. Target: each query under 2 s on a 2-core
machine. Prints figures; asserts nothing.

    .venv/bin/python bench/stats.py [--scale 1.0] [--threads N]
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from sinks import statistics
from sinks.certificate_log import part_files
from sinks.national_year import generate_year
from streams.settings import load_settings

QUERIES = {
    "monthly": statistics.monthly,
    "fiscal-year": statistics.fiscal_year,
    "off-hours": statistics.off_hours,
    "other-municipality": statistics.other_municipality,
    "vendors": statistics.vendors,
    "population-share": statistics.population_share,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of national volume (default 1.0)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, i.e. the cores)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per query; the best and the first are shown")
    args = parser.parse_args()
    settings = load_settings()
    snapshot_dir = settings.data_dir / "bench" / f"national-year-{args.scale:g}" / "snapshots"
    console = Console()
    if not part_files(snapshot_dir):
        started = time.perf_counter()
        rows = generate_year(snapshot_dir, 2025, settings.seed, args.scale)
        console.print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s into {snapshot_dir}")
    size = sum(p.stat().st_size for p in part_files(snapshot_dir))
    table = Table(title=f"bcl stats over {snapshot_dir} ({size / 1e9:.2f} GB Parquet)")
    for column in ("query", "open (s)", "first run (s)", f"best of {args.repeat} (s)", "rows out"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for name, query in QUERIES.items():
        started = time.perf_counter()
        con = statistics.open_statistics(snapshot_dir)
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        opened = time.perf_counter() - started
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = query(con)
            runs.append(time.perf_counter() - started)
        con.close()
        table.add_row(name, f"{opened:.3f}", f"{runs[0]:.3f}", f"{min(runs):.3f}", str(len(result.rows)))
    console.print(table)


if __name__ == "__main__":
    main()
