"""`bcl disaster`: disaster-victim support on the command line (docs/domain.md §6). Declaring, listing and closing
disasters (written to the disaster store, sinks.disaster_store: acknowledged once durable, published to Kafka by
`bcl disaster relay`); surveys of dwellings and levels set by area (sinks.damage_assessment, the same store);
and the rules alone (§6.2, §6.4): the damage level of a loss ratio, the livelihood
recovery support of a household, the condolence money and the relief-loan limits, each of which only reads its
options, asks the pure rule and prints the answer."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from domain.damage_levels import DamageLevel, damage_level, level_for
from domain.disaster_applications import PROCEDURE_NAMES, Procedure
from domain.disaster_condolence import condolence_amounts
from domain.disaster_ledger import LedgerFlag
from domain.disaster_relief_loan import relief_loan_income_limit, under_relief_loan_income_limit
from domain.disaster_relief_loan import relief_loan_limit as loan_limit
from domain.disasters import Disaster, DisasterKind, declaration
from domain.errors import InvalidArgumentError
from domain.japan_time import format_instant
from domain.livelihood_recovery_support import SUPPORT_DAMAGE_CODES, Rebuild, livelihood_support, support_damage
from domain.staff_accounts import StaffRole, check_password
from sinks.disaster_ledger import LedgerBuild, Unbuilt
from streams.commands.option_types import INSTANT, JAPAN_DAY, JSON_OPTION, RuleType, options_of_rule, yen
from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.damage_assessment import Assessment, Change

def _emit(values: dict[str, Any], as_json: bool, line: str) -> None:
    click.echo(json.dumps(values, ensure_ascii=False) if as_json else line)


@click.group()
def disaster() -> None:
    """Disaster-victim support: declaring disasters; damage levels, support amounts, condolence money, loans."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _disaster_values(d: Disaster) -> dict[str, Any]:
    return {"disaster_id": d.disaster_id, "name": d.name, "kind": d.kind.value,
            "municipality_codes": list(d.municipality_codes), "occurred_at": format_instant(d.occurred_at),
            "declared_at": format_instant(d.declared_at),
            "closed_at": None if d.closed_at is None else format_instant(d.closed_at)}


def _disaster_line(d: Disaster) -> str:
    state = "declared" if d.closed_at is None else f"closed {format_instant(d.closed_at)}"
    return (f"{d.disaster_id}  {d.name} ({d.kind.value}) in {', '.join(d.municipality_codes)}, occurred "
            f"{format_instant(d.occurred_at)}, {state}")


@disaster.command()
@click.option("--municipality", "municipalities", multiple=True, required=True, metavar="CODE",
              help="全国地方公共団体コード of a municipality struck (6 digits); repeat for several.")
@click.option("--name", required=True, help="The disaster's name, e.g. 令和8年紀伊半島沖地震.")
@click.option("--kind", required=True, type=click.Choice([k.value for k in DisasterKind], case_sensitive=False),
              help="The hazard.")
@click.option("--occurred-at", required=True, type=INSTANT, metavar="TIME",
              help="When it occurred (発災日時; ISO 8601, without a zone Japan time): the ledgers are built as the "
                   "register stood then. Not in the future.")
@JSON_OPTION
@click.pass_obj
def declare(settings: Settings, municipalities: tuple[str, ...], name: str, kind: str, occurred_at: dt.datetime,
            as_json: bool) -> None:
    """Declare a disaster and build each municipality's ledger (被災者台帳) from the backup as the register stood
    when it occurred; prints its id once the declaration and the ledgers are stored durably (the relay publishes
    it). A municipality the backup does not hold that early gets no ledger: import its register as CSV."""
    from streams.platform import Platform

    with options_of_rule():
        checked = declaration(name=name, kind=kind, municipality_codes=municipalities, occurred_at=occurred_at,
                              now=_now())
    platform = Platform(settings)
    declared, builds = platform.disaster_ledger.declare(checked, _now())
    for build in builds:
        _audit_build(settings, declared, build, "disaster.ledger.build")
    if as_json:
        click.echo(json.dumps({**_disaster_values(declared), "ledgers": [_build_values(b) for b in builds]},
                              ensure_ascii=False))
        return
    click.echo(declared.disaster_id)
    for build in builds:  # the id alone on stdout, for scripts; how each ledger went on stderr
        click.echo(_build_line(declared, build), err=True)


