"""`bcl backup`, `bcl query` and `bcl analysts`: the materialiser, point-in-time restore, status, analyst
queries and their grants."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from domain.errors import BclError
from domain.japan_time import format_instant, to_japan_time
from streams.commands.option_types import INSTANT
from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.snapshot_store import ParquetSnapshotStore
    from streams.materialiser import BackupMaterialiser


@click.group()
def backup() -> None:
    """The BCL backup (副本): materialise it, check it, restore it as of any instant."""


@backup.command()
@click.option("--until-caught-up", is_flag=True, help="Stop once every partition is consumed and idle.")
@click.option("--idle-seconds", type=float, default=2.0, show_default=True, help="Idle time that counts as caught up.")
@click.option("--processes", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="Run this many materialiser processes in one consumer group (each bcl.register.diffs partition "
                   "has one of them at a time; at most the topic's partition count do work).")
@click.option("--group-member", is_flag=True,
              help="Join the consumer group as one of several processes (what --processes starts; for running the "
                   "command several times, on one machine or several sharing the snapshot store).")
@click.pass_obj
def materialise(settings: Settings, until_caught_up: bool, idle_seconds: float, processes: int,
                group_member: bool) -> None:
    """Run the backup materialiser (bcl.register.diffs → bcl.residents + snapshot store)."""
    from infra.metrics import serve_metrics

    if processes > 1:
        counters = _materialise_processes(settings, processes, until_caught_up, idle_seconds)
        click.echo(json.dumps(counters))
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    materialiser = _materialiser(settings, group_member)  # no cluster: one clear line, before anything serves
    serve_metrics(settings.metrics_port)
    click.echo(json.dumps(materialiser.run(stop, until_caught_up=until_caught_up, idle_seconds=idle_seconds).as_dict()))


def _materialiser(settings: Settings, group_member: bool) -> BackupMaterialiser:
    from streams.platform import Platform

    return Platform(settings).materialiser(group_member=group_member)


def _member_process(settings: Settings, until_caught_up: bool, idle_seconds: float, results, ready) -> None:  # type: ignore[no-untyped-def]
    """One of --processes: stops on SIGTERM (the parent forwards Ctrl-C as SIGTERM), reports its counters."""
    from infra.log import configure_logging

    configure_logging(settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    try:
        materialiser = _materialiser(settings, True)
        ready.wait()  # the members join together: one first assignment, not a rebalance per late starter
        results.put(materialiser.run(stop, until_caught_up=until_caught_up, idle_seconds=idle_seconds).as_dict())
    except BclError as exc:  # a clear line, as the CLI says it, not a child's traceback
        ready.abort()  # the others stop waiting for this one
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except threading.BrokenBarrierError:  # another member could not start: it said why
        sys.exit(1)


def _materialise_processes(settings: Settings, processes: int, until_caught_up: bool,
                           idle_seconds: float) -> dict[str, int]:
    """Start the group members, forward Ctrl-C / SIGTERM to them, and add up their counters."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no inherited librdkafka threads or DuckDB state
    results, ready = context.Queue(), context.Barrier(processes, timeout=300)
    children = [context.Process(target=_member_process, args=(settings, until_caught_up, idle_seconds, results, ready),
                                name=f"materialiser-{i}") for i in range(processes)]
    for child in children:
        child.start()

    def forward(*_: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: the member checkpoints and leaves the group

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    totals: dict[str, int] = {}
    for child in children:
        child.join()
    failed = [child.name for child in children if child.exitcode != 0]
    for _ in range(len(children) - len(failed)):
        for name, value in results.get(timeout=30).items():
            totals[name] = totals.get(name, 0) + value
    if failed:
        raise click.ClickException(f"{', '.join(failed)} ended with an error (see its log above)")
    return totals


@backup.command()
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--as-of", "as_of", type=INSTANT, required=True,
              help="Instant, ISO 8601; without a zone it is Japan time, a date alone is its start in Japan.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Output file, in an existing directory (default: DATA_DIR/restores/CODE-INSTANT.FORMAT).")
