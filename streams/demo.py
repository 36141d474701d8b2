"""`make demo`: the main job on the embedded cluster, end to end, with a short summary.

Starts the embedded Kafka-protocol cluster, full-loads three municipalities of different sizes
while the backup materialiser runs, streams a week of changes, restores one municipality as of
the middle of the week and runs an analyst query. Then the JPKI test PKI follows the register's
card events, kiosks of several vendors ask the certificate worker for certificates (a weekday
and a Saturday), one certificate is printed and verified, billing counts what was issued and
writes a statement, and the published statistics are computed over the demo's own certificates.

A disaster strikes mid-week: an earthquake and tsunami declared for 女川町 and 田辺市, their 被災者台帳 built
from the backup as of 発災日時 and brought up to date; a few surveys and a flooded zone registered by a polygon
drawn around real dwellings of the ledger; online applications signed with the residents' virtual cards (one
from outside the area, rejected by staff), their mails sent to an aiosmtpd server that keeps them in
var/demo/mail/; a 罹災証明書 printed at a kiosk and verified; a household's ledger extract; the staff pages and the
application page started once, with the commands and the sign-in to open them again.

Kiosks and worker share a simulated clock (the week after the register's week), so the kiosk
service hours hold whatever the time of day the demo is run."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shapely
from rich.console import Console
from rich.table import Table

from domain.japan_time import JST, format_instant, parse_instant, to_japan_time
from infra.cluster_control import ClusterHandle
from infra.log import configure_logging
from infra.mail_capture import MailCapture
from infra.private_files import private_folder
from sinks.analyst_grants import change_grants
from sinks.audit import record_access
from sinks.disaster_ledger import LedgerBuild
from sinks.restore import backup_status, restore
from sinks.snapshot_store import BaseSnapshotStore
from streams.adapter import AdapterState, publish, publish_welfare
from streams.demo_shelters import RosterProcessor
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.settings import Settings, load_settings
from streams.simulated_clock import SimulatedClock

if TYPE_CHECKING:
    from domain.disasters import Disaster
    from kiosk_sim.kiosk import KioskConnection
    from kiosk_sim.population import VirtualResident
    from streams.certificate_worker import CertificateWorker

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
        # The welfare systems' feed of the same week (bcl.welfare.status), as `bcl adapter welfare` sends it.
        welfare = publish_welfare(state.welfare_events(sim), run.cluster.bootstrap_servers, registry,
                                  run.platform.register_signer)
        state.welfare_day = DAYS
        state.save(settings.adapter_dir)
        events += loaded.delivered + changed.delivered
        console.print(f"  {code} {sim.municipality.name}: {loaded.delivered:,} residents loaded, "
                      f"{changed.delivered:,} changes over {DAYS} days, {welfare.delivered:,} welfare events")
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


@dataclass
class KioskCentre:
    """The certificate worker and what the kiosks use, kept running from the kiosk step to the disaster's 罹災証明書."""

    worker: CertificateWorker
    clock: SimulatedClock
    residents: list[VirtualResident]  # the demo's residents with their virtual My Number cards
    connection: KioskConnection


def _kiosk_week(settings: Settings) -> dt.datetime:
    """Noon of the Tuesday after the register's week, Japan time: when the kiosks start."""
    return (_simulation_start(settings) + dt.timedelta(days=DAYS + 1)).replace(hour=12, tzinfo=JST)


@contextmanager
def kiosk_centre(run: DemoRun) -> Iterator[KioskCentre]:
    from kiosk_sim.population import profiles_from_backup
    from streams.certificate_worker import WorkerOptions

    settings = run.settings
    clock = SimulatedClock(_kiosk_week(settings))
    worker = run.platform.certificate_worker(options=WorkerOptions(render_processes=2), clock=clock)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), name="certificate-worker")
    thread.start()
    try:
        profiles = [p for code in MUNICIPALITIES
                    for p in profiles_from_backup(run.store, code, settings.audit_file, limit=150)]
        residents = run.platform.card_issuer().population(profiles, clock())
        if not ready.wait(120):
            raise RuntimeError("the certificate worker did not become ready")
        with run.platform.kiosk_connection() as conn:
            yield KioskCentre(worker, clock, residents, conn)
    finally:
        stop.set()
        thread.join(60)


