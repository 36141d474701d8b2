"""Point-in-time restore and backup status, over the change history in the snapshot store.

The register as of an instant = for every record, its latest change (by sequence) with
event_time at or before the instant, leaving out records whose latest change removed them.
Deleted (消除) records are part of the register and are kept, with their status.

From the last checkpoint at or before the instant (sinks.register_checkpoints) when there is one: its records
plus the history parts it does not cover, which is the same answer as the full scan; the full scan otherwise.
`register_as_of` is this one read; restores write it to a file, the disaster ledgers (sinks.disaster_ledger) are
built from it.

A Parquet restore is encrypted like the store's files, with the municipality's current key version
(sinks.encrypted_parquet; `read_restore` opens it); a CSV restore is plain text, an export handed over on purpose."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.errors import BclError
from domain.japan_time import format_instant
from infra.private_files import private_output
from sinks import encrypted_parquet
from sinks.register_checkpoints import checkpoint_for
from sinks.snapshot_store import BaseSnapshotStore, Checkpoint, latest_changes, resident_arrow_schema


class RestoreError(BclError):
    pass


class NothingThatEarlyError(RestoreError):
    """The instant is before the first change the backup holds of the municipality: a restore would be empty."""

    def __init__(self, municipality_code: str, as_of: dt.datetime, earliest: dt.datetime) -> None:
        self.earliest = earliest
        super().__init__(
            f"the backup holds nothing of {municipality_code} as early as {format_instant(as_of)}: "
            f"it holds data from {format_instant(earliest)} on"
        )


def _register_query(latest: str, current_only: bool) -> str:
    columns = ", ".join(f'"{f.name}"' for f in resident_arrow_schema())
    status = "AND status = 'CURRENT'" if current_only else ""
    return f"""
        SELECT {columns} FROM ({latest})
        WHERE NOT removed {status}
        ORDER BY household_number, resident_code"""


def _full_scan(rel: str) -> str:
    return latest_changes(rel, "municipality_code = $municipality AND event_time <= $as_of")


def _from_checkpoint(store: BaseSnapshotStore, con: duckdb.DuckDBPyConnection, checkpoint: Checkpoint,
                     later: list[Path], as_of: dt.datetime,
                     current_only: bool) -> tuple[pa.Schema, Iterator[pa.Table]]:
    """The register from the checkpoint and the parts it does not cover (`later`, their rows up to the instant),
    streamed (its schema, its rows): the same rows in the same order as `_register_query` over their union, with
    neither a sort nor a join of the whole register. A record's latest change is the one of higher sequence
    between its checkpoint row and its latest row in `later`; so only the records that changed there are
    compared, on their sequence numbers (two columns of the checkpoint), and the winners from `later` (a few,
    sorted by DuckDB) are merged into the checkpoint's rows, which are stored in the restore's order
    (household number, resident code) and stream through as they are. The work is a copy of the checkpoint
    plus what changed, as a copy of the same rows is (bench/restore.py)."""
    code = checkpoint.municipality_code
    kept_fields = [f for f in encrypted_parquet.read_schema(checkpoint.path, store.cipher, code) if f.name in _COLUMNS]
    schema = pa.schema([pa.field("municipality_code", pa.string()), *kept_fields])
    dropped: pa.Array = pa.array([], pa.string())
    winners = schema.empty_table()
    if later:
        changes = latest_changes(f"(SELECT * FROM {store.read_files(con, later)} WHERE event_time <= $as_of)")
        latest = con.sql(f"SELECT * FROM ({changes})", params={"as_of": as_of}).to_arrow_table()
        if latest.num_rows:
            changed = pc.field("resident_code").isin(latest.column("resident_code").combine_chunks())
            kept = encrypted_parquet.read_table(checkpoint.path, store.cipher, code, ["resident_code", "sequence"],
                                                changed)
            kept_seq = dict(zip(kept.column("resident_code").to_pylist(), kept.column("sequence").to_pylist(),
                                strict=True))
            later_wins = pa.array([seq > kept_seq.get(rc, 0) for rc, seq in zip(
                latest.column("resident_code").to_pylist(), latest.column("sequence").to_pylist(), strict=True)])
            won = latest.filter(later_wins)
            dropped = won.column("resident_code").combine_chunks()
            won = won.filter(_register_rows(won, current_only))
            won = won.sort_by([("household_number", "ascending"), ("resident_code", "ascending")])
            winners = won.select(schema.names).cast(schema)

    def merged() -> Iterator[pa.Table]:
        keys = list(zip(winners.column("household_number").to_pylist(),
                        winners.column("resident_code").to_pylist(), strict=True))
        taken = 0
        for batch in encrypted_parquet.iter_batches(checkpoint.path, store.cipher, code,
                                                    columns=[f.name for f in kept_fields] + ["removed"]):
            rows = pa.Table.from_batches([batch])
            keep = _register_rows(rows, current_only)
            if len(dropped):
                keep = pc.and_(keep, pc.invert(pc.is_in(rows.column("resident_code"), dropped)))
            rows = rows.filter(keep).drop_columns(["removed"])
            rows = rows.add_column(0, "municipality_code", pa.repeat(pa.scalar(code), rows.num_rows)).cast(schema)
            if taken == len(keys) or not rows.num_rows:
                yield rows
                continue
            batch_keys = list(zip(rows.column("household_number").to_pylist(),
                                  rows.column("resident_code").to_pylist(), strict=True))
            pieces, start = [], 0
            while taken < len(keys) and keys[taken] < batch_keys[-1]:
                at = bisect.bisect_left(batch_keys, keys[taken], lo=start)
                pieces += [rows.slice(start, at - start), winners.slice(taken, 1)]
                start, taken = at, taken + 1
            pieces.append(rows.slice(start))
            yield pa.concat_tables(pieces)
        if taken < len(keys):
            yield winners.slice(taken)

    return schema, merged()


def _register_rows(rows: pa.Table, current_only: bool) -> pa.ChunkedArray:
    """The rows of records in the register (not removed; with current_only, CURRENT), as `_register_query`."""
    keep = pc.invert(rows.column("removed"))
    if current_only:
        keep = pc.and_(keep, pc.fill_null(pc.equal(rows.column("status"), "CURRENT"), False))
    return keep


_COLUMNS = {f.name for f in resident_arrow_schema()}


@dataclass(frozen=True)
class RegisterAsOf:
    """The register of one municipality as of an instant, ready to read once: `query` (over `con`, with
    `params`) selects its records, one per resident code, ordered by household and resident code. From a
    checkpoint the records are also `stream` (schema, tables in that order), which `query` reads through
    DuckDB: read one or the other, once."""

    con: duckdb.DuckDBPyConnection
    query: str
    params: dict[str, Any]
    stream: tuple[pa.Schema, Iterator[pa.Table]] | None = None


@contextmanager
def register_as_of(store: BaseSnapshotStore, municipality_code: str, as_of: dt.datetime, *,
                   current_only: bool = False) -> Iterator[RegisterAsOf]:
    """The one point-in-time read of the register (restores and the disaster ledgers use it), valid inside the
    `with`: the checkpoint it reads is neither pruned nor deleted by a resync meanwhile. Refuses an instant
    without a zone, a store without history, a municipality without backup and an instant before the backup's
    first change of the municipality (NothingThatEarlyError)."""
    if as_of.tzinfo is None:
        raise RestoreError("the restore instant needs a time zone (e.g. 2026-11-12T12:00+09:00)")
    if not store.has_history():
        raise RestoreError("the snapshot store holds no history yet: run the materialiser first")
    con = duckdb.connect()
    params: dict[str, Any] = {"municipality": municipality_code, "as_of": as_of.astimezone(dt.UTC)}
    # Shared: no checkpoint is pruned, nor deleted by a resync, between choosing it and reading it.
    with store.checkpoint_lock(shared=True):
        parts = store.history_parts(municipality_code)  # what the read sees: later parts are not seen
        checkpoint = checkpoint_for(store, municipality_code, as_of, parts) if parts else None
        if checkpoint is None:
            rel = store.history_relation(con)
            latest = _full_scan(rel)
            [(earliest,)] = con.execute(f"SELECT min(event_time) FROM {rel} WHERE municipality_code = $m",
                                        {"m": municipality_code}).fetchall()
        else:
            later = [p for p in parts if p.name not in checkpoint.covered]
            earliest = checkpoint.earliest
            if later:
                [(first,)] = con.execute(f"SELECT min(event_time) FROM {store.read_files(con, later)}").fetchall()
                earliest = min(earliest, first)
        if earliest is None:
            raise RestoreError(f"no backup of municipality {municipality_code} in the snapshot store")
        if as_of < earliest:
            raise NothingThatEarlyError(municipality_code, as_of, earliest)
        if checkpoint is None:
            yield RegisterAsOf(con, _register_query(latest, current_only), params)
            return
        schema, tables = _from_checkpoint(store, con, checkpoint, later, params["as_of"], current_only)
        con.register("_bcl_register_as_of", pa.RecordBatchReader.from_batches(
            schema, (batch for table in tables for batch in table.to_batches())))
        yield RegisterAsOf(con, "SELECT * FROM _bcl_register_as_of", {}, (schema, tables))


def restore(
    store: BaseSnapshotStore,
    municipality_code: str,
    as_of: dt.datetime,
    out: Path,
    fmt: Literal["parquet", "csv"] = "parquet",
    *,
    current_only: bool = False,
) -> int:
    """Write the register of one municipality as it was at `as_of`; returns the number of records."""
    with register_as_of(store, municipality_code, as_of, current_only=current_only) as register:
        if not out.parent.is_dir():
            # Never made here: a mistyped path would otherwise grow directories anywhere, even at the root.
            raise RestoreError(f"the directory {out.parent} does not exist: create it first or choose another --out")
        if fmt not in ("parquet", "csv"):
            raise RestoreError(f"unknown format {fmt!r}: use parquet or csv")
        # The file holds the municipality's register: written 0600 where nobody else can open it meanwhile.
        with private_output(out) as tmp:
            if fmt == "parquet":  # encrypted as the store's files: with the municipality's current key
                key = store.write_key(municipality_code)
                if register.stream is not None:  # from a checkpoint: its rows straight through, not via DuckDB
                    schema, tables = register.stream
                    return encrypted_parquet.write_batches(tables, schema, tmp, store.cipher, key)
                return encrypted_parquet.write_query(register.con, store.cipher, register.query, tmp, key,
                                                     register.params)
            written = register.con.execute(_csv_copy_statement(register.query, tmp), register.params)
            count = written.fetchone()  # COPY answers with the number of rows it wrote
    return int(count[0]) if count else 0


def read_restore(path: Path, store: BaseSnapshotStore, municipality_code: str) -> pa.Table:
    """A Parquet restore of the municipality, decrypted with its key ring (the file names its key version)."""
    try:
        return pq.read_table(path, decryption_properties=store.cipher.decryption())
    except OSError as exc:
        raise RestoreError(f"{path} does not open with the key ring of {municipality_code}: written for another "
                           "municipality or with a retired key, or not a restore") from exc


def _csv_copy_statement(query: str, tmp: Path) -> str:
    # Nested parts (address, seal, tax records, certificates) become columns or JSON text.
    flat = f"""SELECT * EXCLUDE (address, seal, tax_records, jpki_certificates),
               address.prefecture AS address_prefecture, address.municipality AS address_municipality,
               address.town AS address_town, address.block AS address_block,
               address.building AS address_building, address.latitude AS address_latitude,
               address.longitude AS address_longitude,
               seal.registration_number AS seal_registration_number, seal.registered_on AS seal_registered_on,
               seal.status AS seal_status, to_json(tax_records) AS tax_records,
               to_json(jpki_certificates) AS jpki_certificates
               FROM ({query})"""
    return f"COPY ({flat}) TO '{tmp.as_posix()}' (FORMAT csv, HEADER)"


@dataclass(frozen=True)
class MunicipalityStatus:
    municipality_code: str
    residents: int  # current (現存) records in the latest state
    records: int  # all records, deleted included
    last_sequence: int
    last_event_time: dt.datetime
    missing: int  # sequence numbers below last_sequence not received
    gaps: list[tuple[int, int]]

    @property
    def complete(self) -> bool:
        return self.missing == 0


def backup_status(store: BaseSnapshotStore) -> list[MunicipalityStatus]:
    if not store.has_history():
        return []
    con = duckdb.connect()
    rel = store.history_relation(con)
    latest = con.execute(f"""
        SELECT municipality_code,
               count(*) FILTER (WHERE NOT removed AND status = 'CURRENT'),
               count(*) FILTER (WHERE NOT removed)
        FROM ({latest_changes(rel)}) GROUP BY 1""").fetchall()
    seqs = dict(((m, (s, t)) for m, s, t in con.execute(
        f"SELECT municipality_code, max(sequence), max(event_time) FROM {rel} GROUP BY 1").fetchall()))
    gap_rows = con.execute(f"""
        SELECT municipality_code, prev + 1, sequence - 1 FROM (
            SELECT municipality_code, sequence,
                   coalesce(lag(sequence) OVER (PARTITION BY municipality_code ORDER BY sequence), 0) AS prev
            FROM (SELECT DISTINCT municipality_code, sequence FROM {rel}))
        WHERE sequence > prev + 1 ORDER BY 1, 2""").fetchall()
    gaps: dict[str, list[tuple[int, int]]] = {}
    for muni, lo, hi in gap_rows:
        gaps.setdefault(muni, []).append((lo, hi))
    return [
        MunicipalityStatus(
            municipality_code=m, residents=current, records=records, last_sequence=seqs[m][0],
            last_event_time=seqs[m][1], missing=sum(hi - lo + 1 for lo, hi in gaps.get(m, [])), gaps=gaps.get(m, []),
        )
        for m, current, records in sorted(latest)
    ]
