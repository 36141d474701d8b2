"""`make demo`: the main job on the embedded cluster, end to end, with a short summary.

Starts the embedded Kafka-protocol cluster, full-loads three municipalities of different sizes
while the backup materialiser runs, streams a week of changes, restores one municipality as of
the middle of the week and runs an analyst query. Then the JPKI test PKI follows the register's
card events, kiosks of several vendors ask the certificate worker for certificates (a weekday
and a Saturday), one certificate is printed and verified, billing counts what was issued and
writes a statement, and the published statistics are computed over the demo's own certificates.

Kiosks and worker share a simulated clock (the week after the register's week), so the kiosk
service hours hold whatever the time of day the demo is run."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from domain.japan_time import JST, format_instant, parse_instant, to_japan_time
from infra.cluster_control import ClusterHandle
from infra.log import configure_logging
from infra.private_files import private_folder
from sinks.analyst_grants import change_grants
from sinks.audit import record_access
from sinks.restore import backup_status, restore
from sinks.snapshot_store import BaseSnapshotStore
from streams.adapter import AdapterState, publish
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.settings import Settings, load_settings
from streams.simulated_clock import SimulatedClock

# A mid-size city, a coastal town hit by the 2011 tsunami and an inland village (towns_sample.csv).
MUNICIPALITIES = ("302066", "045811", "304271")
DEMO_ANALYST = "demo-analyst"
DAYS = 7

console = Console()


@dataclass
class DemoRun:
    platform: Platform
    cluster: ClusterHandle
    outputs: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.platform.settings

    @property
    def store(self) -> BaseSnapshotStore:
        return self.platform.snapshot_store


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _simulation_start(settings: Settings) -> dt.datetime:
    # In Japan time, so that replacing the hour or taking the date means the Japan-time hour and day.
    return to_japan_time(parse_instant(settings.simulation_start, "simulation_start"))


def load_register(run: DemoRun) -> None:
    settings = run.settings
    reference = load_reference_data()
    registry = run.platform.registry
    start = _simulation_start(settings)
    stop = threading.Event()
    materialiser = run.platform.materialiser()
    worker = threading.Thread(target=materialiser.run, args=(stop,), name="materialiser")
    worker.start()  # consumes while the adapters publish, as in production

    step(f"Full load of {len(MUNICIPALITIES)} municipalities, then {DAYS} days of changes")
    began = time.perf_counter()
    events = 0
    for code in MUNICIPALITIES:
        state = AdapterState(code, None, settings.seed, start.isoformat())
        sim = state.simulator(reference, settings.mincho_font)
        loaded = publish(sim.full_load(), run.cluster.bootstrap_servers, registry, run.platform.register_signer)
        changed = publish(sim.changes(DAYS), run.cluster.bootstrap_servers, registry, run.platform.register_signer)
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
                      format_instant(s.last_event_time), "yes" if s.complete else "NO")
    console.print(table)


def restore_mid_week(run: DemoRun) -> None:
    code = MUNICIPALITIES[0]
    start = _simulation_start(run.settings)
    as_of = (start + dt.timedelta(days=DAYS // 2 + 1)).replace(hour=12)
    step(f"Point-in-time restore of {code} as of {format_instant(as_of)}")
    out_dir = private_folder(run.settings.restores_dir)
    for fmt in ("parquet", "csv"):
        out = out_dir / f"{code}-as-of-{as_of:%Y%m%dT%H%M}.{fmt}"
        began = time.perf_counter()
        count = restore(run.store, code, as_of, out, fmt)  # type: ignore[arg-type]
        record_access(run.settings.audit_file, "backup.restore", code, count, as_of=as_of.isoformat(), out=str(out))
        console.print(f"  {count:,} records → {out} ({time.perf_counter() - began:.2f} s)")
        run.outputs[f"restore ({fmt})"] = out


def analyst_query(run: DemoRun) -> None:
    # A column a small municipality withholds is NULL there: avg() leaves it out rather than count it as false.
    sql = """SELECT municipality, count(*) AS residents,
                    round(100.0 * avg(jpki_certificate::INTEGER), 1) AS jpki_pct,
                    round(100.0 * avg(seal_registered::INTEGER), 1) AS seal_pct
             FROM resident_services GROUP BY municipality ORDER BY residents DESC"""
    step(f"Analyst query by {DEMO_ANALYST}, granted the demo's municipalities (k-anonymous tables, audited)")
    change_grants(run.settings.analyst_grants_file, DEMO_ANALYST, add=MUNICIPALITIES)
    console.print(f"[dim]{' '.join(sql.split())}")
    result = run.platform.analyst_session(DEMO_ANALYST).query(sql)
    table = Table()
    for col in result.columns:
        table.add_column(col)
    for row in result.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


def cards_follow_register(run: DemoRun) -> None:
    settings = run.settings
    step("JPKI test PKI follows the register's card events (issued, renewed, revoked)")
    run.platform.pki.initialise(_simulation_start(settings) - dt.timedelta(days=1))
    began = time.perf_counter()
    with console.status("building the virtual cards' key pool and issuing the register's certificates"):
        counters = run.platform.card_lifecycle().run(until_caught_up=True)
    console.print(f"  {json.dumps(counters.as_dict())} in {time.perf_counter() - began:.1f} s")


def kiosk_issuance(run: DemoRun) -> None:
    from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskTerminal
    from kiosk_sim.load import LoadGenerator, make_terminals
    from kiosk_sim.population import profiles_from_backup
    from kiosk_sim.transport import InProcessTransport
    from streams.certificate_worker import WorkerOptions
    from streams.commands.kiosk import print_report

    settings = run.settings
    week_after = _simulation_start(settings) + dt.timedelta(days=DAYS + 1)
    weekday_noon = week_after.replace(hour=12, tzinfo=JST)  # a Tuesday
    saturday = (weekday_noon + dt.timedelta(days=4)).replace(hour=10)
    clock = SimulatedClock(weekday_noon)
    step(f"Kiosk issuance: certificate worker + kiosks of several vendors ({weekday_noon:%a %Y-%m-%d %H:%M} JST)")
    worker = run.platform.certificate_worker(options=WorkerOptions(render_processes=2), clock=clock)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), name="certificate-worker")
    thread.start()
    try:
        issuer = run.platform.card_issuer()
        profiles = [p for code in MUNICIPALITIES
                    for p in profiles_from_backup(run.store, code, settings.audit_file, limit=150)]
        residents = issuer.population(profiles, clock())
        terminals = make_terminals(40, list(MUNICIPALITIES), ["302015", "302023"], random.Random(settings.seed))
        if not ready.wait(120):
            raise RuntimeError("the certificate worker did not become ready")
        with run.platform.kiosk_connection() as conn:
            # One resident prints a 住民票の写し of the whole household, then the verifier checks it.
            first = next(r for r in residents if r.profile.municipality_code == MUNICIPALITIES[0])
            pdf = settings.kiosk_dir / "jyuminhyo.pdf"
            outcome = Kiosk(KioskTerminal("DEMO-0001", "seven-eleven", "EAST", MUNICIPALITIES[0]), conn,
                            clock=clock).issue(
                InProcessTransport(first.card), first.pin,
                CertificateChoice(MUNICIPALITIES[0], "RESIDENT_RECORD", "WHOLE_HOUSEHOLD", True, False, None, 1),
                print_to=pdf)
            console.print(f"  one 住民票の写し: {outcome.status.name} in {outcome.latency * 1000:.0f} ms, "
                          f"{outcome.pages} sheet(s), {outcome.fee_yen} yen → {pdf}")
            run.outputs["printed certificate (PDF)"] = pdf
            generator = LoadGenerator(conn, residents, terminals, seed=settings.seed, clock=clock)
            for label, instant in (("weekday", weekday_noon), ("Saturday", saturday)):
                clock.set(instant)
                report = generator.run(rate=6, duration=10)
                console.print(f"  [bold]{label}[/bold] {instant:%Y-%m-%d %H:%M} JST")
                print_report(console, report)
    finally:
        stop.set()
        thread.join(60)
    verified = subprocess.run([sys.executable, "-m", "streams.cli", "--data-dir", str(settings.data_dir),
                               "verify", "pdf", str(pdf)], capture_output=True, text=True)
    console.print("  bcl verify pdf: " + verified.stdout.strip().splitlines()[-1])


def centre_drill(run: DemoRun, rate: float = 6.0) -> None:
    """Two issuing centres: steady kiosk traffic of several vendors on a 4-broker cluster with East and West, East is
    lost (its worker stopped, its brokers down) while requests are in flight, West carries everything, East comes
    back. Prints, per phase, who answered the East vendors' kiosks and the latency."""
    from collections import Counter

    from kiosk_sim.load import LoadGenerator, make_terminals
    from kiosk_sim.population import profiles_from_backup
    from streams.centre_claims import centre_group_id
    from streams.certificate_worker import WorkerOptions
    from streams.commands.kiosk import print_report

    step("Two issuing centres: East is lost under steady kiosk traffic, West carries everything, East comes back")
    settings = run.settings
    cluster = ClusterHandle.start(brokers=4, data_dir=settings.data_dir / "centres", centres=True,
                                  centre_groups={centre_group_id(c): c for c in ("EAST", "WEST")})
    platform = Platform(replace(settings, bootstrap_servers=cluster.bootstrap_servers))
    clock = SimulatedClock((_simulation_start(settings) + dt.timedelta(days=DAYS + 1)).replace(hour=12, tzinfo=JST))
    workers: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def start(centre: str) -> None:
        worker = platform.certificate_worker(options=WorkerOptions(render_processes=1, centre=centre), clock=clock,
                                             group_id=centre_group_id(centre))
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop, ready), name=f"worker-{centre}")
        thread.start()
        workers[centre] = (thread, stop)
        if not ready.wait(120):
            raise RuntimeError(f"the {centre} certificate worker did not become ready")

    def stop(centre: str) -> None:
        thread, event = workers.pop(centre)
        event.set()
        thread.join(60)

    try:
        issuer = platform.card_issuer()
        profiles = [p for code in MUNICIPALITIES
                    for p in profiles_from_backup(run.store, code, settings.audit_file, limit=60)]
        residents = issuer.population(profiles, clock())
        terminals = make_terminals(30, list(MUNICIPALITIES), ["302015", "302023"], random.Random(settings.seed))
        east_vendors = {t.vendor for t in terminals if t.centre == "EAST"}
        # Each centre has the seal keys before it serves (production: its copy of the key material); here the two
        # workers share one PKI directory, and must not both make a municipality's first seal at once.
        from domain.municipalities import municipality
        for code in {t.municipality_code for t in terminals} | set(MUNICIPALITIES):
            platform.pki.ensure_seal_certificate(code, municipality(code).name, clock())
        for centre in ("EAST", "WEST"):
            start(centre)
        with platform.kiosk_connection(centres=True) as conn:
            generator = LoadGenerator(conn, residents, terminals, seed=settings.seed, clock=clock)

            def lose_east() -> None:
                stop("EAST")
                cluster.fail_centre("EAST")

            for phase, seconds in (("both centres", 10.0), ("East lost", 14.0), ("East back", 14.0)):
                if phase == "East lost":
                    timer = threading.Timer(2.0, lose_east)  # while requests are in flight
                    timer.start()
                if phase == "East back":
                    cluster.restore_centre("EAST")
                    start("EAST")
                report = generator.run(rate=rate, duration=seconds)
                answered = Counter(s.outcome.centre for s in report.sessions
                                   if s.vendor in east_vendors and s.outcome.sent)
                console.print(f"  [bold]{phase}[/bold]: East vendors' kiosks answered by {dict(answered)}, "
                              f"failovers to the other centre so far: {conn.counters.failovers}")
                print_report(console, report)
                run.figures[f"centres, {phase}"] = f"East vendors answered by {dict(answered)}"
    finally:
        for centre in list(workers):
            stop(centre)
        cluster.stop()