def _verify_pdf(run: DemoRun, pdf: Path) -> None:
    verified = subprocess.run([sys.executable, "-m", "streams.cli", "--data-dir", str(run.settings.data_dir),
                               "verify", "pdf", str(pdf)], capture_output=True, text=True)
    console.print("  bcl verify pdf: " + verified.stdout.strip().splitlines()[-1])
    if verified.returncode != 0:
        raise RuntimeError(f"bcl verify pdf {pdf} exited {verified.returncode}: {verified.stderr.strip()}")


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
    clock = SimulatedClock(_kiosk_week(settings))
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


def kiosk_issuance(run: DemoRun, centre: KioskCentre) -> None:
    from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskTerminal
    from kiosk_sim.load import LoadGenerator, make_terminals
    from kiosk_sim.transport import InProcessTransport
    from streams.commands.kiosk import print_report

    settings, clock, conn = run.settings, centre.clock, centre.connection
    weekday_noon = _kiosk_week(settings)
    saturday = (weekday_noon + dt.timedelta(days=4)).replace(hour=10)
    step(f"Kiosk issuance: certificate worker + kiosks of several vendors ({weekday_noon:%a %Y-%m-%d %H:%M} JST)")
    terminals = make_terminals(40, list(MUNICIPALITIES), ["302015", "302023"], random.Random(settings.seed))
    # One resident prints a 住民票の写し of the whole household, then the verifier checks it.
    first = next(r for r in centre.residents if r.profile.municipality_code == MUNICIPALITIES[0])
    pdf = settings.kiosk_dir / "jyuminhyo.pdf"
    outcome = Kiosk(KioskTerminal("DEMO-0001", "seven-eleven", "EAST", MUNICIPALITIES[0]), conn,
                    clock=clock).issue(
        InProcessTransport(first.card), first.pin,
        CertificateChoice(MUNICIPALITIES[0], "RESIDENT_RECORD", "WHOLE_HOUSEHOLD", True, False, None, 1),
        print_to=pdf)
    console.print(f"  one 住民票の写し: {outcome.status.name} in {outcome.latency * 1000:.0f} ms, "
                  f"{outcome.pages} sheet(s), {outcome.fee_yen} yen → {pdf}")
    run.outputs["printed certificate (PDF)"] = pdf
    generator = LoadGenerator(conn, centre.residents, terminals, seed=settings.seed, clock=clock)
    for label, instant in (("weekday", weekday_noon), ("Saturday", saturday)):
        clock.set(instant)
        report = generator.run(rate=6, duration=10)
        console.print(f"  [bold]{label}[/bold] {instant:%Y-%m-%d %H:%M} JST")
        print_report(console, report)
    _verify_pdf(run, pdf)


# -- the disaster (docs/operations.md "Disaster-victim support") ------------------------------------

DISASTER_MUNICIPALITIES = ("045811", "302066")  # 女川町 (the zone, the applicants), 田辺市
ONAGAWA = DISASTER_MUNICIPALITIES[0]
OUTSIDE = "304271"  # the inland village, not hit: its resident's application matches no ledger
DEMO_STAFF = "onagawa.demo"
REJECTION = "災害の区域外にお住まいのため、申請を受け付けられません"  # mailed to the applicant from outside the area
ZONE_DWELLINGS = 40  # the flooded zone: around the first applicant's dwelling and its nearest neighbours


@dataclass
class DisasterDemo:
    """What the disaster steps hand on: the disaster, its first applicant, the demo staff member's password."""

    disaster: Disaster
    applicant: VirtualResident  # 女川町, in the flooded zone: applies, is accepted, prints a 罹災証明書
    applicant_row: dict[str, Any]  # their ledger row
    staff_password: str = ""


def _ledger_rows(run: DemoRun, disaster: Disaster, code: str) -> dict[str, dict[str, Any]]:
    rows = run.platform.disaster_ledger.residents(disaster.disaster_id, code)
    record_access(run.settings.audit_file, "disaster.ledger", code, len(rows), disaster_id=disaster.disaster_id,
                  purpose="the demo chooses its applicants")
    return {r["resident_code"]: r for r in rows}