def _build_values(build: LedgerBuild | Unbuilt) -> dict[str, Any]:
    if isinstance(build, Unbuilt):
        return {"municipality_code": build.municipality_code, "built": False, "reason": build.reason}
    return {"municipality_code": build.municipality_code, "built": True, "source": build.source,
            "as_of": format_instant(build.as_of), "residents": build.residents, "dwellings": build.dwellings}


def _build_line(disaster: Disaster, build: LedgerBuild | Unbuilt) -> str:
    if isinstance(build, Unbuilt):
        return (f"{build.municipality_code}: no ledger yet ({build.reason}): import its register with `bcl disaster "
                f"import-csv {disaster.disaster_id} --municipality {build.municipality_code} FILE`")
    return (f"{build.municipality_code}: ledger built from the {build.source} as of {format_instant(build.as_of)}: "
            f"{build.residents:,} residents, {build.dwellings:,} dwellings")


def _audit_build(settings: Settings, disaster: Disaster, build: LedgerBuild | Unbuilt, action: str) -> None:
    """Building a ledger reads the municipality's register (personal data): audited like a restore."""
    from sinks.audit import record_access

    if isinstance(build, LedgerBuild):
        record_access(settings.audit_file, action, build.municipality_code, build.residents,
                      disaster_id=disaster.disaster_id, as_of=build.as_of.isoformat(), source=build.source)


@disaster.command("list")
@JSON_OPTION
@click.pass_obj
def list_disasters(settings: Settings, as_json: bool) -> None:
    """Every declared disaster, the oldest first, and how many of its events wait for the relay."""
    from streams.platform import Platform

    store = Platform(settings).disaster_store
    found = store.disasters()
    counts = store.outbox_counts()
    if as_json:
        click.echo(json.dumps({"disasters": [_disaster_values(d) for d in found], "events": counts},
                              ensure_ascii=False))
        return
    for d in found:
        click.echo(_disaster_line(d))
    if not found:
        click.echo("no disaster declared")
    if counts["unpublished"]:
        click.echo(f"{counts['unpublished']} events not yet published: run `bcl disaster relay`")


@disaster.command("close")
@click.argument("disaster_id")
@click.option("--at", type=INSTANT, metavar="TIME",
              help="When its support period ended (ISO 8601, without a zone Japan time; default now).")
@JSON_OPTION
@click.pass_obj
def close_disaster(settings: Settings, disaster_id: str, at: dt.datetime | None, as_json: bool) -> None:
    """Close a declared disaster (final), and the shelters still open for it (everyone checked out): stored
    durably in one step, then published by the relay."""
    from streams.platform import Platform

    with options_of_rule():
        closed, shelters = Platform(settings).shelters.close_disaster(disaster_id.strip(), at, _now())
    _emit(_disaster_values(closed) | {"shelters_closed": shelters}, as_json,
          _disaster_line(closed) + (f" ({shelters} shelters closed)" if shelters else ""))


_municipality_option = click.option("--municipality", "municipality", required=True, metavar="CODE",
                                    help="全国地方公共団体コード of a municipality of the disaster.")


@disaster.command()
@click.argument("disaster_id")
@_municipality_option
@click.option("--flag", type=click.Choice([f.value for f in LedgerFlag], case_sensitive=False),
              help="Only the people with this flag.")
