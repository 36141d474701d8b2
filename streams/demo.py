"""`make demo`: the main job on the embedded cluster, end to end, with a short summary.

Starts the embedded Kafka-protocol cluster, full-loads three municipalities of different sizes
while the backup materialiser runs, streams a week of changes, restores one municipality as of
the middle of the week, runs an analyst query, and prints where everything is."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra.cluster_control import ClusterHandle
from schemas.registry import make_registry
from sinks.analytics import analyst_connection, run_query
from sinks.audit import record_access
from sinks.restore import backup_status, restore
from sinks.snapshot_store import ParquetSnapshotStore
from streams.adapter import AdapterState, publish
from streams.log import configure_logging
from streams.materialiser import BackupMaterialiser
from streams.register.reference import load_reference_data
from streams.settings import Settings, load_settings

JST = dt.timezone(dt.timedelta(hours=9), "JST")

# A mid-size city, a coastal town hit by the 2011 tsunami and an inland village (towns_sample.csv).
MUNICIPALITIES = ("302066", "045811", "304271")
DAYS = 7

console = Console()


@dataclass
class DemoRun:
    settings: Settings
    cluster: ClusterHandle
    store: ParquetSnapshotStore
    outputs: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


def load_register(run: DemoRun) -> None:
    settings = run.settings
    reference = load_reference_data(settings.reference_data_dir)
    registry = make_registry(settings.schema_registry_url)
    start = dt.datetime.fromisoformat(settings.simulation_start)
    stop = threading.Event()
    materialiser = BackupMaterialiser(run.cluster.bootstrap_servers, registry, run.store)
    worker = threading.Thread(target=materialiser.run, args=(stop,), name="materialiser")
    worker.start()  # consumes while the adapters publish, as in production

    step(f"Full load of {len(MUNICIPALITIES)} municipalities, then {DAYS} days of changes")
    began = time.perf_counter()
    events = 0
    for code in MUNICIPALITIES:
        state = AdapterState(code, None, settings.seed, start.isoformat())
        sim = state.simulator(reference, settings.mincho_font)
        loaded = publish(sim.full_load(), run.cluster.bootstrap_servers, registry)
        changed = publish(sim.changes(DAYS), run.cluster.bootstrap_servers, registry)
        state.last_sequence, state.last_day = changed.last_sequence or loaded.last_sequence, DAYS
        state.save(settings.adapter_dir)
        events += loaded.delivered + changed.delivered
        console.print(f"  {code} {sim.municipality.name}: {loaded.delivered:,} residents loaded, "
                      f"{changed.delivered:,} changes over {DAYS} days")
    # Wait until the materialiser has applied everything the adapters sent.
    while materialiser.counters.applied + materialiser.counters.duplicates < events:
        time.sleep(0.2)
    time.sleep(1.5)  # one more flush interval, so the last batch is in the snapshot store
    stop.set()
    worker.join()
    elapsed = time.perf_counter() - began
    counters = materialiser.counters
    console.print(f"  materialiser: {counters.applied:,} applied, {counters.duplicates} duplicates, "
                  f"{counters.dead_lettered} dead letters, {counters.residents_published:,} residents published")
    run.figures["events"] = f"{events:,} events in {elapsed:.1f} s ({events / elapsed:,.0f} events/s end to end)"


def show_status(run: DemoRun) -> None:
    step("Backup status")
    table = Table()
    for col in ("municipality", "residents", "records", "last sequence", "last event (JST)", "complete"):
        table.add_column(col)
    for s in backup_status(run.store):
        table.add_row(s.municipality_code, f"{s.residents:,}", f"{s.records:,}", f"{s.last_sequence:,}",
                      s.last_event_time.astimezone(JST).strftime("%Y-%m-%d %H:%M"), "yes" if s.complete else "NO")
    console.print(table)


def restore_mid_week(run: DemoRun) -> None:
    code = MUNICIPALITIES[0]
    start = dt.datetime.fromisoformat(run.settings.simulation_start)
    as_of = (start + dt.timedelta(days=DAYS // 2 + 1)).replace(hour=12)
    step(f"Point-in-time restore of {code} as of {as_of.isoformat()}")
    out_dir = run.settings.data_dir / "restores"
    for fmt in ("parquet", "csv"):
        out = out_dir / f"{code}-as-of-{as_of:%Y%m%dT%H%M}.{fmt}"
        began = time.perf_counter()
        count = restore(run.store, code, as_of, out, fmt)  # type: ignore[arg-type]
        record_access(run.settings.audit_file, "backup.restore", code, count, as_of=as_of.isoformat(), out=str(out))
        console.print(f"  {count:,} records → {out} ({time.perf_counter() - began:.2f} s)")
        run.outputs[f"restore ({fmt})"] = out


def analyst_query(run: DemoRun) -> None:
    sql = """SELECT municipality, count(*) AS residents, round(avg(2026 - birth_year), 1) AS mean_age,
                    round(100.0 * avg(CASE WHEN jpki_certificates > 0 THEN 1 ELSE 0 END), 1) AS jpki_pct,
                    round(100.0 * avg(CASE WHEN seal_registered THEN 1 ELSE 0 END), 1) AS seal_pct
             FROM residents WHERE status = 'CURRENT' GROUP BY municipality ORDER BY residents DESC"""
    step("Analyst query (DuckDB; identifying numbers only as pseudonyms)")
    console.print(f"[dim]{' '.join(sql.split())}")
    result = run_query(analyst_connection(run.store, run.settings.pseudonym_key), sql)
    table = Table()
    for col in result.columns:
        table.add_column(col)
    for row in result.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


def summary(run: DemoRun) -> None:
    step("Summary")
    for name, value in run.figures.items():
        console.print(f"  {name}: {value}")
    console.print(f"  snapshot store (change history, Parquet): {run.store.history_dir}")
    for name, path in run.outputs.items():
        console.print(f"  {name}: {path}")
    console.print(f"  audit log of personal-data reads: {run.settings.audit_file}")
    console.print("  try: .venv/bin/bcl --data-dir " + str(run.settings.data_dir) + " backup status")


def main() -> None:
    settings = load_settings({"data_dir": Settings().data_dir / "demo"})
    configure_logging("console", "warning")
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # every demo starts from an empty platform
    step("Embedded Kafka-protocol cluster (librdkafka mock, 3 brokers)")
    cluster = ClusterHandle.start(brokers=3, data_dir=settings.data_dir)
    console.print(f"  bootstrap servers: {cluster.bootstrap_servers}")
    try:
        run = DemoRun(settings, cluster, ParquetSnapshotStore(settings.snapshot_dir))
        load_register(run)
        show_status(run)
        restore_mid_week(run)
        analyst_query(run)
        summary(run)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
