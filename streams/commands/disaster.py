"""`bcl disaster`: the rules of disaster-victim support (docs/domain.md §6.2, §6.4) on the command line: the
damage level of a loss ratio, the livelihood recovery support of a household, the condolence money and the
relief-loan limits. Each command only reads its options, asks the pure rule and prints the answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from domain.damage_levels import DamageLevel, damage_level, level_for
from domain.disaster_condolence import condolence_amounts
from domain.disaster_relief_loan import relief_loan_income_limit, under_relief_loan_income_limit
from domain.disaster_relief_loan import relief_loan_limit as loan_limit
from domain.errors import InvalidArgumentError
from domain.livelihood_recovery_support import SUPPORT_DAMAGE_CODES, Rebuild, livelihood_support, support_damage

_json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")


@contextmanager
def _options_of_rule() -> Iterator[None]:
    """A rule's refusal names its parameter; the parameters are named like the options (`household_size` is
    `--household-size`), so the message a person reads names the option they typed."""
    try:
        yield
    except InvalidArgumentError as exc:
        raise click.BadParameter(exc.reason, param_hint=f"'--{exc.argument.replace('_', '-')}'") from exc


class _RuleType(click.ParamType):
    """An option read by a rule of domain/ (which refuses a bad value with its reason)."""

    def __init__(self, name: str, read: Callable[[str], Any]) -> None:
        self.name = name
        self._read = read

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # already converted (a default)
            return value
        try:
            return self._read(value)
        except InvalidArgumentError as exc:
            self.fail(exc.reason, param, ctx)


def _emit(values: dict[str, Any], as_json: bool, line: str) -> None:
    click.echo(json.dumps(values, ensure_ascii=False) if as_json else line)


def _yen(amount: int) -> str:
    return f"{amount:,} 円"


@click.group()
def disaster() -> None:
    """Disaster-victim support: damage levels, support amounts, condolence money, relief-loan limits."""


@disaster.command("damage-level")
@click.option("--loss-ratio", required=True, metavar="R",
              help="The economic loss ratio (損害割合) of the dwelling, from 0 to 1 (0.5 is 50 %).")
@_json_option
def damage_level_command(loss_ratio: str, as_json: bool) -> None:
    """The damage level (住家被害認定) of a dwelling with this loss ratio: ZENKAI (≥ 0.5) … ICHIBU_SONKAI (< 0.1)."""
    # Read as the decimal written, not as a float: 0.49999999999999999 is below 0.5 (a float would round it up).
    with _options_of_rule():
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
@click.option("--damage", required=True, type=_RuleType("code", support_damage), metavar="CODE",
              help=f"The dwelling's damage: {', '.join(SUPPORT_DAMAGE_CODES)}.")
@click.option("--rebuild", required=True, type=click.Choice([r.value for r in Rebuild]),
              help="How the household will live again: build or buy (建設・購入), repair (補修), rent (賃借, not "
                   "public housing), rent then build or buy, or none (basic support only).")
@click.option("--household-size", required=True, type=int, metavar="N", help="People in the household (1 or more).")
@_json_option
def support_amount(damage: Any, rebuild: str, household_size: int, as_json: bool) -> None:
    """被災者生活再建支援金 of a household: the basic and the additional support, yen."""
    with _options_of_rule():
        support = livelihood_support(damage, Rebuild(rebuild), household_size)
    values = {"basic": support.basic, "additional": support.additional, "total": support.total,
              "additional_payments": list(support.additional_payments)}
    line = (f"基礎支援金 {_yen(support.basic)} + 加算支援金 {_yen(support.additional)} = {_yen(support.total)} "
            f"({damage.value} {damage.japanese}, {rebuild}, {household_size} "
            f"{'person' if household_size == 1 else 'people'})")
    _emit(values, as_json, line)


@disaster.command()
@click.option("--breadwinner/--no-breadwinner", default=None,
              help="Whether the person supported the household (生計維持者). Required.")
@_json_option
def condolence(breadwinner: bool | None, as_json: bool) -> None:
    """災害弔慰金 (for a death) and 災害障害見舞金 (for a serious disability), yen."""
    if breadwinner is None:
        raise click.UsageError("say --breadwinner or --no-breadwinner (did the person support the household?)")
    amounts = condolence_amounts(breadwinner)
    _emit({"condolence": amounts.condolence, "disability": amounts.disability}, as_json,
          f"災害弔慰金 {_yen(amounts.condolence)}, 災害障害見舞金 {_yen(amounts.disability)} "
          f"({'breadwinner' if breadwinner else 'not the breadwinner'})")


@disaster.command("relief-loan-limit")
@click.option("--head-injured/--no-head-injured", default=False,
              help="The household head was injured and needs a month or more of care.")
@click.option("--household-goods-lost", is_flag=True, help="A third or more of the household goods (家財) was lost.")
@click.option("--damage", type=_RuleType("code", damage_level), metavar="CODE",
              help=f"The dwelling's damage level: {', '.join(DamageLevel)} (大規模・中規模半壊 count as 半壊).")
@click.option("--dwelling-lost", is_flag=True, help="The dwelling was lost entirely (流失, 滅失).")
@click.option("--rest-demolished", is_flag=True,
              help="What is left of the 半壊 or 全壊 dwelling must be demolished.")
@click.option("--household-size", type=int, metavar="N",
              help="People in the household: also show the income limit (with --income: whether it is under it).")
@click.option("--income", type=int, metavar="YEN", help="The household's income of the previous year (needs "
                                                         "--household-size).")
@_json_option
def relief_loan_limit(head_injured: bool, household_goods_lost: bool, damage: DamageLevel | None,
                      dwelling_lost: bool, rest_demolished: bool, household_size: int | None, income: int | None,
                      as_json: bool) -> None:
    """災害援護資金: the most the household head can borrow, and the income limit of the household."""
    if income is not None and household_size is None:
        raise click.BadParameter("the income limit depends on the household: give --household-size too",
                                 param_hint="'--income'")
    with _options_of_rule():
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
    line = f"災害援護資金 up to {_yen(loan.limit)} ({loan.case}{', head injured' if head_injured else ''})"
    if income_limit is not None:
        line += f"; income must be below {_yen(income_limit)}"
    if eligible is not None:
        line += "; eligible" if eligible else "; not eligible"
    _emit(values, as_json, line)