@click.option("--counts", "counts_only", is_flag=True, help="Only the counts (no personal data shown).")
@JSON_OPTION
@click.pass_obj
def ledger(settings: Settings, disaster_id: str, municipality: str, flag: str | None, counts_only: bool,
           as_json: bool) -> None:
    """The 被災者台帳 of a municipality: the counts per flag and the support money's totals, then its people and
    each household's support applied for, paid and outstanding (personal data, shown on the terminal only and
    recorded in the audit log)."""
    from sinks.audit import record_access
    from sinks.support_payments import ledger_totals
    from streams.commands.disaster_support import household_lines, household_values
    from streams.platform import Platform

    platform = Platform(settings)
    store = platform.disaster_ledger
    build = store.ledger_build(disaster_id.strip(), municipality)
    counts = store.flag_counts(disaster_id.strip(), municipality)
    rows = [] if counts_only else store.residents(disaster_id.strip(), municipality,
                                                  None if flag is None else LedgerFlag(flag.upper()))
    support = platform.support_payments.households(disaster_id.strip(), municipality)
    if not counts_only and flag is not None:  # the support of the households listed
        support = [h for h in support if h.household_number in {r["household_number"] for r in rows}]
    totals = ledger_totals(support)
    if rows:
        record_access(settings.audit_file, "disaster.ledger", municipality, len(rows), disaster_id=disaster_id.strip(),
                      flag=flag)
    if as_json:
        click.echo(json.dumps({"build": _build_values(build), "counts": counts, "support_totals": totals,
                               **({} if counts_only else {"residents": rows,
                                                          "support": [household_values(h) for h in support]})},
                              ensure_ascii=False))
        return
    click.echo(f"{municipality}: {counts['residents']:,} people, built from the {build.source} as of "
               f"{format_instant(build.as_of)}; " + ", ".join(f"{k} {v:,}" for k, v in counts.items()
                                                               if k != "residents"))
    for key, t in totals.items():
        name = "support total" if key == "total" else PROCEDURE_NAMES[Procedure(key)]
        click.echo(f"{name}: {t['households']:,} households, applied {yen(t['applied'])}, paid {yen(t['paid'])}, "
                   f"outstanding {yen(t['outstanding'])}")
    for r in rows:
        flags = f" [{r['flags']}{': ' + r['review_reasons'] if r['review_reasons'] else ''}]" if r["flags"] else ""
        moved = f" → {r['moved_to']}" if r["moved_to"] else ""
        click.echo(f"{r['resident_code']}  {r['family_name']} {r['given_name']} ({r['family_name_kana']} "
                   f"{r['given_name_kana']}) {r['birth_date']}  世帯 {r['household_number'] or '-'}  "
                   f"{r['current_status']} {r['current_address']}{moved}{flags}")
    if rows and support:
        click.echo("support per household:")
        for h in support:
            click.echo("\n".join(household_lines(h)))


@disaster.command()
@click.argument("disaster_id")
@JSON_OPTION
@click.pass_obj
def refresh(settings: Settings, disaster_id: str, as_json: bool) -> None:
    """Recompute the register-derived part of the disaster's ledgers from the backup as it is now (building any
    ledger not built yet)."""
    from sinks.audit import record_access
    from streams.platform import Platform

    ledgers = Platform(settings).disaster_ledger
    result = ledgers.refresh(disaster_id.strip(), _now())
    values: dict[str, Any] = {}
    for code, outcome in result.items():
        if isinstance(outcome, Unbuilt):
            values[code] = {"built": False, "reason": outcome.reason}
            continue
        record_access(settings.audit_file, "disaster.ledger.refresh", code, outcome, disaster_id=disaster_id.strip())
        values[code] = {"built": True, "changed": outcome}
    if as_json:
        click.echo(json.dumps({"disaster_id": disaster_id.strip(), "ledgers": values}, ensure_ascii=False))
        return
    for code, v in values.items():
        click.echo(f"{code}: {v['changed']:,} ledger rows changed" if v["built"] else f"{code}: no ledger yet "
                   f"({v['reason']})")


