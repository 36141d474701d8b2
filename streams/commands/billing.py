"""`bcl billing`: the fee rules of docs/domain.md §5 on the command line, the billing processor (`run`), the
per-municipality participation table (`participation`) and statements (`statement`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from streams.commands.option_types import JAPAN_DAY
from streams.settings import Settings

_MONTH = click.IntRange(1, 12)
_POPULATION = click.IntRange(min=0)


def _emit(values: dict[str, Any], as_json: bool, labels: dict[str, str]) -> None:
    if as_json:
        click.echo(json.dumps(values))
        return
    width = max(len(label) for label in labels.values())
    for key, label in labels.items():
        click.echo(f"{label:<{width}}  {values[key]:>14,} yen")


@click.group()
def billing() -> None:
    """Fees, contributions, the disaster-system fee; the billing processor and statements (yen, tax included)."""


@billing.command()
@click.option(
    "--class",
    "municipality_class",
    required=True,
    type=click.Choice(["designated_city", "city", "special_ward", "town", "village"]),
    help="Municipality class (政令市, 市, 特別区, 町, 村).",
)
@click.option("--population", required=True, type=_POPULATION, help="Register population.")
@click.option("--mode", required=True, type=click.Choice(["bcl", "own"]), help="Issuing through BCL or own server.")
@click.option("--fiscal-year", required=True, type=int, help="Fiscal year (年度), e.g. 2025 for April 2025–March 2026.")
@click.option("--join-month", type=_MONTH, help="Calendar month (1–12) of joining, when joining in this fiscal year.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"annual\": ..., \"billed\": ...}.")
def contribution(
    municipality_class: str, population: int, mode: str, fiscal_year: int, join_month: int | None, as_json: bool
) -> None:
    """The annual operating contribution (運営負担金), pro-rated by months in the joining year."""
    from domain.fees import FeeError, IssuingMode, MunicipalityClass, annual_contribution, billed_contribution

    cls, issuing = MunicipalityClass(municipality_class), IssuingMode(mode)
    try:
        annual = annual_contribution(cls, population, issuing, fiscal_year)
        billed = billed_contribution(cls, population, issuing, fiscal_year, join_month)
    except FeeError as exc:
        raise click.BadParameter(str(exc), param_hint="'--fiscal-year'") from exc
    _emit({"annual": annual, "billed": billed}, as_json, {"annual": "annual", "billed": f"billed FY{fiscal_year}"})


@billing.command("disaster-fee")
@click.option("--population", required=True, type=_POPULATION,
              help="Register population on 1 January of the previous fiscal year.")
@click.option("--fiscal-year", required=True, type=int, help="Fiscal year (年度) billed.")
@click.option("--start-month", type=_MONTH, help="Calendar month (1–12) of a start during the fiscal year.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with annual, monthly and billed.")
def disaster_fee(population: int, fiscal_year: int, start_month: int | None, as_json: bool) -> None:
    """The cloud disaster-victim support system fee: 185,000 + 10 × population a year."""
    from domain.fees import billed_disaster_system_fee, disaster_system_annual_fee, disaster_system_monthly_fee

    values = {
        "annual": disaster_system_annual_fee(population),
        "monthly": disaster_system_monthly_fee(population),
        "billed": billed_disaster_system_fee(population, start_month),
    }
    _emit(values, as_json, {"annual": "annual", "monthly": "monthly", "billed": f"billed FY{fiscal_year}"})


@billing.command("certificate-fees")
@click.option("--certificates", required=True, type=click.IntRange(min=0), help="Certificates issued through BCL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"bcl_fee\": ..., \"consignment_fee\": ...}.")
def certificate_fees_command(certificates: int, as_json: bool) -> None:
    """The BCL issuing fee (180 each) and the consignment fee to the kiosk operator (117 each)."""
    from domain.fees import certificate_fees

    fees = certificate_fees(certificates)
    _emit(
        {"bcl_fee": fees.bcl_fee, "consignment_fee": fees.consignment_fee},
        as_json,
        {"bcl_fee": "BCL issuing fee", "consignment_fee": "consignment fee"},
    )


# -- the billing processor and statements ----------------------------------------------------------------------


def _billing_month(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from domain.billing import BillingMonth
    from domain.fees import FeeError

    if value.lower() == "none" and param.name == "disaster_system_from":
        return value.lower()
    try:
        return BillingMonth.parse(value)
    except FeeError as exc:
        raise click.BadParameter(str(exc)) from exc


@billing.command("run")
@click.option("--until-caught-up", is_flag=True,
              help="Stop once every partition is read to its end and nothing arrived for --idle-seconds.")
@click.option("--idle-seconds", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="With --until-caught-up: how long to wait for more events at the end.")
@click.option("--group-id", default=None, help="Consumer group (default billing-processor).")
@click.pass_obj
def run_processor(settings: Settings, until_caught_up: bool, idle_seconds: float, group_id: str | None) -> None:
    """Run the billing processor in the foreground: bcl.certificates.issued → the billing ledger (the
    de-duplicated issued-certificate log in the snapshot store). Each certificate is counted once, also when
    events are redelivered or the processor restarts. Ctrl-C stops it after the current batch."""
    import signal
    import threading

    from rich.console import Console

    from infra.metrics import serve_metrics
    from streams.billing import PROCESSOR
    from streams.platform import Platform

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    processor = Platform(settings).billing(group_id=group_id or PROCESSOR)
    serve_metrics(settings.metrics_port)
    console = Console(stderr=True)
    with console.status("billing: waiting for certificates…") as status:
        def progress(counters: Any) -> None:
            status.update(f"billing: {counters.consumed:,} events, {counters.counted:,} certificates counted, "
                          f"{counters.duplicates:,} duplicates, {counters.dead_lettered:,} dead letters")
        try:
            counters = processor.run(stop, until_caught_up=until_caught_up, idle_seconds=idle_seconds,
                                     on_batch=progress)
        except KeyboardInterrupt:
            stop.set()
            counters = processor.counters
    click.echo(json.dumps(counters.as_dict()))


@billing.command("participation")
@click.option("--municipality", required=True, help="Municipality code (6 digits with check digit).")
@click.option("--mode", type=click.Choice(["bcl", "own"]), help="Issuing through BCL or the municipality's own server.")
@click.option("--joined", callback=_billing_month, help="First month of participation, YYYY-MM.")
@click.option("--disaster-system-from", callback=_billing_month,
              help="Start of the disaster-victim support system, YYYY-MM, or 'none' if not used "
                   "(default: from joining).")
@click.pass_obj
def participation(settings: Settings, municipality: str, mode: str | None, joined: Any,
                  disaster_system_from: Any) -> None:
    """Show or set how a municipality takes part (mode, joining month, disaster system); used by the fiscal-year
    statement. Without options, shows the current values."""
    from dataclasses import replace

    from domain.fees import IssuingMode
    from sinks.billing_participation import participation_of, set_participation

    path = settings.billing_dir / "participation.csv"
    current = participation_of(path, municipality)
    changes: dict[str, Any] = {}
    if mode is not None:
        changes["mode"] = IssuingMode(mode)
    if joined is not None:
        changes["joined"] = joined
    if disaster_system_from == "none":
        changes.update(disaster_system=False, disaster_system_from=None)
    elif disaster_system_from is not None:
        changes.update(disaster_system=True, disaster_system_from=disaster_system_from)
    if changes:
        current = replace(current, **changes)
        set_participation(path, municipality, current)
    start = current.disaster_system_start()
    click.echo(json.dumps({
        "municipality_code": municipality, "mode": str(current.mode),
        "joined": str(current.joined) if current.joined else None,
        "disaster_system": current.disaster_system,
        "disaster_system_from": (str(start) if start else None) if current.disaster_system else None,
    }))


@billing.command("statement")
@click.option("--municipality", required=True, help="Municipality code (6 digits with check digit), e.g. 011002.")
@click.option("--month", callback=_billing_month, help="Monthly statement of this month, YYYY-MM.")
@click.option("--fiscal-year", type=click.IntRange(min=2000, max=2999),
              help="Fiscal-year statement (年度, April–March), e.g. 2025.")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write the PDF and CSV (default <data-dir>/billing/statements).")
@click.option("--issued-on", type=JAPAN_DAY, help="Issue date printed, YYYY-MM-DD (default today, Japan).")
@click.option("--json", "as_json", is_flag=True, help="Print only the totals as JSON (with the files written).")
@click.pass_obj
def statement(settings: Settings, municipality: str, month: Any, fiscal_year: int | None, out_dir: Path | None,
              issued_on: Any, as_json: bool) -> None:
    """Write a billing statement a municipal clerk can read (Japanese PDF, and CSV) and print its totals: per
    month the counts by certificate type and kiosk vendor, fees collected, consignment fees and net income;
    per fiscal year also the BCL fee, the operating contribution and the disaster-system fee."""
    import datetime as dt

    from domain.japan_time import japan_date
    from sinks.billing_statement import write_csv, write_pdf
    from sinks.billing_totals import fiscal_year_statement, monthly_statement

    if (month is None) == (fiscal_year is None):
        raise click.UsageError("give exactly one of --month YYYY-MM or --fiscal-year YYYY")
    day = issued_on if issued_on is not None else japan_date(dt.datetime.now(dt.UTC))
    if month is not None:
        built: Any = monthly_statement(settings.snapshot_dir, municipality, month, day)
        stem = f"statement-{municipality}-{month}"
    else:
        built = fiscal_year_statement(settings.snapshot_dir,
                                      settings.billing_dir / "participation.csv", municipality, fiscal_year, day)
        stem = f"statement-{municipality}-FY{fiscal_year}"
    folder = out_dir or settings.billing_dir / "statements"
    pdf = write_pdf(built, folder / f"{stem}.pdf", mincho_font=settings.mincho_font, gothic_font=settings.gothic_font)
    csv_path = write_csv(built, folder / f"{stem}.csv")
    totals = built.totals()
    if as_json:
        click.echo(json.dumps({**totals, "files": {"pdf": str(pdf), "csv": str(csv_path)}}, ensure_ascii=False))
        return
    labels = {"certificates": "certificates", "fees_collected": "fees collected", "consignment_fee": "consignment fee",
              "net_income": "net income"}
    if fiscal_year is not None:
        labels.update(bcl_fee="BCL fee", contribution="contribution", disaster_system_fee="disaster-system fee",
                      year_end_total="year-end total")
    click.echo(f"{totals['municipality_code']} {totals['municipality_name']} {month or f'FY{fiscal_year}'}")
    width = max(len(v) for v in labels.values())
    for key, label in labels.items():
        click.echo(f"{label:<{width}}  {totals[key]:>14,}")
    click.echo(f"wrote {pdf}\nwrote {csv_path}")
