"""`bcl roster`: the 避難行動要支援者名簿 (docs/domain.md §6.5) on the command line. Each command is a thin shell over
sinks.evacuation_roster (the store in the disaster store's file) and the rules of domain.evacuation_roster; every read
of personal data is audited by the store. `processor` keeps the list live from the register and the welfare feed;
`sweep` is the daily run that notices who turned 75."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from domain.errors import InvalidArgumentError
from domain.evacuation_plan import supporter
from domain.evacuation_roster import Criterion, consent_decision, criterion, roster_criteria
from domain.japan_time import japan_date

# The disaster commands' reading of a rule's refusal as the option's error (one statement of it).
from streams.commands.option_types import JAPAN_DAY, RuleType, options_of_rule
from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.evacuation_roster import EvacuationRoster, RosterPerson


@click.group()
def roster() -> None:
    """避難行動要支援者名簿: criteria per municipality, the live list, consent tasks, consent, CSV and PDF."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _store(settings: Settings) -> EvacuationRoster:
    from streams.platform import Platform

    return Platform(settings).evacuation_roster


def _optional_number(argument: str, text: str) -> int | None:
    """A grade or an age, or 'none' (the criterion left out)."""
    if text.lower() == "none":
        return None
    if not text.isdigit():
        raise InvalidArgumentError(argument, f"{text!r} is neither a number nor 'none'")
    return int(text)


_municipality = click.option("--municipality", "code", required=True, help="6-digit local-government code.")
_resident = click.option("--resident", required=True, help="住民票コード of a listed person (11 digits).")
_on = click.option("--on", type=JAPAN_DAY, help="The day (YYYY-MM-DD, Japan time); default today.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of text.")


def _filters(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
            click.option("--town", help="Only people whose address is in this town (町名・大字 and 丁目, exactly)."),
            click.option("--criterion", "criterion_", type=RuleType("criterion", criterion),
                         help=f"Only people meeting this criterion: {', '.join(c.value for c in Criterion)}."),
            click.option("--consent", type=click.Choice(["given", "not-given"]),
                         help="Only people who consented to share in normal times (given), or who did not."),
            click.option("--name", help="Only people whose name or reading contains this text."))):
        command = option(command)
    return command


def _select(settings: Settings, code: str, town: str | None, criterion_: Criterion | None, consent: str | None,
            name: str | None, action: str) -> list[RosterPerson]:
    return _store(settings).listed(code, town=town, criterion=criterion_,
                                   consent=None if consent is None else consent == "given", name=name, action=action)


def _selection(town: str | None, criterion_: Criterion | None, consent: str | None, name: str | None) -> str:
    from domain.roster_extraction import RosterFilter

    return RosterFilter(town, criterion_, None if consent is None else consent == "given", name).selection


@roster.command("criteria")
@_municipality
@click.option("--care-levels", help="Comma-separated care levels that qualify (要介護3,要介護4 or CARE_3,...; "
                                    "'none' leaves the criterion out).")
@click.option("--physical-up-to",
              help="身体障害者手帳 grades from 1 up to this one qualify ('none': not a criterion).")
@click.option("--intellectual", "intellectual_grades",
              help="Comma-separated 療育手帳 grades that qualify (A, B; 'none').")
@click.option("--mental-up-to",
              help="精神障害者保健福祉手帳 grades from 1 up to this one qualify ('none').")
@click.option("--intractable-disease/--no-intractable-disease", default=None,
              help="Whether a designated intractable disease (指定難病) qualifies.")
@click.option("--elderly-age",
              help="Households of people this old or older only (living alone included) qualify ('none').")
@click.option("--defaults", is_flag=True, help="Go back to DOMAIN §6.5's defaults.")
@_on
@click.pass_obj
def criteria_command(settings: Settings, code: str, care_levels: str | None, physical_up_to: str | None,
                     intellectual_grades: str | None, mental_up_to: str | None,
                     intractable_disease: bool | None, elderly_age: str | None, defaults: bool,
                     on: dt.date | None) -> None:
    """Show the municipality's criteria, or set them (what is not given stays as it was) and evaluate its people
    again on the day."""
    from domain.evacuation_roster import DEFAULT_CRITERIA

    store = _store(settings)
    current = DEFAULT_CRITERIA if defaults else store.criteria(code)
    given = {"care_levels": care_levels, "physical_up_to": physical_up_to, "intellectual_grades": intellectual_grades,
             "mental_up_to": mental_up_to, "intractable_disease": intractable_disease, "elderly_age": elderly_age}
    if not defaults and all(v is None for v in given.values()):
        click.echo(json.dumps(current.as_dict(), ensure_ascii=False))
        return
    values = current.as_dict()
    with options_of_rule():
        for key, value in given.items():
            if isinstance(value, str) and key in ("care_levels", "intellectual_grades"):
                values[key] = [] if value.lower() == "none" else [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, str):
                values[key] = _optional_number(key, value)
            elif value is not None:
                values[key] = value
        chosen = roster_criteria(**values)
    changed = store.set_criteria(code, chosen, by=getpass.getuser(), now=_now(), on=on or japan_date(_now()))
    click.echo(json.dumps({**chosen.as_dict(), "listings_changed": changed}, ensure_ascii=False))