@disaster.command("import-csv")
@click.argument("disaster_id")
@_municipality_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@JSON_OPTION
@click.pass_obj
def import_csv(settings: Settings, disaster_id: str, municipality: str, file: Path, as_json: bool) -> None:
    """Pattern B: build a municipality's ledger from a CSV of its register as it stood when the disaster occurred
    (the columns `bcl backup restore --format csv` writes). All or nothing; a re-import replaces the register part
    and keeps what staff entered."""
    from streams.platform import Platform

    ledgers = Platform(settings).disaster_ledger
    build = ledgers.import_csv(disaster_id.strip(), municipality, file, _now())
    disaster_found = ledgers.store.disaster(disaster_id.strip())
    _audit_build(settings, disaster_found, build, "disaster.ledger.import")
    _emit(_build_values(build), as_json, _build_line(disaster_found, build))


@disaster.command("ledger-processor")
@click.pass_obj
def ledger_processor(settings: Settings) -> None:
    """Keep the ledgers of the open disasters current from the accepted register (bcl.residents), as DOMAIN §6.1
    says: a Faust app, runs until Ctrl-C or SIGTERM, then prints its totals as JSON."""
    from infra.metrics import serve_metrics
    from streams.platform import Platform

    platform = Platform(settings)
    processor = platform.disaster_ledger_processor(platform.disaster_ledger)  # no cluster: one clear line first
    serve_metrics(settings.metrics_port)  # a long-running command, like the other processors
    click.echo(json.dumps(processor.run().as_dict()))


def _run_relay(settings: Settings, until_published: bool, delivery_timeout: float, republish: bool) -> None:
    import signal
    import threading

    from infra.metrics import serve_metrics
    from streams.platform import Platform

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    platform = Platform(settings)
    relay = platform.disaster_relay(delivery_timeout_s=delivery_timeout)
    if republish:
        relay.republish_all()
    if not until_published:
        serve_metrics(settings.metrics_port)  # a long-running command, like the other processors
    try:
        totals = relay.run(stop, until_published=until_published)
    except KeyboardInterrupt:
        stop.set()
        totals = relay.totals
    click.echo(json.dumps({"published": totals.published, "republished": totals.republished,
                           **{f"outbox_{k}": v for k, v in platform.disaster_store.outbox_counts().items()}}))


_delivery_timeout_option = click.option(
    "--delivery-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True, metavar="SECONDS",
    help="How long the cluster may take to acknowledge a batch before it is tried again.")


@disaster.command()
@click.option("--until-published", is_flag=True,
              help="Stop once every stored event is published (exit 3 if the cluster does not take them).")
@_delivery_timeout_option
@click.pass_obj
def relay(settings: Settings, until_published: bool, delivery_timeout: float) -> None:
    """Publish the disaster store's outbox to bcl.disaster.events, in order (runs until Ctrl-C). Events the
    cluster does not hold (a new embedded cluster) are published again first."""
    _run_relay(settings, until_published, delivery_timeout, republish=False)


@disaster.command()
@_delivery_timeout_option
@click.pass_obj
def republish(settings: Settings, delivery_timeout: float) -> None:
    """Publish every stored disaster event again, from the first, then stop: for downstream to rebuild."""
    _run_relay(settings, True, delivery_timeout, republish=True)


@disaster.command("damage-level")
@click.option("--loss-ratio", required=True, metavar="R",
              help="The economic loss ratio (損害割合) of the dwelling, from 0 to 1 (0.5 is 50 %).")
@JSON_OPTION
def damage_level_command(loss_ratio: str, as_json: bool) -> None:
    """The damage level (住家被害認定) of a dwelling with this loss ratio: ZENKAI (≥ 0.5) … ICHIBU_SONKAI (< 0.1)."""
    # Read as the decimal written, not as a float: 0.49999999999999999 is below 0.5 (a float would round it up).
    with options_of_rule():
        level = level_for(loss_ratio)
    worse = [other for other in DamageLevel if other.severity == level.severity + 1]
    values = {
        "code": level.value,
        "level": level.japanese,
        "loss_ratio": loss_ratio.strip(),
        "loss_ratio_from": float(level.lowest_loss_ratio),
        "loss_ratio_below": float(worse[0].lowest_loss_ratio) if worse else None,
    }
    _emit(values, as_json, f"{level.japanese} ({level.value}): loss ratio {loss_ratio.strip()}")


