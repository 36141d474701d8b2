"""`bcl kiosk`: a convenience-store kiosk asking BCL for certificates, one session or a load of many."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from domain.certificate_types import CertificateType
from domain.kiosk_rules import ISSUING_CENTRES, MAX_COPIES, MIN_COPIES
from streams.commands.option_types import SERIAL, at_option
from streams.settings import Settings

if TYPE_CHECKING:
    from kiosk_sim.load import LoadReport
    from kiosk_sim.population import ResidentProfile, VirtualCardIssuer
    from streams.simulated_clock import SimulatedClock

# --type values: the certificate types in lower case with dashes (resident-record, seal-registration, ...).
TYPE_NAMES = {kind.value.lower().replace("_", "-"): kind.value for kind in CertificateType}
VPCD_READER = "Virtual PCD"


@click.group("kiosk")
def kiosk() -> None:
    """Convenience-store kiosks: one certificate request with a card in a PC/SC reader, or a load of many."""


def kiosk_clock(settings: Settings, at: dt.datetime | None) -> SimulatedClock | None:
    """The kiosk's clock (None: the real one), agreed with any certificate worker running on this data dir."""
    from domain.japan_time import format_instant
    from streams.simulated_clock import kiosk_clock as agreed_clock
    from streams.simulated_clock import running_worker_clocks

    workers = running_worker_clocks(settings.worker_clock_dir)
    clock = agreed_clock(at, workers)
    if clock is not None and at is None:
        click.echo(f"following the certificate worker's simulated clock: {format_instant(clock())}", err=True)
    return clock


def _now(clock: SimulatedClock | None) -> dt.datetime:
    return clock() if clock is not None else dt.datetime.now(dt.UTC)


def card_issuer(settings: Settings, now: dt.datetime | None = None) -> VirtualCardIssuer:
    """Virtual cards with the card-lifecycle processor's key pool, so both issue the same certificate per serial.
    `now`: the kiosk's time (a simulated one for --at); a PKI made here is valid from the earlier of it and now."""
    from streams.platform import Platform

    platform = Platform(settings)
    real_now = dt.datetime.now(dt.UTC)
    platform.pki.initialise(min(now, real_now) if now is not None else real_now)
    pool = platform.key_pool()
    if not pool.path.exists():
        from rich.progress import Progress

        with Progress(transient=True) as progress:
            task = progress.add_task(f"generating the card key pool ({pool.size} RSA-2048 keys, once)",
                                     total=pool.size)
            pool.load(lambda n: progress.advance(task, n))
    return platform.card_issuer()


def resident_profiles(settings: Settings, code: str, from_register: bool, limit: int | None,
                      **audit: str) -> list[ResidentProfile]:
    """The municipality's residents with a certificate: from the materialised backup, or from the register
    the adapter published (its simulator, at the full load). `audit`: action and purpose of the audited read."""
    from kiosk_sim.population import profiles_from_backup, profiles_from_records
    from streams.platform import Platform

    if from_register:
        from streams.adapter import AdapterState
        from streams.register.reference import load_reference_data

        state = AdapterState.load(settings.adapter_dir, code)
        simulator = state.simulator(load_reference_data(), settings.mincho_font)
        profiles = profiles_from_records(simulator.register.records)
        return profiles[:limit] if limit is not None else profiles
    return profiles_from_backup(Platform(settings).snapshot_store, code, settings.audit_file, limit, **audit)


@kiosk.command("issue")
@click.option("--municipality", "code", required=True, help="6-digit code of the municipality asked to issue.")
@click.option("--type", "type_name", type=click.Choice(sorted(TYPE_NAMES)), default="resident-record",
              show_default=True, help="The certificate.")
@click.option("--household", is_flag=True, help="住民票の写し of the whole household (default: the requester only).")
@click.option("--head-and-relationship", is_flag=True, help="Optional item 世帯主・続柄.")
@click.option("--domicile", is_flag=True, help="Optional item 本籍・筆頭者.")
@click.option("--fiscal-year", type=int, help="Tax certificates: the fiscal year (default: the latest assessed).")
@click.option("--copies", type=click.IntRange(MIN_COPIES, MAX_COPIES), default=1, show_default=True,
              help="Number of copies.")