@roster.command("processor")
@click.pass_obj
def processor(settings: Settings) -> None:
    """Keep the list current from the register (bcl.residents) and the welfare feed (bcl.welfare.status): a Faust
    app, runs until Ctrl-C or SIGTERM, then prints its totals as JSON."""
    from infra.metrics import serve_metrics
    from streams.platform import Platform

    platform = Platform(settings)
    app = platform.evacuation_roster_processor()  # no cluster: one clear line first
    serve_metrics(settings.metrics_port)
    click.echo(json.dumps(app.run().as_dict()))


@roster.command("sweep")
@_municipality
@_on
@click.pass_obj
def sweep(settings: Settings, code: str, on: dt.date | None) -> None:
    """Evaluate every person of the municipality on the day (run daily: who turned 75 has no register event)."""
    day = on or japan_date(_now())
    changed = _store(settings).sweep(code, day)
    click.echo(json.dumps({"municipality_code": code, "day": day.isoformat(), "listings_changed": changed}))


def _person_line(p: RosterPerson) -> str:
    consent = p.consent.value.lower() if p.consent else "unasked"
    return (f"{p.resident_code}  {p.name}  {p.birth_date}  {p.sex}  {p.address}  {p.phone or '-'}  "
            f"{p.reason_text}  consent={consent}{' ' + str(p.consent_on) if p.consent_on else ''}")


def _person_json(p: RosterPerson) -> str:
    return json.dumps({"resident_code": p.resident_code, "name": p.name, "name_kana": p.name_kana,
                       "birth_date": p.birth_date.isoformat(), "sex": p.sex, "address": p.address, "town": p.town,
                       "phone": p.phone, "reasons": [r.value for r in p.reasons], "reason_text": p.reason_text,
                       "listed_since": p.listed_since.isoformat(),
                       "consent": p.consent.value if p.consent else None,
                       "consent_on": p.consent_on.isoformat() if p.consent_on else None}, ensure_ascii=False)


@roster.command("list")
@_municipality
@_filters
@_json
@click.pass_obj
def list_command(settings: Settings, code: str, town: str | None, criterion_: Criterion | None, consent: str | None,
                 name: str | None, as_json: bool) -> None:
    """The listed people (search and extraction: by town, criterion, consent, name)."""
    for person in _select(settings, code, town, criterion_, consent, name, "roster.list"):
        click.echo(_person_json(person) if as_json else _person_line(person))


@roster.command("tasks")
@_municipality
@click.option("--all", "everything", is_flag=True, help="Closed tasks too.")
@_json
@click.pass_obj
def tasks(settings: Settings, code: str, everything: bool, as_json: bool) -> None:
    """Consent tasks: people to ask for consent (a new condition, turned 75, became a one-person household)."""
    for task in _store(settings).tasks(code, open_only=not everything):
        values = {"task_id": task.task_id, "resident_code": task.resident_code, "name": task.name,
                  "cause": task.cause.value, "created_on": task.created_on.isoformat(),
                  "closed_on": task.closed_on.isoformat() if task.closed_on else None, "outcome": task.outcome}
        click.echo(json.dumps(values, ensure_ascii=False) if as_json else
                   f"#{task.task_id}  {task.resident_code}  {task.name}  {task.cause.value}  {task.created_on}"
                   + (f"  closed {task.closed_on} {task.outcome}" if task.closed_on else ""))


@roster.command("consent")
@_municipality
@_resident
@click.option("--decision", required=True, type=RuleType("decision", consent_decision),
              help="given, refused or withdrawn: consent to share the list's items in normal times.")
@_on
@click.pass_obj
def consent(settings: Settings, code: str, resident: str, decision: Any, on: dt.date | None) -> None:
    """Record a listed person's consent decision with its date (closes their open consent tasks)."""
    day = on or japan_date(_now())
    person = _store(settings).record_consent(code, resident, decision, day, by=getpass.getuser(), now=_now())
    click.echo(f"recorded {decision.value.lower()} on {day} for {person.resident_code}")


@roster.command("phone")
@_municipality
@_resident
@click.option("--number", required=True, help="The telephone number to print on the list.")
@click.pass_obj
def phone(settings: Settings, code: str, resident: str, number: str) -> None:
    """Enter a listed person's telephone number (the register has none)."""
    _store(settings).set_phone(code, resident, number, by=getpass.getuser(), now=_now())
    click.echo(f"telephone number of {resident} recorded")