@disaster.command("support-amount")
@click.option("--damage", required=True, type=RuleType("code", support_damage), metavar="CODE",
              help=f"The dwelling's damage: {', '.join(SUPPORT_DAMAGE_CODES)}.")
@click.option("--rebuild", required=True, type=click.Choice([r.value for r in Rebuild]),
              help="How the household will live again: build or buy (建設・購入), repair (補修), rent (賃借, not "
                   "public housing), rent then build or buy, or none (basic support only).")
@click.option("--household-size", required=True, type=int, metavar="N", help="People in the household (1 or more).")
@JSON_OPTION
def support_amount(damage: Any, rebuild: str, household_size: int, as_json: bool) -> None:
    """被災者生活再建支援金 of a household: the basic and the additional support, yen."""
    with options_of_rule():
        support = livelihood_support(damage, Rebuild(rebuild), household_size)
    values = {"basic": support.basic, "additional": support.additional, "total": support.total,
              "additional_payments": list(support.additional_payments)}
    line = (f"基礎支援金 {yen(support.basic)} + 加算支援金 {yen(support.additional)} = {yen(support.total)} "
            f"({damage.value} {damage.japanese}, {rebuild}, {household_size} "
            f"{'person' if household_size == 1 else 'people'})")
    _emit(values, as_json, line)


@disaster.command()
@click.option("--breadwinner/--no-breadwinner", default=None,
              help="Whether the person supported the household (生計維持者). Required.")
@JSON_OPTION
def condolence(breadwinner: bool | None, as_json: bool) -> None:
    """災害弔慰金 (for a death) and 災害障害見舞金 (for a serious disability), yen."""
    if breadwinner is None:
        raise click.UsageError("say --breadwinner or --no-breadwinner (did the person support the household?)")
    amounts = condolence_amounts(breadwinner)
    _emit({"condolence": amounts.condolence, "disability": amounts.disability}, as_json,
          f"災害弔慰金 {yen(amounts.condolence)}, 災害障害見舞金 {yen(amounts.disability)} "
          f"({'breadwinner' if breadwinner else 'not the breadwinner'})")


@disaster.command("relief-loan-limit")
@click.option("--head-injured/--no-head-injured", default=False,
              help="The household head was injured and needs a month or more of care.")
@click.option("--household-goods-lost", is_flag=True, help="A third or more of the household goods (家財) was lost.")
@click.option("--damage", type=RuleType("code", damage_level), metavar="CODE",
              help=f"The dwelling's damage level: {', '.join(DamageLevel)} (大規模・中規模半壊 count as 半壊).")
@click.option("--dwelling-lost", is_flag=True, help="The dwelling was lost entirely (流失, 滅失).")
@click.option("--rest-demolished", is_flag=True,
              help="What is left of the 半壊 or 全壊 dwelling must be demolished.")
@click.option("--household-size", type=int, metavar="N",
              help="People in the household: also show the income limit (with --income: whether it is under it).")
@click.option("--income", type=int, metavar="YEN", help="The household's income of the previous year (needs "
                                                         "--household-size).")
@JSON_OPTION
def relief_loan_limit(head_injured: bool, household_goods_lost: bool, damage: DamageLevel | None,
                      dwelling_lost: bool, rest_demolished: bool, household_size: int | None, income: int | None,
                      as_json: bool) -> None:
    """災害援護資金: the most the household head can borrow, and the income limit of the household."""
    if income is not None and household_size is None:
        raise click.BadParameter("the income limit depends on the household: give --household-size too",
                                 param_hint="'--income'")
    with options_of_rule():
        loan = loan_limit(head_injured=head_injured, household_goods_lost=household_goods_lost, damage=damage,
                          dwelling_lost=dwelling_lost, rest_demolished=rest_demolished)
        income_limit: int | None = None
        eligible: bool | None = None
        if household_size is not None:
            income_limit = relief_loan_income_limit(household_size, dwelling_lost)
            if income is not None:
                # Read the income even when no loan applies: a bad --income is refused either way.
                under_income_limit = under_relief_loan_income_limit(household_size, income, dwelling_lost)
                eligible = under_income_limit and loan.limit > 0
    values = {"limit": loan.limit, "case": loan.case, "income_limit": income_limit, "eligible": eligible}
    line = f"災害援護資金 up to {yen(loan.limit)} ({loan.case}{', head injured' if head_injured else ''})"
    if income_limit is not None:
        line += f"; income must be below {yen(income_limit)}"
    if eligible is not None:
        line += "; eligible" if eligible else "; not eligible"
    _emit(values, as_json, line)