@click.option("--current-only", is_flag=True, help="Leave out deleted (消除) records.")
@click.pass_obj
def restore(
    settings: Settings, code: str, as_of: dt.datetime, fmt: str, out: Path | None, current_only: bool
) -> None:
    """Write the municipality's register as it was at an instant.

    The file holds the residents' personal data: by default it goes under the data directory (kept out of
    version control and of the working directory), never where the command happens to run."""
    from domain.municipalities import municipality
    from infra.private_files import private_folder
    from sinks.audit import record_access
    from sinks.restore import restore as restore_register
    from streams.platform import Platform

    municipality(code)
    if out is not None and not out.parent.is_dir():
        # Refused, not made: a mistyped path would otherwise grow directories anywhere, even at the root.
        raise click.BadParameter(f"the directory {out.parent} does not exist", param_hint="'--out'")
    if out is None:
        out = settings.restores_dir / f"{code}-{to_japan_time(as_of):%Y%m%dT%H%M%S}.{fmt}"
        if settings.data_dir.is_dir():  # a mistyped --data-dir is reported (no backup there), not created
            private_folder(out.parent)
    count = restore_register(Platform(settings).snapshot_store, code, as_of, out, fmt,  # type: ignore[arg-type]
                             current_only=current_only)
    record_access(settings.audit_file, "backup.restore", code, count, as_of=as_of.isoformat(), out=str(out))
    click.echo(f"restored {count} records of {code} as of {format_instant(as_of)} to {out}")


@backup.command()
@click.option("--municipality", "code", help="6-digit local-government code (default: every municipality).")
@click.option("--keep", type=click.IntRange(min=1),
              help="Checkpoints kept per municipality when one is added; older ones are deleted (default: 7).")
@click.option("--every", "every_seconds", type=click.FloatRange(min=1.0),
              help="Keep running beside the materialiser: a pass every this many seconds (until Ctrl-C).")
@click.pass_obj
def checkpoint(settings: Settings, code: str | None, keep: int | None, every_seconds: float | None) -> None:
    """Compact each municipality's register into a checkpoint, so that restores read it plus what changed since.

    Reads only finished history files and takes no writer lock: run it beside the materialiser (a pass, from a
    timer, or with --every). A checkpoint covers the history as it is now; restores as of an earlier instant
    use an earlier checkpoint or the full history."""
    from domain.municipalities import municipality
    from sinks.register_checkpoints import KEEP, write_checkpoint
    from streams.platform import Platform

    if code is not None:
        municipality(code)
    store = Platform(settings).snapshot_store
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while True:
        for muni in [code] if code else store.history_municipalities():
            result = write_checkpoint(store, muni, keep=keep or KEEP)
            if result.checkpoint is None:
                click.echo(f"{muni}: nothing new since its last checkpoint")
            else:
                click.echo(f"{muni}: checkpoint as of {format_instant(result.checkpoint.instant)} "
                           f"({result.new_parts} new history parts)")
        if every_seconds is None or stop.wait(every_seconds):
            return


@backup.command()
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--from-sequence", type=click.IntRange(min=1),
              help="Set aside the events from this sequence number on (default: from the first missing one).")
@click.option("--reason", required=True, help="Why (recorded in the audit log), e.g. an incident number.")
@click.pass_obj
def resync(settings: Settings, code: str, from_sequence: int | None, reason: str) -> None:
    """Repair a municipality whose backup went wrong (e.g. stuck INCOMPLETE by a forged sequence number).

    With the materialiser stopped: re-publishes the affected records' earlier state to bcl.residents, sets
    the events from the sequence number on aside (out of the history, into DATA_DIR/snapshots/set_aside/),
    and records it in the audit log. Then have the adapter send again from that number
    (`bcl adapter resend`) and start the materialiser."""
    from domain.municipalities import municipality
    from sinks.audit import record_access
    from streams.backup_resync import resync as resync_backup
    from streams.platform import Platform

    municipality(code)
    platform = Platform(settings)
    result = resync_backup(platform.snapshot_store, platform.registry, platform.bootstrap_servers, code,
                           from_sequence)
    record_access(settings.audit_file, "backup.resync", code, result.set_aside, reason=reason,
                  from_sequence=result.from_sequence, republished=result.republished,
                  set_aside_file=str(result.set_aside_file) if result.set_aside_file else None)
    where = f" to {result.set_aside_file}" if result.set_aside_file else ""
    click.echo(f"set aside {result.set_aside} events of {code} from sequence {result.from_sequence}{where}; "
               f"re-published {result.republished} records to bcl.residents. Next: `bcl adapter resend "
               f"--municipality {code} --from-sequence {result.from_sequence}`, then `bcl backup materialise`")