def _in_ledger(row: dict[str, Any] | None, resident: VirtualResident) -> bool:
    """In the ledger as of 発災日時, still living in the dwelling, and the card the one the ledger knows."""
    return (row is not None and bool(row["in_base"]) and row["dwelling_id"] is not None
            and not row["flags"] and resident.profile.serial in (row["jpki_serials"] or "").split(","))


def declare_disaster(run: DemoRun, centre: KioskCentre) -> Disaster:
    from domain.disasters import declaration

    platform = run.platform
    occurred_at = (_simulation_start(run.settings) + dt.timedelta(days=3)).replace(hour=14, minute=46)
    step(f"Disaster declared: earthquake and tsunami, 発災 {format_instant(occurred_at)} (inside the register's week)")
    now = centre.clock()
    began = time.perf_counter()
    disaster, builds = platform.disaster_ledger.declare(declaration(
        name="令和8年太平洋沿岸地震・津波", kind="earthquake", municipality_codes=DISASTER_MUNICIPALITIES,
        occurred_at=occurred_at, now=now), now)
    console.print(f"  disaster {disaster.disaster_id}: 被災者台帳 built from the backup as of 発災日時 "
                  f"in {time.perf_counter() - began:.1f} s")
    for build in builds:
        if not isinstance(build, LedgerBuild):
            raise RuntimeError(f"no ledger of {build.municipality_code}: {build.reason}")
        console.print(f"  {build.municipality_code}: {build.residents:,} residents, {build.dwellings:,} dwellings "
                      f"as of {format_instant(build.as_of)}")
    # The register went on after the disaster: what the ledger processor applies as it streams, at once here.
    changed = platform.disaster_ledger.refresh(disaster.disaster_id, now)
    table = Table(title="the ledgers after the register's changes since 発災日時 (bcl disaster refresh)")
    counts = {code: platform.disaster_ledger.flag_counts(disaster.disaster_id, code)
              for code in DISASTER_MUNICIPALITIES}
    columns = list(counts[ONAGAWA])
    for col in ("municipality", "rows changed", *columns):
        table.add_column(col)
    for code, row in counts.items():
        table.add_row(code, f"{changed[code]:,}", *(f"{row[c]:,}" for c in columns))
    console.print(table)
    published = platform.disaster_relay().publish_pending()
    deadline = time.monotonic() + 30
    while not centre.worker.disaster_facts.declared_disasters(ONAGAWA):
        if time.monotonic() > deadline:
            raise RuntimeError("the certificate worker did not see the declared disaster")
        time.sleep(0.1)
    console.print(f"  relay: {published} event(s) to bcl.disaster.events; the certificate worker sees the disaster")
    return disaster


