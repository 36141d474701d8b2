"""`bcl safety`: who is unaccounted for in a disaster, live (docs/domain.md §6.6) — counts first, names for staff
with `--names` (audited) —, the 個別避難計画 to follow (`plans`: listed people of damaged dwellings not seen at any
shelter, with their plans, §6.5), the safety confirmations staff record, and the answer to a safety inquiry (安否照会),
which discloses only what the person's recorded consent allows. Thin shells over sinks.unaccounted and the rules of
domain.safety."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import TYPE_CHECKING

import click

from domain.japan_time import format_instant
from domain.safety import Category, ConfirmationMethod, SafetyStatus, Whereabouts
from streams.commands.option_types import INSTANT, JSON_OPTION, options_of_rule
from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.unaccounted import Unaccounted


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _store(settings: Settings) -> Unaccounted:
    from streams.platform import Platform

    return Platform(settings).unaccounted


@click.group()
def safety() -> None:
    """安否: who is unaccounted for in a disaster (counts, names for staff), confirmations, inquiries."""


@safety.command()
@click.argument("disaster_id")
@click.option("--municipality", required=True, metavar="CODE", help="The municipality whose residents are counted.")
@click.option("--names", is_flag=True, help="List the names too (for staff: the read is audited).")
@click.option("--whereabouts", default=Whereabouts.UNACCOUNTED.value, show_default=True,
              metavar="|".join(["all", *Whereabouts]), help="With --names: whose names (all: everyone looked for).")
@click.option("--category", metavar="|".join(c.value for c in (Category.DAMAGED_DWELLING, Category.LISTED)),
              help="With --names: only those looked for for this reason.")
@click.option("--town", default="", help="With --names: only those whose address contains this.")
@click.option("--page", default="0", help="With --names: the page of 50 names, from 0.")
@JSON_OPTION
@click.pass_obj
def unaccounted(settings: Settings, disaster_id: str, municipality: str, names: bool, whereabouts: str,
                category: str | None, town: str, page: str, as_json: bool) -> None:
    """The counts of a municipality now (who is looked for, unaccounted for, sheltered here or elsewhere,
    confirmed), and with --names the people."""
    from sinks.unaccounted import PAGE_SIZE, names_query

    store = _store(settings)
    with options_of_rule():
        query = names_query({"whereabouts": whereabouts, "category": category or "", "town": town, "page": page})
    counts = store.counts(disaster_id.strip(), municipality.strip())
    listed = store.people(disaster_id.strip(), municipality.strip(), query, actor=getpass.getuser()) \
        if names else None
    if as_json:
        values = counts.as_dict()
        if listed is not None:
            values |= {"names": {"total": listed.total, "page": listed.page, "pages": listed.pages,
                                 "people": [p.as_dict() for p in listed.people]}}
        click.echo(json.dumps(values, ensure_ascii=False))
        return
    by = counts.unaccounted_by_category
    click.echo(f"looked for {counts.looked_for}: unaccounted for {counts.unaccounted} "
               f"(damaged dwelling {by['DAMAGED_DWELLING']}, listed {by['LISTED']}), sheltered {counts.sheltered}, "
               f"sheltered in another municipality {counts.sheltered_elsewhere}, confirmed "
               + ", ".join(f"{k.lower()} {v}" for k, v in counts.confirmed.items())
               + f", removed by the register {counts.register}; evacuees from elsewhere at its shelters "
                 f"{counts.hosted_from_elsewhere}")
    if listed is None:
        return
    first = listed.page * PAGE_SIZE
    click.echo(f"names {first + 1 if listed.people else 0}-{first + len(listed.people)} "
               f"of {listed.total}:")
    for p in listed.people:
        where = f" at {p.shelter_id}" if p.shelter_id else ""
        confirmed = f" {p.confirmed.value} ({p.method.value if p.method else ''})" if p.confirmed else ""
        click.echo(f"{p.resident_code}  {p.name}  {p.address}  [{','.join(c.value for c in p.categories)}]  "
                   f"{p.whereabouts.value}{where}{confirmed}")


@safety.command()
@click.argument("disaster_id")
@click.option("--municipality", required=True, metavar="CODE", help="The municipality whose list is read.")
@JSON_OPTION
@click.pass_obj
def plans(settings: Settings, disaster_id: str, municipality: str, as_json: bool) -> None:
    """The 個別避難計画 to follow now: the listed people whose dwelling is damaged and who are not at any shelter nor
    confirmed, each with their plan's supporters, destination, route and needs (for staff: audited)."""
    to_follow = _store(settings).plans_to_follow(disaster_id.strip(), municipality.strip(), actor=getpass.getuser())
    if as_json:
        click.echo(json.dumps({"people": [t.as_dict() for t in to_follow]}, ensure_ascii=False))
        return
    click.echo(f"{len(to_follow)} listed people of damaged dwellings not at any shelter nor confirmed:")
    for t in to_follow:
        p = t.person
        click.echo(f"{p.resident_code}  {p.name}  {p.address}")
        if t.plan is None:
            click.echo("  no 個別避難計画 yet")
            continue
        plan = t.plan.plan
        for s in plan.supporters:
            click.echo(f"  supporter {s.name} ({s.relation}) {s.phone}")
        click.echo(f"  to {plan.shelter.name} ({plan.shelter.shelter_id}); route: {plan.route or '-'}; "
                   f"needs: {plan.needs or '-'}")


