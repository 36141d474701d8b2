"""`bcl disaster support record-amount|pay|show`: each household's support money (docs/domain.md §6.4) — the
amount applied for of an accepted application and each payment — in the disaster store (sinks.support_payments).
Thin shells: read the options, ask the store, print; a rule's refusal names the option."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import click

from domain.disaster_applications import PROCEDURE_NAMES
from domain.japan_time import format_instant
from domain.livelihood_recovery_support import DwellingLoss, Rebuild
from domain.support_payments import SUPPORT_PROCEDURES, Statement
from streams.commands.disaster import disaster
from streams.commands.option_types import JAPAN_DAY, JSON_OPTION, options_of_rule, yen
from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.support_payments import AppliedAmount, HouseholdSupport, Payment

_PROCEDURES = [p.value for p in SUPPORT_PROCEDURES]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@disaster.group()
def support() -> None:
    """Support money per household: the amount applied for of an accepted application, payments, what is shown."""


def amount_values(a: AppliedAmount) -> dict[str, Any]:
    return {"application_id": a.application_id, "procedure": a.procedure.value, "amount": a.amount,
            "basis": a.basis, "level": None if a.level is None else a.level.value,
            "household_size": a.household_size, "statement": json.loads(a.statement.to_json()),
            "recorded_by": a.recorded_by, "recorded_at": format_instant(a.recorded_at),
            "current_amount": None if a.current is None else a.current.amount,
            "current_basis": None if a.current is None else a.current.basis}


def payment_values(p: Payment) -> dict[str, Any]:
    return {"reference": p.reference, "procedure": p.procedure.value, "amount": p.amount,
            "paid_on": p.paid_on.isoformat(), "paid_by": p.paid_by, "recorded_at": format_instant(p.recorded_at)}


def household_values(h: HouseholdSupport) -> dict[str, Any]:
    """A household's support as `show --json` and `ledger --json` print it."""
    return {"municipality_code": h.municipality_code, "household_number": h.household_number,
            "procedures": {p.procedure.value: {"applied": p.applied, "paid": p.paid, "outstanding": p.outstanding,
                                               "amounts": [amount_values(a) for a in p.amounts],
                                               "payments": [payment_values(x) for x in p.payments]}
                           for p in h.procedures}, **h.totals(),
            "history": [{"application_id": c.application_id, "procedure": c.procedure.value,
                         "old_amount": c.old_amount, "amount": c.amount,
                         "level": None if c.level is None else c.level.value,
                         "statement": json.loads(c.statement.to_json()), "recorded_by": c.recorded_by,
                         "recorded_at": format_instant(c.recorded_at)} for c in h.history]}


def household_lines(h: HouseholdSupport) -> list[str]:
    lines = [f"世帯 {h.household_number}: applied {yen(h.totals()['applied'])}, paid {yen(h.totals()['paid'])}, "
             f"outstanding {yen(h.totals()['outstanding'])}"]
    for p in h.procedures:
        lines.append(f"  {PROCEDURE_NAMES[p.procedure]}: applied {yen(p.applied)}, paid {yen(p.paid)}, "
                     f"outstanding {yen(p.outstanding)}")
        for a in p.amounts:
            now = "" if not a.changed_since else (" — at the current level: " + (
                "nothing as stated" if a.current is None else f"{yen(a.current.amount)} ({a.current.basis})"))
            lines.append(f"    application {a.application_id}: {yen(a.amount)} ({a.basis}), by {a.recorded_by}{now}")
        for x in p.payments:
            lines.append(f"    paid {yen(x.amount)} on {x.paid_on.isoformat()} by {x.paid_by}, ref {x.reference}")
    return lines


@support.command("record-amount")
@click.argument("application_id")
@click.option("--staff", required=True, metavar="NAME", help="Who records it (kept in the history).")
@click.option("--rebuild", type=click.Choice([r.value for r in Rebuild], case_sensitive=False),
              help="被災者生活再建支援金: how the household will live again.")
@click.option("--dwelling-loss", type=click.Choice([d.value for d in DwellingLoss], case_sensitive=False),
              help="被災者生活再建支援金: the dwelling was demolished (解体) or the area is closed for long "
                   "(長期避難): counts as 全壊 whatever the survey.")
@click.option("--breadwinner/--no-breadwinner", default=None,
              help="災害弔慰金, 災害障害見舞金: whether the person supported the household (生計維持者).")
@click.option("--loan-requested", type=int, metavar="YEN", help="災害援護資金: what the household head asks to "
                                                                 "borrow (at most the limit).")