@roster.command("export")
@_municipality
@_filters
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The CSV file to write.")
@click.pass_obj
def export(settings: Settings, code: str, town: str | None, criterion_: Criterion | None, consent: str | None,
           name: str | None, out: Path) -> None:
    """Write the listed people (or an extraction) as CSV (UTF-8, mode 0600: personal data)."""
    from infra.private_files import write_private_file

    people = _select(settings, code, town, criterion_, consent, name, "roster.export")
    write_private_file(out, _store(settings).csv_export(people).encode())
    click.echo(f"wrote {len(people)} people to {out}")


@roster.command("pdf")
@_municipality
@_filters
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The PDF file to write.")
@click.pass_obj
def pdf(settings: Settings, code: str, town: str | None, criterion_: Criterion | None, consent: str | None,
        name: str | None, out: Path) -> None:
    """Write the printable list (or an extraction) with the legal items, as a PDF (mode 0600)."""
    from domain.municipalities import municipality
    from infra.private_files import write_private_file
    from sinks.roster_pdf import roster_pdf

    people = _select(settings, code, town, criterion_, consent, name, "roster.pdf")
    document = roster_pdf(people, municipality_name=municipality(code).full_name,
                          selection=_selection(town, criterion_, consent, name), printed_by=getpass.getuser(),
                          now=_now(), mincho_font=settings.mincho_font, gothic_font=settings.gothic_font)
    write_private_file(out, document)
    click.echo(f"wrote {len(people)} people to {out}")


@roster.command("plan")
@_municipality
@_resident
@click.option("--supporter", "supporters", multiple=True, type=RuleType("supporter", supporter),
              help="A supporter (避難支援等実施者) as name:relation:phone; repeat for each (1 to 5).")
@click.option("--shelter", help="Destination: a shelter code of the municipality in the shipped open data.")
@click.option("--route", default="", help="Route notes (at most 500 characters).")
@click.option("--needs", default="", help="What the person needs (at most 500 characters).")
@click.pass_obj
def plan(settings: Settings, code: str, resident: str, supporters: tuple[Any, ...], shelter: str | None, route: str,
         needs: str) -> None:
    """Show a listed person's 個別避難計画, or set it (with --supporter and --shelter; replaces the plan)."""
    from dataclasses import asdict

    from domain.evacuation_plan import evacuation_plan
    from streams.platform import Platform

    plans = Platform(settings).evacuation_plans
    if not supporters and shelter is None:
        stored = plans.plan(code, resident)
        click.echo(json.dumps(None if stored is None else {
            **asdict(stored.plan), "updated_by": stored.updated_by, "updated_at": stored.updated_at.isoformat()},
            ensure_ascii=False))
        return
    if shelter is None:
        raise click.BadParameter("a plan needs its destination shelter", param_hint="'--shelter'")
    with options_of_rule():
        made = evacuation_plan(code, supporters=supporters, shelter_id=shelter, route=route, needs=needs)
    plans.set_plan(code, resident, made, by=getpass.getuser(), now=_now())
    click.echo(f"plan of {resident} stored: {len(made.supporters)} supporters, shelter {made.shelter.shelter_id}")


@roster.command("plan-pdf")
@_municipality
@_resident
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The PDF file to write.")
@click.pass_obj
def plan_pdf_command(settings: Settings, code: str, resident: str, out: Path) -> None:
    """Write a listed person's 個別避難計画 as a printable PDF (mode 0600)."""
    from domain.municipalities import municipality
    from infra.private_files import write_private_file
    from sinks.roster_pdf import plan_pdf
    from streams.platform import Platform

    platform = Platform(settings)
    stored = platform.evacuation_plans.plan(code, resident)
    if stored is None:
        raise click.ClickException(f"resident {resident} has no plan yet (`bcl roster plan` sets it)")
    person = platform.evacuation_roster.person(code, resident, action="roster.plan.pdf")
    write_private_file(out, plan_pdf(person, stored, municipality_name=municipality(code).full_name,
                                     printed_by=getpass.getuser(), now=_now(), mincho_font=settings.mincho_font,
                                     gothic_font=settings.gothic_font))
    click.echo(f"wrote the plan of {resident} to {out}")


@roster.command("history")
@_municipality
@_resident
@click.pass_obj
def history(settings: Settings, code: str, resident: str) -> None:
    """A person's listings, changes of reasons and removal (a death or move-out keeps them here only)."""
    for change in _store(settings).history(code, resident):
        click.echo(f"{change.day}  {change.change}  {','.join(r.value for r in change.reasons)}"
                   + (f"  {change.detail}" if change.detail else ""))