_level_type = RuleType("code", lambda code: damage_level(code, "level"))


def _assessment_values(a: Assessment) -> dict[str, Any]:
    return {"dwelling_id": a.dwelling_id, "municipality_code": a.municipality_code, "level": a.level.value,
            "source": a.source.value, "loss_ratio": a.loss_ratio,
            "flood_depth": None if a.flood_depth is None else a.flood_depth.value, "surveyed_by": a.surveyed_by,
            "surveyed_on": a.surveyed_on.isoformat(), "reason": a.reason, "area_id": a.area_id,
            "recorded_at": format_instant(a.recorded_at)}


def _change_values(c: Change) -> dict[str, Any]:
    return {"dwelling_id": c.dwelling_id, "old_level": None if c.old_level is None else c.old_level.value,
            "new_level": c.new_level.value, "source": c.source.value, "loss_ratio": c.loss_ratio,
            "flood_depth": None if c.flood_depth is None else c.flood_depth.value, "changed_by": c.changed_by,
            "surveyed_on": c.surveyed_on.isoformat(), "reason": c.reason, "area_id": c.area_id,
            "recorded_at": format_instant(c.recorded_at)}


def _assessment_line(a: Assessment) -> str:
    depth = "" if a.flood_depth is None else f", {a.flood_depth.japanese}"
    ratio = "" if a.loss_ratio is None else f" (loss ratio {a.loss_ratio})"
    return (f"{a.dwelling_id}  {a.level.japanese} {a.level.value}{ratio}{depth}, {a.source.value} by "
            f"{a.surveyed_by} on {a.surveyed_on.isoformat()}")


@disaster.command()
@click.argument("disaster_id")
@click.option("--dwelling", "dwelling_id", required=True, metavar="ID", help="The dwelling's id in the ledger.")
@click.option("--loss-ratio", metavar="R", help="The economic loss ratio (損害割合) measured, 0 to 1: the level "
                                                "follows from it.")
@click.option("--level", metavar="CODE", help=f"The level judged directly: {', '.join(DamageLevel)}.")
@click.option("--surveyor", required=True, metavar="NAME", help="Who surveyed the dwelling.")
@click.option("--date", "surveyed_on", type=JAPAN_DAY, metavar="DATE",
              help="The day of the survey (YYYY-MM-DD, Japan; default today).")
@click.option("--flood-depth", type=click.Choice(["above-floor", "below-floor"]),
              help="How deep the dwelling stood in water: above-floor 床上浸水, below-floor 床下浸水.")
@click.option("--reason", metavar="TEXT", help="Why it is surveyed (required when it has a level already).")
@JSON_OPTION
@click.pass_obj
def survey(settings: Settings, disaster_id: str, dwelling_id: str, loss_ratio: str | None, level: str | None,
           surveyor: str, surveyed_on: dt.date | None, flood_depth: str | None, reason: str | None,
           as_json: bool) -> None:
    """Record a survey of one dwelling (its level from --loss-ratio or --level): stored durably with its history,
    then published by the relay."""
    from streams.platform import Platform

    if (loss_ratio is None) == (level is None):
        raise click.UsageError("give either --loss-ratio or --level")
    with options_of_rule():
        stored = Platform(settings).damage_assessment.survey(
            disaster_id.strip(), dwelling_id.strip(), surveyor=surveyor, surveyed_on=surveyed_on, now=_now(),
            loss_ratio=loss_ratio, level=level, reason=reason,
            flood_depth=None if flood_depth is None else flood_depth.replace("-", "_").upper())
    _emit(_assessment_values(stored), as_json, _assessment_line(stored))


