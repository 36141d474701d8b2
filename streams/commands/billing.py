"""`bcl billing`: the fee rules of DOMAIN.md §5 on the command line. Further sub-commands (statements from
the billing processor) register on the same `billing` group."""

from __future__ import annotations

import json
from typing import Any

import click

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
    """Fees, contributions and the disaster-system fee (amounts in yen, tax included)."""


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
    from streams.domain.fees import FeeError, IssuingMode, MunicipalityClass, annual_contribution, billed_contribution

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
    from streams.domain.fees import billed_disaster_system_fee, disaster_system_annual_fee, disaster_system_monthly_fee

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
    from streams.domain.fees import certificate_fees

    fees = certificate_fees(certificates)
    _emit(
        {"bcl_fee": fees.bcl_fee, "consignment_fee": fees.consignment_fee},
        as_json,
        {"bcl_fee": "BCL issuing fee", "consignment_fee": "consignment fee"},
    )