@backup.command()
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.pass_obj
def reencrypt(settings: Settings, code: str) -> None:
    """Rewrite the municipality's backup files with its current key version (plain files from before encryption
    included), so that older versions can be retired. With the materialiser stopped (it takes the writer lock)."""
    from domain.municipalities import municipality
    from streams.platform import Platform

    municipality(code)
    store = Platform(settings).snapshot_store
    with store.writer_lock("bcl backup reencrypt"):
        count = store.reencrypt(code)
    version = store.keys.current_key(code).version
    click.echo(f"{code}: {count} files re-encrypted with key version {version}; in use now: "
               f"{_versions_in_use(store, code)}")


def _versions_in_use(store: ParquetSnapshotStore, code: str) -> str:
    used = store.key_versions_in_use(code)
    return ", ".join(f"{'plain' if v is None else f'version {v}'}: {n} files"
                     for v, n in sorted(used.items(), key=lambda item: item[0] or 0)) or "no file"


@backup.group()
def keys() -> None:
    """The snapshot store's encryption keys: one key ring per municipality (DATA_DIR/keys/snapshot-store)."""


@keys.command("rotate")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.pass_obj
def rotate_key(settings: Settings, code: str) -> None:
    """Make a new key version of the municipality current: new files use it, older files stay readable."""
    from domain.municipalities import municipality
    from streams.platform import Platform

    municipality(code)
    platform = Platform(settings)
    key = platform.snapshot_keyring.rotate(code)
    click.echo(f"{code}: key version {key.version} is current; re-encrypt the older files with `bcl backup "
               f"reencrypt --municipality {code}`, then retire the old versions")


@keys.command("retire")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.option("--version", "version", type=click.IntRange(min=1), required=True, help="The key version to remove.")
@click.pass_obj
def retire_key(settings: Settings, code: str, version: int) -> None:
    """Remove a key version that no file of the municipality uses any more."""
    from domain.municipalities import municipality
    from streams.platform import Platform

    municipality(code)
    Platform(settings).snapshot_store.retire_key(code, version)
    click.echo(f"{code}: key version {version} retired")


@keys.command("list")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.pass_obj
def list_keys(settings: Settings, code: str) -> None:
    """The municipality's key versions, the current one, and how many files each encrypts."""
    from domain.municipalities import municipality
    from streams.platform import Platform

    municipality(code)
    platform = Platform(settings)
    ring = platform.snapshot_keyring
    versions = ring.versions(code)
    current = ring.current_key(code).version if versions else None
    click.echo(f"{code}: key versions {', '.join(map(str, versions)) or 'none'}"
               f"{f' (current: {current})' if current else ''}; files: "
               f"{_versions_in_use(platform.snapshot_store, code)}")