@click.option("--pin", required=True, help="The card's 4-digit authentication PIN (3 tries, then the card locks).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to 'print' the issued certificate (PDF), in an existing directory (default: "
                   "DATA_DIR/kiosk/CODE-TYPE-TIME.pdf: it holds personal data).")
@click.option("--reader", help="PC/SC reader whose name contains this (default: any reader with a card).")
@click.option("--start-card", is_flag=True,
              help="Insert the virtual card of --resident/--serial into the vpcd reader for this session "
                   "(PIN 1234; pcscd is started if it is not running) instead of using a card already served by "
                   "`bcl card serve`.")
@click.option("--resident", "resident_code",
              help="With --start-card: the resident's code (住民票コード); `bcl kiosk residents` lists some.")
@click.option("--serial", type=SERIAL, help="With --start-card: the card certificate's serial (16 hex digits).")
@click.option("--kiosk-id", default="seven-eleven-cli-00001", show_default=True, help="Id of this kiosk.")
@click.option("--vendor", default="seven-eleven", show_default=True, help="Kiosk operator.")
@click.option("--centre", type=click.Choice(ISSUING_CENTRES), default="EAST", show_default=True,
              help="Issuance centre of the vendor.")
@click.option("--kiosk-municipality", help="Where the kiosk stands (default: --municipality).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the answer.")
@at_option
@click.pass_obj
def issue(settings: Settings, code: str, type_name: str, household: bool, head_and_relationship: bool,
          domicile: bool, fiscal_year: int | None, copies: int, pin: str, out: Path | None, reader: str | None,
          start_card: bool, resident_code: str | None, serial: str | None, kiosk_id: str, vendor: str, centre: str,
          kiosk_municipality: str | None, timeout: float, at: dt.datetime | None) -> None:
    """One kiosk session with the card in a PC/SC reader: read the certificate, verify the PIN, have the card
    sign the challenge, send the request to BCL, wait for the answer and save the certificate PDF.

    A wrong or locked PIN is shown and nothing is sent. Exits 1 unless a certificate was issued."""
    from domain.municipalities import municipality
    from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskTerminal, OutcomeStatus
    from kiosk_sim.transport import PcscTransport
    from streams.platform import Platform

    if (resident_code or serial) and not start_card:
        raise click.UsageError("--resident and --serial choose the virtual card for --start-card")
    if start_card and not (resident_code or serial):
        raise click.UsageError(f"--start-card needs --resident or --serial (`bcl kiosk residents --municipality "
                               f"{code}` lists residents with a card)")
    if out is None:
        # The kiosk makes the directory when it prints (only then): nothing is written if nothing is issued.
        out = settings.kiosk_dir / f"{code}-{type_name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.pdf"
    elif not out.parent.is_dir():
        raise click.BadParameter(f"the directory {out.parent} does not exist", param_hint="'--out'")
    choice = CertificateChoice(code, TYPE_NAMES[type_name], "WHOLE_HOUSEHOLD" if household else "SELF",
                               head_and_relationship, domicile, fiscal_year, copies)
    terminal = KioskTerminal(kiosk_id, vendor, centre, kiosk_municipality or code)
    municipality(code)
    municipality(terminal.municipality_code)
    # Before a card or pcscd is touched: no cluster, or a clock the worker would refuse, ends here.
    platform = Platform(settings)
    platform.bootstrap_servers  # noqa: B018 - checked before a card or pcscd is touched
    clock = kiosk_clock(settings, at)
    server = daemon = None
    try:
        if start_card:
            from infra.pcscd import PcscDaemon

            daemon = PcscDaemon.ensure_running(log_path=settings.pcscd_log)
            server = _insert_virtual_card(settings, code, resident_code, serial, _now(clock))
            reader = reader or VPCD_READER
        with platform.kiosk_connection(response_timeout=timeout) as connection, \
                PcscTransport.open(reader, timeout=10 if start_card else 5) as transport:
            kiosk_terminal = Kiosk(terminal, connection) if clock is None else Kiosk(terminal, connection, clock=clock)
            outcome = kiosk_terminal.issue(transport, pin, choice, print_to=out)
    finally:
        if server is not None:
            server.close()
        if daemon is not None:
            daemon.stop()  # only if this command started it
    click.echo(outcome.message)
    if outcome.status is OutcomeStatus.ISSUED:
        click.echo(f"printed {outcome.pages} sheet(s) to {out} ({outcome.pdf_bytes // 1024} KiB), fee "
                   f"{outcome.fee_yen} yen, request {outcome.request_id}, {outcome.latency * 1000:.0f} ms")  # type: ignore[operator]
        return
    detail = f"{outcome.status.value}" + (f" {outcome.reason_code}" if outcome.reason_code else "")
    raise click.ClickException(f"not issued ({detail})" + (f", request {outcome.request_id}" if outcome.sent else ""))