@safety.command()
@click.argument("disaster_id")
@click.argument("municipality_code")
@click.argument("resident_code")
@click.option("--status", required=True, metavar="|".join(SafetyStatus), help="What was found.")
@click.option("--method", required=True, metavar="|".join(ConfirmationMethod), help="How it was learnt.")
@click.option("--note", default="", help="One line of what staff need to know (at most 200 characters).")
@click.option("--staff", required=True, help="The staff member who records it.")
@click.option("--at", type=INSTANT, metavar="TIME", help="When it was learnt (default now); Japan time if no offset.")
@JSON_OPTION
@click.pass_obj
def confirm(settings: Settings, disaster_id: str, municipality_code: str, resident_code: str, status: str,
            method: str, note: str, staff: str, at: dt.datetime | None, as_json: bool) -> None:
    """Record a person's safety confirmation (once; durable when this returns)."""
    with options_of_rule():
        stored = _store(settings).confirm(disaster_id.strip(), municipality_code.strip(), resident_code.strip(),
                                          status=status, method=method, note=note, by=staff, now=_now(), at=at)
    c = stored.confirmation
    values = {"resident_code": resident_code.strip(), "status": c.status.value, "method": c.method.value,
              "confirmed_at": format_instant(c.confirmed_at), "recorded_by": stored.recorded_by}
    click.echo(json.dumps(values, ensure_ascii=False) if as_json else
               f"resident {values['resident_code']} confirmed {c.status.value} ({c.status.japanese}, "
               f"{c.method.japanese}) at {values['confirmed_at']}")


@safety.command()
@click.argument("disaster_id")
@click.argument("municipality_code")
@click.option("--kana", required=True, help="The name in kana of the person asked about.")
@click.option("--birth-date", required=True, help="Their birth date, YYYY-MM-DD.")
@click.option("--inquirer", required=True, help="Who asks: a disclosure is made only to the recipient the person's "
                                                "recorded consent (提供同意) names.")
@JSON_OPTION
@click.pass_obj
def inquiry(settings: Settings, disaster_id: str, municipality_code: str, kana: str, birth_date: str, inquirer: str,
            as_json: bool) -> None:
    """Answer a safety inquiry (安否照会): the person's whereabouts with their consent, nothing without."""
    with options_of_rule():
        answer = _store(settings).inquiry(disaster_id.strip(), municipality_code.strip(), kana=kana,
                                          birth_date=birth_date, inquirer=inquirer, actor=getpass.getuser())
    values = {"disclosed": answer.disclosed, "answer": answer.text}
    if answer.disclosed:
        values |= {"whereabouts": None if answer.whereabouts is None else answer.whereabouts.value,
                   "status": None if answer.status is None else answer.status.value,
                   "shelter": answer.shelter_name, "since": None if answer.since is None else format_instant(
                       answer.since)}
    click.echo(json.dumps(values, ensure_ascii=False) if as_json else answer.text)