@disaster.command()
@click.argument("disaster_id")
@click.option("--municipality", "municipality_code", required=True, metavar="CODE",
              help="The municipality whose dwellings the area covers (one of the disaster's).")
@click.option("--geojson", "geojson_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="The area: a GeoJSON Polygon or MultiPolygon, or a Feature(Collection) of them, "
                                   "positions [longitude, latitude].")
@click.option("--level", required=True, type=_level_type, metavar="CODE",
              help=f"The level for every dwelling inside: {', '.join(DamageLevel)}.")
@click.option("--overwrite-surveyed", is_flag=True,
              help="Set the level of dwellings surveyed one by one too (by default they keep their survey).")
@click.option("--preview/--apply", default=True,
              help="Only count what the area touches (default), or set the level, in one transaction.")
@click.option("--staff", metavar="NAME", help="Who registers the area (kept in the history; needed with --apply).")
@click.option("--reason", metavar="TEXT", help="Why, kept in the history (e.g. 津波浸水区域).")
@JSON_OPTION
@click.pass_obj
def area(settings: Settings, disaster_id: str, municipality_code: str, geojson_file: Path, level: DamageLevel,
         overwrite_surveyed: bool, preview: bool, staff: str | None, reason: str | None, as_json: bool) -> None:
    """Set one damage level for every dwelling of the municipality inside an area: --preview counts the dwellings
    and households it touches; --apply sets the level and prints what changed."""
    from domain.disaster_area import parse_area  # shapely: loaded by the commands that need it only
    from streams.platform import Platform

    if not preview and staff is None:
        raise click.UsageError("--apply needs --staff NAME (who registers the area is kept in the history)")
    try:
        text = geojson_file.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {geojson_file}: {exc.strerror}", param_hint="'--geojson'") from exc
    assessment = Platform(settings).damage_assessment
    with options_of_rule():
        shape = parse_area(text)
        if preview:
            counts = assessment.preview_area(disaster_id.strip(), municipality_code.strip(), shape, level,
                                             overwrite_surveyed)
        else:
            assert staff is not None
            applied = assessment.apply_area(disaster_id.strip(), municipality_code.strip(), shape, level,
                                            staff=staff, now=_now(), overwrite_surveyed=overwrite_surveyed,
                                            reason=reason)
            counts = applied.preview
    values: dict[str, Any] = {
        "disaster_id": counts.disaster_id, "municipality_code": counts.municipality_code, "level": counts.level.value,
        "overwrite_surveyed": counts.overwrite_surveyed, "dwellings": counts.dwellings,
        "households": counts.households, "surveyed": counts.surveyed, "changes": counts.changes}
    kept = "overwritten" if overwrite_surveyed else "kept"
    line = (f"inside the area: {counts.dwellings} dwellings, {counts.households} households; {counts.surveyed} "
            f"surveyed one by one ({kept}); {counts.changes} to set to {level.japanese} {level.value}")
    if not preview:
        values |= {"applied": True, "area_id": applied.area_id, "changed": counts.changes,
                   "changed_from": applied.changed_from, "kept_surveyed": applied.kept_surveyed,
                   "events": applied.events}
        changed_from = ", ".join(f"from {old}: {n}" for old, n in applied.changed_from.items()) or "none"
        line = (f"area {applied.area_id}: {counts.changes} of {counts.dwellings} dwellings set to {level.japanese} "
                f"{level.value} ({changed_from}); {applied.kept_surveyed} surveyed one by one kept; "
                f"{applied.events} events to publish")
    _emit(values, as_json, line)