def billing_and_statistics(run: DemoRun) -> None:
    from domain.billing import BillingMonth
    from sinks.billing_statement import write_csv, write_pdf
    from sinks.billing_totals import monthly_statement
    from sinks.statistics import monthly, off_hours, open_statistics, vendors
    from sinks.statistics_chart import monthly_trend_chart

    settings = run.settings
    step("Billing: exact counts from bcl.certificates.issued, and a statement for the clerk")
    counters = run.platform.billing().run(until_caught_up=True)
    console.print(f"  {json.dumps(counters.as_dict())}")
    week_after = _simulation_start(settings) + dt.timedelta(days=DAYS + 1)
    statement = monthly_statement(settings.snapshot_dir, MUNICIPALITIES[0],
                                  BillingMonth.parse(f"{week_after:%Y-%m}"), week_after.date())
    folder = settings.billing_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"statement-{MUNICIPALITIES[0]}-{week_after:%Y-%m}"
    run.outputs["billing statement (PDF)"] = write_pdf(statement, folder / f"{stem}.pdf",
                                                       mincho_font=settings.mincho_font,
                                                       gothic_font=settings.gothic_font)
    run.outputs["billing statement (CSV)"] = write_csv(statement, folder / f"{stem}.csv")
    console.print("  totals: " + json.dumps(statement.totals(), ensure_ascii=False, default=str))

    step("Published statistics over the demo's own certificates (DuckDB over the issued-certificate log)")
    con = open_statistics(settings.snapshot_dir)
    trend = monthly(con)
    for table in (trend, off_hours(con, top=3), vendors(con)):
        shown = Table(title=table.title)
        for col in table.columns:
            shown.add_column(col)
        for row in table.rows:
            shown.add_row(*(f"{v:.1%}" if c in table.share_columns else str(v) for c, v in zip(table.columns, row,
                                                                                              strict=True)))
        console.print(shown)
    chart = settings.statistics_dir / "monthly.png"
    chart.parent.mkdir(parents=True, exist_ok=True)
    monthly_trend_chart(trend, chart)
    run.outputs["monthly trend chart"] = chart


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
    settings = load_settings({"data_dir": load_settings().data_dir / "demo"})
    configure_logging("console", "warning")
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # every demo starts from an empty platform
    step("Embedded Kafka-protocol cluster (librdkafka mock, 3 brokers)")
    cluster = ClusterHandle.start(brokers=3, data_dir=settings.data_dir)
    console.print(f"  bootstrap servers: {cluster.bootstrap_servers}")
    try:
        run = DemoRun(Platform(replace(settings, bootstrap_servers=cluster.bootstrap_servers)), cluster)
        load_register(run)
        show_status(run)
        restore_mid_week(run)
        analyst_query(run)
        cards_follow_register(run)
        kiosk_issuance(run)
        billing_and_statistics(run)
        centre_drill(run)
        summary(run)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
