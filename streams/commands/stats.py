"""`bcl stats`: the published statistics over the issued-certificate log (docs/domain.md §7), and a generator of
a synthetic national year to try them at real scale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.statistics import StatTable


def _show(table: StatTable) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=table.title)
    for name in table.columns:
        is_text = name in ("month", "code", "municipality", "vendor")
        shown.add_column(name, justify="left" if is_text else "right")
    for row in table.rows:
        cells = []
        for name, value in zip(table.columns, row, strict=True):
            if name in table.share_columns:
                cells.append(f"{value * 100:.2f} %")
            elif isinstance(value, int) and name != "fiscal_year":
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        shown.add_row(*cells)
    console = Console()
    # Piped or redirected output has no width of its own: print the table whole rather than truncated.
    (console if console.is_terminal else Console(width=1000)).print(shown)


def _run(settings: Settings, query: Callable[..., StatTable], csv_path: Path | None, **options: Any) -> StatTable:
    from domain.municipalities import municipality
    from sinks.statistics import open_statistics

    if options.get("municipality") is not None:
        municipality(options["municipality"])  # an unknown code is an error, not an empty table
    if csv_path is not None and not csv_path.parent.is_dir():
        raise click.BadParameter(f"the directory {csv_path.parent} does not exist", param_hint="'--csv'")
    con = open_statistics(settings.snapshot_dir)
    try:
        table = query(con, **options)
    finally:
        con.close()
    _show(table)
    if csv_path is not None:
        table.write_csv(csv_path)
        click.echo(f"wrote {csv_path}")
    return table


_csv_option = click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
                           help="Also write the table as CSV (UTF-8) to this file.")
_top_option = click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
                           help="How many municipalities to list after the national figure.")
_municipality_option = click.option("--municipality", help="Only this municipality (6-digit code); default national.")


@click.group()
def stats() -> None:
    """Published statistics of kiosk issuance (DuckDB over the issued-certificate log)."""


@stats.command()
@_csv_option
@_municipality_option
@click.option("--chart", "chart_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw the monthly trend as a PNG chart to this file.")
@click.pass_obj
def monthly(settings: Settings, csv_path: Path | None, municipality: str | None, chart_path: Path | None) -> None:
    """Certificates per month by type (住民票, 住記載, 印鑑, 税, 戸籍, 附票) and municipalities issuing."""
    from sinks.statistics import monthly as query

    table = _run(settings, query, csv_path, municipality=municipality)
    if chart_path is not None:
        from sinks.statistics_chart import monthly_trend_chart

        monthly_trend_chart(table, chart_path)
        click.echo(f"wrote {chart_path}")


@stats.command("fiscal-year")
@_csv_option
@_municipality_option
@click.pass_obj
def fiscal_year(settings: Settings, csv_path: Path | None, municipality: str | None) -> None:
    """Certificates per fiscal year (April–March) by type and municipalities issuing."""
    from sinks.statistics import fiscal_year as query

    _run(settings, query, csv_path, municipality=municipality)


@stats.command("off-hours")
@_csv_option
@_top_option
@click.pass_obj
def off_hours(settings: Settings, csv_path: Path | None, top: int) -> None:
    """Share issued outside office hours (08:30–17:15 on weekdays that are not holidays or 29 Dec–3 Jan)."""
    from sinks.statistics import off_hours as query

    _run(settings, query, csv_path, top=top)


@stats.command("other-municipality")
@_csv_option
@_top_option
@click.pass_obj
def other_municipality(settings: Settings, csv_path: Path | None, top: int) -> None:
    """Share issued at a kiosk standing in another municipality (他市区町村)."""
    from sinks.statistics import other_municipality as query

    _run(settings, query, csv_path, top=top)


@stats.command()
@_csv_option
@click.pass_obj
def vendors(settings: Settings, csv_path: Path | None) -> None:
    """Certificates by kiosk vendor."""
    from sinks.statistics import vendors as query

    _run(settings, query, csv_path)


@stats.command("population-share")
@_csv_option
@_top_option
@click.pass_obj
def population_share(settings: Settings, csv_path: Path | None, top: int) -> None:
    """Certificates issued as a share of population, nationally and for the leading municipalities."""
    from sinks.statistics import population_share as query

    _run(settings, query, csv_path, top=top)


@stats.command("generate-year")
@click.option("--fiscal-year", required=True, type=click.IntRange(2000, 2100), help="Fiscal year, e.g. 2025.")
@click.option("--scale", type=click.FloatRange(0, 10, min_open=True), default=1.0, show_default=True,
              help="Fraction of national volume (1.0 ≈ 36 million certificates; 0.001 for a quick try).")
@click.option("--seed", type=int, help="Random seed (default: the settings' seed).")
@click.option("--replace", is_flag=True, help="Drop and regenerate months that already hold data.")
@click.pass_obj
def generate_year(settings: Settings, fiscal_year: int, scale: float, seed: int | None, replace: bool) -> None:
    """Write a synthetic national year of issued certificates into the snapshot store."""
    from rich.progress import Progress

    from sinks.national_year import generate_year as generate

    with Progress() as progress:
        task = progress.add_task(f"FY{fiscal_year}", total=12)

        def on_month(year: int, month: int, rows: int) -> None:
            progress.update(task, advance=1, description=f"FY{fiscal_year} {year}-{month:02d}: {rows:,} rows")

        written = generate(settings.snapshot_dir, fiscal_year,
                           settings.seed if seed is None else seed, scale, replace, on_month)
    click.echo(f"wrote {written:,} issued certificates for FY{fiscal_year} under {settings.snapshot_dir}")