@disaster.command()
@click.argument("disaster_id")
@click.option("--dwelling", "dwelling_id", metavar="ID", help="Only this dwelling.")
@JSON_OPTION
@click.pass_obj
def surveys(settings: Settings, disaster_id: str, dwelling_id: str | None, as_json: bool) -> None:
    """The current damage level of the disaster's assessed dwellings (or of one), and the history of every change:
    old and new level, who, when, why, from a survey or an area (dwelling ids are derived from addresses: the
    read is recorded in the audit log)."""
    from sinks.audit import record_access
    from streams.platform import Platform

    assessment = Platform(settings).damage_assessment
    found = assessment.assessments(disaster_id.strip(), dwelling_id)
    changes = list(assessment.history(disaster_id.strip(), dwelling_id))
    if found:
        codes = sorted({a.municipality_code for a in found})
        record_access(settings.audit_file, "disaster.surveys", codes[0] if len(codes) == 1 else codes, len(found),
                      disaster_id=disaster_id.strip(), history=len(changes))
    if as_json:
        click.echo(json.dumps({"assessments": [_assessment_values(a) for a in found],
                               "history": [_change_values(c) for c in changes]}, ensure_ascii=False))
        return
    for a in found:
        click.echo(_assessment_line(a))
    if not found:
        click.echo("no dwelling assessed" + ("" if dwelling_id is None else f": {dwelling_id}"))
    if changes:
        click.echo("history:")
    for c in changes:
        old = "none" if c.old_level is None else c.old_level.value
        click.echo(f"  {format_instant(c.recorded_at)}  {c.dwelling_id}  {old} → {c.new_level.value}  "
                   f"{c.source.value} by {c.changed_by}" + ("" if c.reason is None else f": {c.reason}"))


# -- staff accounts and the staff pages ------------------------------------------------------------


@disaster.group()
def staff() -> None:
    """Accounts of the staff pages (`bcl disaster staff-web`): one municipality each."""


def _read_password() -> str:
    """From a prompt (typed twice, not shown) at a terminal, else the first line of stdin; never an argument, which
    other users of the machine could see in the process list."""
    import sys

    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@staff.command("add")
@click.option("--municipality", required=True, metavar="CODE", help="The municipality whose ledgers the account "
                                                                      "sees and changes (6 digits).")
@click.option("--name", "login", required=True, metavar="LOGIN", help="The login (lower-case letters, digits, ._-).")
@click.option("--role", type=click.Choice([r.value for r in StaffRole], case_sensitive=False), default="CLERK",
              show_default=True, help="CLERK reads and enters; SUPERVISOR also registers areas.")
@click.pass_obj
def staff_add(settings: Settings, municipality: str, login: str, role: str) -> None:
    """Make a staff account; the password is read from a prompt (or stdin), at least 12 characters."""
    from streams.platform import Platform

    password = _read_password()
    try:
        check_password(password)
    except InvalidArgumentError as exc:  # not an option: it was typed at the prompt (or read from stdin)
        raise click.UsageError(f"the password {exc.reason}") from exc
    with options_of_rule():
        member = Platform(settings).staff_accounts.add(municipality, login, password, StaffRole(role.upper()), _now())
    click.echo(f"staff account {member.login} ({member.role}) for {member.municipality_code}")


@staff.command("list")
@JSON_OPTION
@click.pass_obj
def staff_list(settings: Settings, as_json: bool) -> None:
    """The staff accounts: login, municipality, role."""
    from streams.platform import Platform

    for member in Platform(settings).staff_accounts.accounts():
        _emit({"login": member.login, "municipality_code": member.municipality_code, "role": member.role.value},
              as_json, f"{member.login}\t{member.municipality_code}\t{member.role}")


@disaster.command("staff-web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8490, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
def staff_web(settings: Settings, host: str, port: int) -> None:
    """Serve the staff pages: sign-in, ledger search, households, surveys, areas, extracts."""
    from aiohttp import web

    from streams.platform import Platform

    app = Platform(settings).staff_web()
    click.echo(f"staff pages on http://{host}:{port}/ (Ctrl-C to stop)")
    web.run_app(app, host=host, port=port, print=None)
