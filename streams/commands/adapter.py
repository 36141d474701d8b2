"""`bcl adapter`: the municipal adapter publishing full loads and daily differences."""

from __future__ import annotations

import datetime as dt

import click

from domain.japan_time import parse_instant
from streams.commands.option_types import INSTANT
from streams.settings import Settings


@click.group()
def adapter() -> None:
    """Publish a municipality's register to BCL: the full load once, then daily differences."""


def _progress(description: str, total: int | None):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    progress = Progress(*columns, transient=False)
    task = progress.add_task(description, total=total)
    return progress, lambda n: progress.advance(task, n)


@adapter.command("full-load")
@click.option("--municipality", "code", required=True, help="6-digit local-government code, e.g. 302066.")
@click.option("--population", type=click.IntRange(min=1), help="Scale the register to this many residents.")
@click.option("--start", type=INSTANT,
              help="Instant of the full load, ISO 8601 (without a zone: Japan time); default: the settings' "
                   "simulation start.")
@click.pass_obj
def full_load(settings: Settings, code: str, population: int | None, start: dt.datetime | None) -> None:
    """Build the municipality's register and publish it as FULL_LOAD events."""
    from domain.municipalities import municipality
    from streams.adapter import AdapterState, publish
    from streams.platform import Platform
    from streams.register.reference import load_reference_data

    municipality(code)
    start_at = start or parse_instant(settings.simulation_start, "simulation_start")
    # Before the register is built (seconds for a city): a missing cluster is said at once.
    platform = Platform(settings)
    servers = platform.bootstrap_servers
    reference = load_reference_data()
    state = AdapterState(code, population, settings.seed, start_at.isoformat())
    simulator = state.simulator(reference, settings.mincho_font)
    records = len(simulator.register.records)
    name = simulator.municipality.name
    progress, advance = _progress(f"full load {code} {name}", records)
    with progress:
        result = publish(simulator.full_load(), servers, platform.registry, platform.register_signer,
                         progress=advance)
    state.last_sequence = result.last_sequence
    state.save(settings.adapter_dir)
    click.echo(f"published {result.delivered} FULL_LOAD events for {code} {name} (sequence 1–{result.last_sequence})")


@adapter.command("diffs")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--days", type=click.IntRange(min=1), required=True, help="How many simulated days to send.")
@click.pass_obj
def diffs(settings: Settings, code: str, days: int) -> None:
    """Publish the next N days of differences (異動) after what was already sent."""
    from streams.adapter import AdapterState, publish
    from streams.platform import Platform
    from streams.register.reference import load_reference_data

    state = AdapterState.load(settings.adapter_dir, code)
    platform = Platform(settings)
    servers = platform.bootstrap_servers  # before the days are simulated
    simulator = state.simulator(load_reference_data(), settings.mincho_font)
    first = state.last_day + 1
    progress, advance = _progress(f"days {first}–{first + days - 1} of {code}", None)
    with progress:
        result = publish(simulator.changes(days, from_day=first), servers, platform.registry,
                         platform.register_signer, progress=advance)
    state.last_day = first + days - 1
    state.last_sequence = max(state.last_sequence, result.last_sequence)
    state.save(settings.adapter_dir)
    click.echo(f"published {result.delivered} change events for {code}, days {first}–{state.last_day} "
               f"(last sequence {state.last_sequence})")


@adapter.command("key")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--rotate", is_flag=True, help="Make a new key (the adapter signs with it from now on).")
@click.pass_obj
def key(settings: Settings, code: str, rotate: bool) -> None:
    """The municipality's signing key: made if missing; prints the public key (PEM) to register with BCL.

    The private key stays in DATA_DIR/adapter/keys (0600). The embedded setup registers a key it makes in
    its own trust store; in production BCL registers the printed public key (`bcl backup trust register`)."""
    from domain.municipalities import municipality
    from streams.platform import Platform

    municipality(code)
    platform = Platform(settings)
    keyring = platform.municipal_keyring
    previous = keyring.load(code).key_id.hex() if rotate and keyring.path(code).exists() else None
    signing_key, created = (keyring.create(code), True) if rotate else keyring.load_or_create(code)
    if created:
        platform.trust_store.register(code, signing_key.public_pem())
    click.echo(signing_key.public_pem().decode(), nl=False)
    click.echo(f"key id {signing_key.key_id.hex()} of municipality {code}"
               f"{' (new)' if created else ''}; private key {keyring.path(code)}", err=True)
    if previous and any(e.key_id == previous and e.revoked_at is None for e in platform.trust_store.entries()):
        click.echo(f"the previous key {previous} stays trusted until `bcl backup trust revoke {previous}`", err=True)