@click.option("--head-injured", is_flag=True, help="災害援護資金: the head needs a month or more of care.")
@click.option("--household-goods-lost", is_flag=True, help="災害援護資金: a third or more of the household goods.")
@click.option("--dwelling-lost", is_flag=True, help="災害援護資金: the dwelling was lost entirely (流失, 滅失).")
@click.option("--rest-demolished", is_flag=True, help="災害援護資金: the rest of the dwelling must be demolished.")
@JSON_OPTION
@click.pass_obj
def record_amount(settings: Settings, application_id: str, staff: str, rebuild: str | None,
                  dwelling_loss: str | None, breadwinner: bool | None, loan_requested: int | None, head_injured: bool,
                  household_goods_lost: bool, dwelling_lost: bool, rest_demolished: bool, as_json: bool) -> None:
    """Record the amount applied for of an accepted support application: computed from the dwelling's assessed
    level and the household's size at 発災日時 with what is stated here; recording it again (a changed plan)
    replaces it, kept in the history."""
    from streams.platform import Platform

    statement = Statement(rebuild=None if rebuild is None else Rebuild(rebuild.lower()),
                          dwelling_loss=None if dwelling_loss is None else DwellingLoss(dwelling_loss.upper()),
                          breadwinner=breadwinner, loan_requested=loan_requested, head_injured=head_injured,
                          household_goods_lost=household_goods_lost, dwelling_lost=dwelling_lost,
                          rest_demolished=rest_demolished)
    with options_of_rule():
        recorded = Platform(settings).support_payments.record_amount(application_id.strip(), statement, staff, _now())
    if as_json:
        click.echo(json.dumps(amount_values(recorded), ensure_ascii=False))
        return
    click.echo(f"{PROCEDURE_NAMES[recorded.procedure]} of application {recorded.application_id}: "
               f"{yen(recorded.amount)} ({recorded.basis})")


@support.command()
@click.argument("disaster_id")
@click.option("--municipality", required=True, metavar="CODE", help="The municipality of the household.")
@click.option("--household", required=True, metavar="NUMBER", help="The household's number in the ledger.")
@click.option("--procedure", required=True, type=click.Choice(_PROCEDURES, case_sensitive=False),
              help="What is paid.")
@click.option("--amount", required=True, type=int, metavar="YEN", help="The amount paid (yen, above 0).")
@click.option("--paid-on", required=True, type=JAPAN_DAY, metavar="DATE", help="The day paid (YYYY-MM-DD).")
@click.option("--staff", required=True, metavar="NAME", help="Who records the payment.")
@click.option("--reference", required=True, metavar="REF",
              help="The payment's reference (振込・支出命令番号): unique in the municipality's ledger.")
@JSON_OPTION
@click.pass_obj
def pay(settings: Settings, disaster_id: str, municipality: str, household: str, procedure: str, amount: int,
        paid_on: dt.date, staff: str, reference: str, as_json: bool) -> None:
    """Record a payment to a household of what it was granted: never above the amount applied for of its
    accepted application(s), less what was paid."""
    from streams.platform import Platform

    with options_of_rule():
        paid = Platform(settings).support_payments.pay(disaster_id.strip(), municipality.strip(), household.strip(),
                                                       procedure, amount=amount, paid_on=paid_on, staff=staff,
                                                       reference=reference, now=_now())
    if as_json:
        click.echo(json.dumps(payment_values(paid), ensure_ascii=False))
        return
    click.echo(f"paid {yen(paid.amount)} of {PROCEDURE_NAMES[paid.procedure]} to household {household.strip()} on "
               f"{paid.paid_on.isoformat()} (ref {paid.reference})")


@support.command()
@click.argument("disaster_id")
@click.option("--municipality", required=True, metavar="CODE", help="The municipality of the ledger.")
@click.option("--household", metavar="NUMBER", help="Only this household (default: every household with an amount).")
@JSON_OPTION
@click.pass_obj
def show(settings: Settings, disaster_id: str, municipality: str, household: str | None, as_json: bool) -> None:
    """The households' support: per procedure applied for, paid, outstanding, the amounts (and what the current
    level would give after a re-survey) and the payments (audited: who got what is personal data)."""
    from sinks.audit import record_access
    from sinks.support_payments import ledger_totals
    from streams.platform import Platform

    store = Platform(settings).support_payments
    found = ([store.household(disaster_id.strip(), municipality, household.strip())] if household is not None
             else store.households(disaster_id.strip(), municipality))
    record_access(settings.audit_file, "disaster.support.show", municipality, len(found),
                  disaster_id=disaster_id.strip(), household_number=household)
    if as_json:
        click.echo(json.dumps({"households": [household_values(h) for h in found], "totals": ledger_totals(found)},
                              ensure_ascii=False))
        return
    for h in found:
        click.echo("\n".join(household_lines(h)))
    if not found:
        click.echo("no support amount recorded")