def _insert_virtual_card(settings: Settings, code: str, resident_code: str | None, serial: str | None,  # type: ignore[no-untyped-def]
                         now: dt.datetime):
    from kiosk_sim.errors import KioskSimError
    from kiosk_sim.vpcd import VpcdCardServer

    profiles = [p for p in resident_profiles(settings, code, False, None)
                if p.resident_code == resident_code or p.serial == serial]
    if not profiles:
        raise KioskSimError(f"no current resident of {code} with a JPKI certificate matches "
                            f"{'resident ' + resident_code if resident_code else 'serial ' + str(serial)} "
                            f"(`bcl kiosk residents --municipality {code}` lists some)")
    resident = card_issuer(settings, now).card(profiles[0], now)
    if resident is None:
        raise KioskSimError(f"serial {profiles[0].serial} was issued with a key outside the card key pool: "
                            "no virtual card can sign for it")
    server = VpcdCardServer(resident.card)
    server.start()
    return server


@kiosk.command("load")
@click.option("--kiosks", type=click.IntRange(1, 2000), default=50, show_default=True, help="Number of terminals.")
@click.option("--rate", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
              help="Arrivals per second (Poisson, open loop).")
@click.option("--duration", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              help="Seconds of arrivals.")
@click.option("--municipality", "codes", multiple=True, required=True,
              help="Municipality whose residents come to the kiosks (repeatable); it must be loaded.")
@click.option("--residents", "limit", type=click.IntRange(min=1), help="At most this many residents per municipality.")
@click.option("--from-register", is_flag=True,
              help="Take residents from the register the adapter published instead of the materialised backup.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of arrivals, choices and kiosks.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds a kiosk waits for an answer.")
@click.option("--centres", is_flag=True,
              help="Two issuing centres: each request to its vendor's centre, to the other one if it does not answer.")