@backup.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Per municipality: residents, last sequence, last event time and gaps."""
    from rich.console import Console
    from rich.table import Table

    from sinks.restore import backup_status
    from streams.platform import Platform

    rows = backup_status(Platform(settings).snapshot_store)
    if as_json:
        click.echo(json.dumps([{**r.__dict__, "last_event_time": format_instant(r.last_event_time),
                                "complete": r.complete} for r in rows], ensure_ascii=False))
        return
    table = Table(title="BCL backup status")
    for col in ("municipality", "residents", "records", "last sequence", "last event (JST)", "state"):
        table.add_column(col, justify="right" if col != "state" else "left")
    for r in rows:
        state = "complete" if r.complete else f"INCOMPLETE: {r.missing} missing in {len(r.gaps)} gap(s)"
        table.add_row(r.municipality_code, f"{r.residents:,}", f"{r.records:,}", f"{r.last_sequence:,}",
                      format_instant(r.last_event_time), state)
    Console().print(table if rows else "the snapshot store holds no backup yet")


@click.command()
@click.argument("sql")
@click.option("--analyst", required=True,
              help="Who asks: the query sees only the municipalities granted to them (`bcl analysts grant`).")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the result as CSV.")
@click.pass_obj
def query(settings: Settings, sql: str, analyst: str, csv_out: Path | None) -> None:
    """Run SQL (DuckDB) over the analyst tables of the backup: residents, resident_taxes, register_changes.

    The tables hold the analyst's granted municipalities only, no identifier of any kind, and every
    other column coarsened so that no group of rows is smaller than k residents (docs/domain.md §8.1).
    Every query is written to the audit log."""
    import csv
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from infra.private_files import write_private_file
    from sinks.analytics import ANALYST_TABLES
    from streams.platform import Platform

    if csv_out is not None and not csv_out.parent.exists():
        raise click.BadParameter(f"the directory {csv_out.parent} does not exist", param_hint="'--csv'")
    result = Platform(settings).analyst_session(analyst).query(sql)
    if csv_out:
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        write_private_file(csv_out, text.getvalue().encode("utf-8"))
    table = Table(caption=f"{len(result.rows)} rows · tables: {', '.join(ANALYST_TABLES)}")
    # Text, not str: rich would read brackets in a value (or a column name) as markup.
    for col in result.columns:
        table.add_column(Text(col))
    for row in result.rows[:200]:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    Console().print(table)


@click.group()
def analysts() -> None:
    """Which municipalities each analyst may query with `bcl query --analyst NAME`."""


_analyst_argument = click.argument("name")
_municipalities_option = click.option("--municipality", "codes", multiple=True, required=True,
                                      help="6-digit local-government code (repeat for several).")


def _show_grant(settings: Settings, name: str, held: tuple[str, ...], action: str, changed: tuple[str, ...]) -> None:
    from sinks.audit import record_access

    record_access(settings.audit_file, action, list(changed), 0, analyst=name, now_granted=list(held))
    click.echo(f"{name}: {', '.join(held) if held else 'no municipality'}")


@analysts.command()
@_analyst_argument
@_municipalities_option
@click.pass_obj
def grant(settings: Settings, name: str, codes: tuple[str, ...]) -> None:
    """Let analyst NAME query these municipalities (audited)."""
    from sinks.analyst_grants import change_grants

    _show_grant(settings, name, change_grants(settings.analyst_grants_file, name, add=codes), "analyst.grant", codes)


@analysts.command()
@_analyst_argument
@_municipalities_option
@click.pass_obj
def revoke(settings: Settings, name: str, codes: tuple[str, ...]) -> None:
    """Withdraw these municipalities from analyst NAME (audited)."""
    from sinks.analyst_grants import change_grants

    _show_grant(settings, name, change_grants(settings.analyst_grants_file, name, remove=codes), "analyst.revoke",
                codes)


@analysts.command("list")
@click.pass_obj
def list_grants(settings: Settings) -> None:
    """Every analyst and the municipalities they may query."""
    from sinks.analyst_grants import read_grants

    grants = read_grants(settings.analyst_grants_file)
    for name, codes in sorted(grants.items()):
        click.echo(f"{name}: {', '.join(codes)}")
    if not grants:
        click.echo(f"no analyst is granted any municipality ({settings.analyst_grants_file})")


@click.group()
def schemas() -> None:
    """The Avro contracts and their registry lock file."""


@schemas.command()
def lock() -> None:
    """Register changed schemas in schemas/registry.lock.json (refuses BACKWARD-incompatible changes)."""
    from schemas.registry import FileSchemaRegistry

    changes = FileSchemaRegistry().lock()
    click.echo("\n".join(changes) if changes else "registry.lock.json is up to date")


@backup.group()
def trust() -> None:
    """The municipalities' registered signing keys: whose register changes the backup accepts."""


@trust.command("list")
@click.pass_obj
def trust_list(settings: Settings) -> None:
    """Every registered key: id, municipality, registered, revoked."""
    from streams.platform import Platform

    for entry in Platform(settings).trust_store.entries():
        click.echo(f"{entry.key_id}  {entry.municipality_code}  registered {entry.registered_at}"
                   + (f"  revoked {entry.revoked_at}" if entry.revoked_at else ""))


@trust.command("register")
@click.option("--municipality", "code", required=True, help="6-digit local-government code.")
@click.argument("public_key", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_obj
def trust_register(settings: Settings, code: str, public_key: Path) -> None:
    """Register a municipality's Ed25519 public key (PEM, as `bcl adapter key` prints it)."""
    from domain.municipalities import municipality
    from streams.platform import Platform

    municipality(code)
    click.echo(f"registered key {Platform(settings).trust_store.register(code, public_key.read_bytes())} "
               f"of municipality {code}")


@trust.command("revoke")
@click.argument("key_id")
@click.pass_obj
def trust_revoke(settings: Settings, key_id: str) -> None:
    """Stop trusting a key: messages signed with it are dead-lettered (UNKNOWN_SIGNING_KEY) from now on."""
    from streams.platform import Platform

    Platform(settings).trust_store.revoke(key_id)
    click.echo(f"revoked key {key_id}")
