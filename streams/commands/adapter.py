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


def _publish(settings: Settings, description: str, total: int | None, events, timeout: float,  # type: ignore[no-untyped-def]
             welfare: bool = False):
    """Publish with a progress bar, and a line every few seconds while the cluster has not acknowledged."""
    from streams.adapter import publish, publish_welfare
    from streams.platform import Platform

    platform = Platform(settings)
    servers = platform.bootstrap_servers
    progress, advance = _progress(description, total)

    def waiting(unacknowledged: int, seconds: float) -> None:
        progress.console.print(f"waiting for the cluster at {servers} to acknowledge {unacknowledged:,} events "
                               f"({seconds:.0f} s; gives up after {timeout:g} s)", markup=False, highlight=False)

    with progress:
        send = publish_welfare if welfare else publish
        return send(events, servers, platform.registry, platform.register_signer, progress=advance,
                       waiting=waiting, delivery_timeout=timeout)


DELIVERY_TIMEOUT = click.option(
    "--delivery-timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
    help="Seconds the cluster has to acknowledge every event (librdkafka retries meanwhile); then the command "
         "fails and its position is not advanced.")


@adapter.command("full-load")
@click.option("--municipality", "code", required=True, help="6-digit local-government code, e.g. 302066.")
@click.option("--population", type=click.IntRange(min=1), help="Scale the register to this many residents.")
@click.option("--start", type=INSTANT,
              help="Instant of the full load, ISO 8601 (without a zone: Japan time); default: the settings' "
                   "simulation start.")
@DELIVERY_TIMEOUT
@click.pass_obj
def full_load(settings: Settings, code: str, population: int | None, start: dt.datetime | None,
              delivery_timeout: float) -> None:
    """Build the municipality's register and publish it as FULL_LOAD events."""
    from domain.municipalities import municipality
    from streams.adapter import AdapterState
    from streams.register.reference import load_reference_data

    municipality(code)
    start_at = start or parse_instant(settings.simulation_start, "simulation_start")
    # Before the register is built (seconds for a city): a missing cluster is said at once.
    settings.require_bootstrap_servers()
    reference = load_reference_data()
    state = AdapterState(code, population, settings.seed, start_at.isoformat())
    simulator = state.simulator(reference, settings.mincho_font)
    records = len(simulator.register.records)
    name = simulator.municipality.name
    result = _publish(settings, f"full load {code} {name}", records, simulator.full_load(), delivery_timeout)
    state.last_sequence = result.last_sequence
    state.save(settings.adapter_dir)
    click.echo(f"published {result.delivered} FULL_LOAD events for {code} {name} (sequence 1–{result.last_sequence})")


@adapter.command("diffs")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--days", type=click.IntRange(min=1), required=True, help="How many simulated days to send.")
@DELIVERY_TIMEOUT
@click.pass_obj
def diffs(settings: Settings, code: str, days: int, delivery_timeout: float) -> None:
    """Publish the next N days of differences (異動) after what was already sent."""
    from streams.adapter import AdapterState
    from streams.register.reference import load_reference_data

    state = AdapterState.load(settings.adapter_dir, code)
    settings.require_bootstrap_servers()  # before the days are simulated
    simulator = state.simulator(load_reference_data(), settings.mincho_font)
    first = state.last_day + 1
    result = _publish(settings, f"days {first}–{first + days - 1} of {code}", None,
                      simulator.changes(days, from_day=first), delivery_timeout)
    state.last_day = first + days - 1
    state.last_sequence = max(state.last_sequence, result.last_sequence)
    state.save(settings.adapter_dir)
    click.echo(f"published {result.delivered} change events for {code}, days {first}–{state.last_day} "
               f"(last sequence {state.last_sequence})")


@adapter.command("welfare")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@DELIVERY_TIMEOUT
@click.pass_obj
def welfare(settings: Settings, code: str, delivery_timeout: float) -> None:
    """Publish the welfare systems' events (WelfareStatus on bcl.welfare.status: care levels, disability
    certificates, 指定難病, at home) up to the register's last day sent: the first time their full load, then the
    changes of the days sent since. Deterministic like the register: sending again changes nothing."""
    from streams.adapter import AdapterState
    from streams.register.reference import load_reference_data

    state = AdapterState.load(settings.adapter_dir, code)
    settings.require_bootstrap_servers()
    simulator = state.simulator(load_reference_data(), settings.mincho_font)
    first = state.welfare_day + 1
    result = _publish(settings, f"welfare of {code}, days {first}–{state.last_day}", None,
                      state.welfare_events(simulator), delivery_timeout, welfare=True)
    state.welfare_day = state.last_day
    state.save(settings.adapter_dir)
    click.echo(f"published {result.delivered} welfare events for {code}, days {first}–{state.last_day}")


@adapter.command("resend")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--from-sequence", type=click.IntRange(min=1), required=True,
              help="First sequence number to send again (what `bcl backup resync` printed).")
@DELIVERY_TIMEOUT
@click.pass_obj
def resend(settings: Settings, code: str, from_sequence: int, delivery_timeout: float) -> None:
    """Send again, unchanged, every event already sent from a sequence number on (after a resync of the
    backup: the events it set aside come back, the materialiser ignores any it still holds)."""
    from streams.adapter import AdapterState
    from streams.register.reference import load_reference_data

    state = AdapterState.load(settings.adapter_dir, code)
    settings.require_bootstrap_servers()
    simulator = state.simulator(load_reference_data(), settings.mincho_font)
    result = _publish(settings, f"resend {code} from {from_sequence}", state.last_sequence - from_sequence + 1,
                      state.events_from(simulator, from_sequence), delivery_timeout)
    click.echo(f"sent again {result.delivered} events of {code} (sequence {from_sequence}–{state.last_sequence})")


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