def surveys_and_flood_zone(run: DemoRun, centre: KioskCentre, disaster: Disaster) -> DisasterDemo:
    from domain.damage_levels import DamageLevel
    from domain.disaster_area import parse_area

    platform = run.platform
    assessment = platform.damage_assessment
    step("Damage assessment: a few surveys, then a flooded zone registered by a GeoJSON polygon")
    rows = _ledger_rows(run, disaster, ONAGAWA)
    applicant = next(r for r in centre.residents if r.profile.municipality_code == ONAGAWA
                     and _in_ledger(rows.get(r.profile.resident_code), r))
    home = rows[applicant.profile.resident_code]["dwelling_id"]
    dwellings = platform.disaster_ledger.dwellings(disaster.disaster_id, ONAGAWA)
    [centre_point] = [(d.longitude, d.latitude) for d in dwellings if d.dwelling_id == home]
    neighbours = sorted((d for d in dwellings if d.dwelling_id != home),
                        key=lambda d: math.dist((d.longitude, d.latitude), centre_point))
    nearest = [d for d in dwellings if d.dwelling_id == home] + neighbours[:ZONE_DWELLINGS - 1]
    # The zone: the hull of the applicant's dwelling and its nearest neighbours, widened by about 30 m.
    zone = shapely.multipoints([(d.longitude, d.latitude) for d in nearest]).convex_hull.buffer(0.0003)
    geojson = private_folder(run.settings.data_dir / "disaster") / "flooded-zone.geojson"
    geojson.write_text(shapely.to_geojson(shapely.set_precision(zone, 1e-6)), encoding="utf-8")
    run.outputs["flooded zone (GeoJSON)"] = geojson

    now = centre.clock()
    inside = {d.dwelling_id for d in nearest}
    outside = [d for d in dwellings if d.dwelling_id not in inside]
    surveyed = [(nearest[-1].dwelling_id, {"loss_ratio": "0.62", "flood_depth": "ABOVE_FLOOR"}),
                (outside[0].dwelling_id, {"loss_ratio": "0.12"}),
                (outside[len(outside) // 2].dwelling_id, {"level": "DAIKIBO_HANKAI"})]
    for dwelling_id, values in surveyed:
        done = assessment.survey(disaster.disaster_id, dwelling_id, surveyor="調査員 女川一", surveyed_on=None,
                                 now=now, **values)
        console.print(f"  survey: {done.level.japanese} {done.level.value} ({json.dumps(values)})")
    area = parse_area(geojson.read_bytes())
    preview = assessment.preview_area(disaster.disaster_id, ONAGAWA, area, DamageLevel.HANKAI)
    console.print(f"  zone preview: {preview.dwellings} dwellings, {preview.households} households inside; "
                  f"{preview.surveyed} surveyed one by one (kept); {preview.changes} to set to 半壊")
    applied = assessment.apply_area(disaster.disaster_id, ONAGAWA, area, DamageLevel.HANKAI, staff=DEMO_STAFF,
                                    now=now, reason="津波浸水区域（床上浸水）")
    console.print(f"  zone applied: area {applied.area_id}, {applied.preview.changes} dwellings set to 半壊, "
                  f"{applied.kept_surveyed} surveyed kept, {applied.events} event(s) for bcl.disaster.assessments")
    return DisasterDemo(disaster, applicant, rows[applicant.profile.resident_code])


def online_applications(run: DemoRun, centre: KioskCentre, demo: DisasterDemo, capture: MailCapture) -> None:
    from kiosk_sim.transport import InProcessTransport
    from streams.application_intake import card_signature, new_draft

    platform, disaster, clock = run.platform, demo.disaster, centre.clock
    step(f"Online applications signed with the virtual My Number card; mails through aiosmtpd on port {capture.port}")
    rows = _ledger_rows(run, disaster, ONAGAWA)
    home = demo.applicant_row["dwelling_id"]
    others = [r for r in centre.residents if r.profile.municipality_code == ONAGAWA
              and r.profile.household_number != demo.applicant.profile.household_number
              and _in_ledger(rows.get(r.profile.resident_code), r)
              and rows[r.profile.resident_code]["dwelling_id"] != home]
    # The second applicant's dwelling is not assessed yet: told "ready to issue" only once it is surveyed.
    unsurveyed = next(r for r in others if not platform.damage_assessment.assessments(
        disaster.disaster_id, rows[r.profile.resident_code]["dwelling_id"]))
    hisai = next(r for r in others if r is not unsurveyed)
    outsider = next(r for r in centre.residents if r.profile.municipality_code == OUTSIDE)
    applicants = [(demo.applicant, "RISAI_CERTIFICATE"), (unsurveyed, "RISAI_CERTIFICATE"),
                  (hisai, "HISAI_CERTIFICATE"), (outsider, "RISAI_CERTIFICATE")]
    intake = platform.application_intake(clock)
    stored = []
    for number, (resident, procedure) in enumerate(applicants, 1):
        draft = new_draft(disaster.disaster_id, procedure, f"applicant{number}@example.jp", clock())
        certificate, signature = card_signature(InProcessTransport(resident.card), draft, resident.pin)
        application = intake.submit(draft, certificate, signature)
        stored.append(application)
        console.print(f"  {application.application_id} {procedure} from {resident.profile.municipality_code}: "
                      + ("matched" if application.matched else "NOT matched") + f" — {application.match_reason}")
    mailer = platform.disaster_mailer(clock)
    console.print(f"  mailer: {mailer.run_once()} mail(s) to the staff")
    decisions = platform.disaster_applications
    for application in stored:
        if application.matched:
            decisions.accept(application.application_id, DEMO_STAFF, clock())
        else:
            decisions.reject(application.application_id, DEMO_STAFF, REJECTION, clock())
    console.print(f"  staff: {sum(a.matched for a in stored)} accepted, {sum(not a.matched for a in stored)} rejected; "
                  f"mailer: {mailer.run_once()} mail(s) (the rejection with its reason, ready to issue)")
    # The survey makes the second application ready; the mailer tells the applicant (once) in its next round.
    survey = platform.damage_assessment.survey(disaster.disaster_id, rows[unsurveyed.profile.resident_code][
        "dwelling_id"], surveyor="調査員 女川二", surveyed_on=None, now=clock(), loss_ratio="0.35")
    console.print(f"  the second applicant's dwelling surveyed {survey.level.japanese}; mailer: {mailer.run_once()} "
                  "mail(s) (ready to issue)")
    mails = [message_from_bytes(path.read_bytes(), policy=policy.default)
             for path in sorted(capture.handler.folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)]
    table = Table(title=f"{len(mails)} mails in {capture.handler.folder}")
    for col in ("to", "subject"):
        table.add_column(col)
    for message in mails:
        table.add_row(str(message["To"]), str(message["Subject"]))
    console.print(table)
    # The demo checks what it shows: the staff told of each application, the outsider told why they were refused.
    refused_to = f"applicant{len(applicants)}@example.jp"
    if sum(1 for m in mails if str(m["To"]) == platform.staff_mail_address(ONAGAWA)) < len(applicants) - 1 or not any(
            str(m["To"]) == refused_to and REJECTION in _body(m) for m in mails):
        raise RuntimeError(f"the mails in {capture.handler.folder} are not those of the applications")
    run.outputs["disaster mails (.eml)"] = capture.handler.folder


def _body(message: Message) -> str:
    part = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
    return "" if part is None else str(part.get_content())


def disaster_certificate(run: DemoRun, centre: KioskCentre, demo: DisasterDemo) -> None:
    from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskTerminal
    from kiosk_sim.transport import InProcessTransport

    step("罹災証明書 at a kiosk: the certificate worker reads the household's damage level from the ledger")
    published = run.platform.disaster_relay().publish_pending()
    console.print(f"  relay: {published} event(s) of surveys, areas and applications published")
    resident = demo.applicant
    pdf = run.settings.kiosk_dir / "risai.pdf"
    outcome = Kiosk(KioskTerminal("DEMO-0002", "lawson", "EAST", ONAGAWA), centre.connection,
                    clock=centre.clock).issue(InProcessTransport(resident.card), resident.pin,
                                              CertificateChoice(ONAGAWA, "DISASTER_DAMAGE"), print_to=pdf)
    if outcome.status.name != "ISSUED":
        raise RuntimeError(f"the 罹災証明書 was refused: {outcome.reason_code} {outcome.message}")
    console.print(f"  one 罹災証明書: {outcome.status.name} in {outcome.latency * 1000:.0f} ms, {outcome.fee_yen} yen "
                  f"→ {pdf}")
    run.outputs["罹災証明書 (PDF)"] = pdf
    if "罹災証明書" not in _pdftotext(pdf).replace(" ", ""):
        raise RuntimeError(f"{pdf} is not a 罹災証明書")
    _verify_pdf(run, pdf)


def _pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def ledger_extract(run: DemoRun, demo: DisasterDemo) -> None:
    from domain.staff_accounts import StaffRole
    from sinks.ledger_extract import extract_pdf

    platform, settings = run.platform, run.settings
    step("Staff: an account of 女川町, and a household's ledger extract (PDF)")
    demo.staff_password = secrets.token_urlsafe(12)
    now = dt.datetime.now(dt.UTC)
    member = platform.staff_accounts.add(ONAGAWA, DEMO_STAFF, demo.staff_password, StaffRole.SUPERVISOR, now)
    household_number = demo.applicant_row["household_number"]
    household = platform.staff_scope(member).household(demo.disaster.disaster_id, ONAGAWA, household_number,
                                                       action="staff.household.extract")
    pdf = private_folder(settings.data_dir / "disaster") / "ledger-extract.pdf"
    pdf.write_bytes(extract_pdf(household, printed_by=member.login, now=now, mincho_font=settings.mincho_font,
                                gothic_font=settings.gothic_font))
    text = _pdftotext(pdf)
    if household_number not in text or "被災者台帳" not in text:
        raise RuntimeError(f"the ledger extract {pdf} does not show household {household_number}")
    level = household.assessment.level.japanese if household.assessment else "未認定"
    console.print(f"  {member.login} ({member.role.value}, {member.municipality_code}); the extract of a household "
                  f"of {len(household.members)} ({level}) → {pdf} (pdftotext: the household is there)")
    run.outputs["ledger extract (PDF)"] = pdf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def shelters(run: DemoRun, centre: KioskCentre, demo: DisasterDemo, roster: RosterProcessor) -> None:
    """The roster, shelters opened in both towns, check-ins at terminals (streams.demo_shelters), on the evening of
    the kiosks' simulated day: the cards were issued that day."""
    from streams.demo_shelters import ShelterCast, shelters_and_evacuees

    ledger = {code: _ledger_rows(run, demo.disaster, code) for code in DISASTER_MUNICIPALITIES}
    with_cards = {code: [r for r in centre.residents if r.profile.municipality_code == code and r is not demo.applicant
                         and _in_ledger(ledger[code].get(r.profile.resident_code), r)]
                  for code in DISASTER_MUNICIPALITIES}
    evening = to_japan_time(centre.clock()).replace(hour=18, minute=0, second=0, microsecond=0)
    shelters_and_evacuees(run.platform, ShelterCast(demo.disaster, ledger, with_cards), roster, evening,
                          run.outputs, run.figures)


def disaster_pages(run: DemoRun, demo: DisasterDemo) -> None:
    step("The disaster's web pages: each started once here and answering; the commands to start them again")
    bcl = f".venv/bin/bcl --data-dir {run.settings.data_dir}"
    for command, default_port, what in (("staff-web", 8490, "staff pages"),
                                        ("application-page", 8481, "resident's application page")):
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "streams.cli", "--data-dir", str(run.settings.data_dir),
                                   "disaster", command, "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            status = _answers(f"http://127.0.0.1:{port}/")
        finally:
            server.terminate()
            server.wait(10)
        console.print(f"  {what}: HTTP {status}; run [bold]{bcl} disaster {command} --port {default_port}[/bold] "
                      f"and open http://127.0.0.1:{default_port}/")
        run.figures[what] = f"{bcl} disaster {command} → http://127.0.0.1:{default_port}/"
    run.figures["staff sign-in (demo)"] = f"{DEMO_STAFF} / {demo.staff_password} (女川町)"
    console.print(f"  staff sign-in: {DEMO_STAFF} / {demo.staff_password}; the ledger: {bcl} disaster ledger "
                  f"{demo.disaster.disaster_id} --municipality {ONAGAWA} --counts")

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
    # The demo's SMTP server (aiosmtpd): every mail of disaster support kept as an .eml file, nothing delivered.
    capture = MailCapture(settings.data_dir / "mail").start()
    roster: RosterProcessor | None = None
    try:
        run = DemoRun(Platform(replace(settings, bootstrap_servers=cluster.bootstrap_servers,
                                       smtp_port=capture.port)), cluster)
        # Reads the register the materialiser publishes and the welfare feed while the demo goes on.
        roster = RosterProcessor(run.platform)
        load_register(run)
        show_status(run)
        restore_mid_week(run)
        analyst_query(run)
        cards_follow_register(run)
        with kiosk_centre(run) as centre:
            kiosk_issuance(run, centre)
            began = time.perf_counter()
            disaster = declare_disaster(run, centre)
            demo = surveys_and_flood_zone(run, centre, disaster)
            online_applications(run, centre, demo, capture)
            disaster_certificate(run, centre, demo)
        shelters(run, centre, demo, roster)
        ledger_extract(run, demo)
        disaster_pages(run, demo)
        run.figures["disaster"] = (f"declared, assessed, applied for, issued and shown in "
                                   f"{time.perf_counter() - began:.1f} s")
        billing_and_statistics(run)
        centre_drill(run)
        summary(run)
    finally:
        if roster is not None:
            roster.stop()
        capture.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