@at_option
@click.pass_obj
def load(settings: Settings, kiosks: int, rate: float, duration: float, codes: tuple[str, ...], limit: int | None,
         from_register: bool, seed: int, timeout: float, centres: bool, at: dt.datetime | None) -> None:
    """Many kiosks of several vendors and both centres sending a realistic mix of requests at a rate,
    with in-process virtual cards; prints latency percentiles, certificates/s and outcomes."""
    import random

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from domain.municipalities import municipality
    from kiosk_sim.load import LoadGenerator, make_terminals
    from streams.platform import Platform
    from streams.register.reference import load_reference_data

    console = Console()
    for code in codes:
        municipality(code)
    profiles = [p for code in codes for p in resident_profiles(settings, code, from_register, limit)]
    # Before the virtual cards are made (seconds to minutes): no cluster, or a clock the worker refuses, ends here.
    platform = Platform(settings)
    platform.bootstrap_servers  # noqa: B018 - checked before the virtual cards are made
    clock = kiosk_clock(settings, at)
    now = _now(clock)
    issuer = card_issuer(settings, now)
    with Progress(transient=True) as progress:
        task = progress.add_task("virtual cards", total=len(profiles))
        residents = issuer.population(profiles, now, lambda n: progress.advance(task, n))
    c = issuer.counters
    console.print(f"{len(residents)} virtual cards ({c.issued} certificates issued now, {c.reused} reused"
                  + (f", {c.foreign} skipped: issued with keys outside the pool" if c.foreign else "") + ")")
    reference = load_reference_data()
    prefectures = {reference.municipality(code).prefecture for code in codes}
    neighbours = [m.code for m in reference.municipalities if m.prefecture in prefectures and m.code not in codes]
    terminals = make_terminals(kiosks, list(codes), neighbours[:20], random.Random(seed))
    with platform.kiosk_connection(response_timeout=timeout, centres=centres) as connection:
        columns = ["{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"{rate:g}/s for {duration:g} s", total=round(rate * duration))
            report = LoadGenerator(connection, residents, terminals, seed=seed, clock=clock).run(
                rate, duration, progress=lambda n: progress.advance(task, n))
    print_report(console, report)


@kiosk.command("residents")
@click.option("--municipality", "code", required=True, help="6-digit code of a municipality the backup holds.")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True, help="How many to list.")
@click.pass_obj
def residents(settings: Settings, code: str, limit: int) -> None:
    """List a few current residents with a JPKI certificate, for `bcl kiosk issue --start-card --resident`.

    Shows what choosing a virtual card needs and nothing more: the resident code and the certificate, no
    name, address or individual number (docs/domain.md §8). The read is recorded in the audit log."""
    from rich.console import Console
    from rich.table import Table

    from domain.municipalities import municipality

    place = municipality(code)
    profiles = resident_profiles(settings, code, False, limit, purpose="listing residents for a kiosk session "
                                 "(resident codes and certificate serials only)", action="kiosk-residents")
    table = Table(title=f"residents of {code} {place.name} with a certificate (first {len(profiles)})")
    for column in ("resident code", "certificate", "serial", "valid until", "seal", "tax years"):
        table.add_column(column)
    for p in profiles:
        table.add_row(p.resident_code, p.kind.value.lower(), p.serial, p.not_after.isoformat(),
                      "registered" if p.has_seal else "-",
                      ", ".join(str(y) for y in p.tax_years) or "-")
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)
    click.echo(f"try: bcl kiosk issue --municipality {code} --start-card --resident {profiles[0].resident_code} "
               "--pin 1234  (virtual cards have PIN 1234)")


def print_report(console, report: LoadReport) -> None:  # type: ignore[no-untyped-def]
    """The load's figures as rich tables (shared with bench/kiosk.py)."""
    from rich.table import Table

    p = report.percentiles_ms()
    summary = Table(title=f"kiosk load: {report.kiosks} kiosks, {report.rate:g}/s offered for {report.duration:g} s")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    out_of_town = sum(1 for s in report.sessions if s.out_of_town)
    for name, value in (
        ("arrivals (offered/s)", f"{report.arrivals} ({report.offered_rate:.1f}/s)"),
        ("issued (certificates/s)", f"{report.issued} ({report.issued_per_second:.1f}/s)"),
        ("answered, issued or refused (/s)", f"{len(report.answered)} ({report.answered_per_second:.1f}/s)"),
        ("request→response p50 / p95 / p99", f"{p[50]:.0f} / {p[95]:.0f} / {p[99]:.0f} ms"),
        ("request→response max", f"{p[100]:.0f} ms"),
        ("at a kiosk in another municipality", str(out_of_town)),
    ):
        summary.add_row(name, value)
    console.print(summary)
    outcomes = Table(title="outcomes")
    outcomes.add_column("status and reason")
    outcomes.add_column("sessions", justify="right")
    for reason, count in report.by_reason().most_common():
        outcomes.add_row(reason, str(count))
    console.print(outcomes)
    mix = Table(title="requests by certificate and by kiosk vendor")
    mix.add_column("certificate")
    mix.add_column("n", justify="right")
    mix.add_column("vendor (centre)")
    mix.add_column("n", justify="right")
    certificates, vendors = report.by_certificate().most_common(), report.by_vendor().most_common()
    for i in range(max(len(certificates), len(vendors))):
        left = certificates[i] if i < len(certificates) else ("", "")
        right = vendors[i] if i < len(vendors) else ("", "")
        mix.add_row(left[0], str(left[1]), right[0], str(right[1]))
    console.print(mix)
    if report.failures:
        console.print(f"[red]{len(report.failures)} sessions failed in the kiosk process[/red]: {report.failures[0]}")
