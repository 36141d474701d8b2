"""The snapshot store: the backup's change history, from which any past instant can be rebuilt.

Each applied change is one row: the event's metadata plus the full record after it (the Resident
fields, nested as in the contract). Rows are written in batches as Parquet files partitioned by
municipality (hive layout: register_history/municipality_code=XXXXXX/part-*.parquet); a file is
written under a temporary name and renamed, so a reader or a restarted materialiser never sees half
a batch. The files hold the register: mode 0600 in 0700 folders (infra.private_files).

One process writes the history at a time: the materialiser, or an operator's resync (which sets aside
a municipality's events from a sequence number on, `set_aside_history`); each holds the store's
writer lock while it works."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.errors import BclError
from infra import topics
from infra.private_files import create_private_file, private_folder, private_output
from schemas.arrow_schema import arrow_schema
from schemas.contracts import CONTRACTS, expanded_schema

# Metadata of the change that produced each history row, before the record's own fields.
EVENT_FIELDS = pa.schema([
    pa.field("sequence", pa.int64(), nullable=False),
    pa.field("change_type", pa.string(), nullable=False),
    pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("event_notified_on", pa.date32(), nullable=False),
    pa.field("sent_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("removed", pa.bool_(), nullable=False),
])


def resident_arrow_schema() -> pa.Schema:
    return arrow_schema(expanded_schema(CONTRACTS[topics.RESIDENTS]))


def history_schema() -> pa.Schema:
    """History row: event fields, then the Resident fields (municipality_code and resident_code
    are always set; the others are null on a removal). municipality_code is the partition column."""
    resident = resident_arrow_schema()
    fields = list(EVENT_FIELDS)
    for f in resident:
        fields.append(f.with_nullable(f.name not in ("municipality_code", "resident_code")))
    return pa.schema(fields)


def latest_changes(relation: str, where: str = "TRUE") -> str:
    """SQL for the latest change of every record (municipality, resident code) among the history rows of
    `relation` that satisfy `where`: one history row per record, removals included (filter `NOT removed`
    for the records that exist). Every reader of "the current record" uses this one statement.

    Why a semi-join on the sequence and not a window: sequence numbers are unique within a municipality
    (the materialiser applies each once, see domain.sequencing), so the latest change of a record is the
    row with its municipality's max(sequence) for that resident: a hash aggregate over two columns instead
    of sorting every row. `where` may use the history columns and query parameters ($name)."""
    return f"""
        SELECT history.* FROM {relation} AS history
        SEMI JOIN (
            SELECT municipality_code, max(sequence) AS sequence FROM {relation}
            WHERE {where} GROUP BY municipality_code, resident_code
        ) AS latest USING (municipality_code, sequence)
        WHERE {where}"""


class SnapshotStoreBusyError(BclError):
    """Another process holds the writer lock of the snapshot store."""


class BaseSnapshotStore(Protocol):
    def append_history(self, municipality_code: str, batch: pa.Table) -> None:
        """Durably add a batch of history rows of one municipality (all or nothing)."""
        ...

    def history_relation(self, con: duckdb.DuckDBPyConnection) -> str:
        """A SQL table expression over all history rows, usable in FROM on this connection."""
        ...

    def has_history(self) -> bool: ...

    def writer_lock(self, who: str) -> AbstractContextManager[None]: ...


class ParquetSnapshotStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.history_dir = root / "register_history"

    def append_history(self, municipality_code: str, batch: pa.Table) -> None:
        private_folder(self.root)  # the history is the register itself: 0700 folders, 0600 files
        part_dir = private_folder(self.history_dir / f"municipality_code={municipality_code}")
        with private_output(part_dir / f"part-{uuid.uuid4().hex}.parquet") as tmp:
            # The partition column lives in the directory name, as in any hive-partitioned dataset.
            pq.write_table(batch.drop_columns(["municipality_code"]), tmp, compression="zstd")

    def history_relation(self, con: duckdb.DuckDBPyConnection) -> str:
        glob = (self.history_dir / "*" / "*.parquet").as_posix()
        return f"read_parquet('{glob}', hive_partitioning = true, hive_types = {{'municipality_code': VARCHAR}})"

    def has_history(self) -> bool:
        return any(self.history_dir.glob("*/*.parquet"))

    @contextmanager
    def writer_lock(self, who: str) -> Iterator[None]:
        """Hold the store's writer lock (an flock, released when the process ends however it ends), or
        raise SnapshotStoreBusyError naming who holds it."""
        path = create_private_file(self.root / "history.lock")  # it names who holds it
        with path.open("a+", encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise SnapshotStoreBusyError(
                    f"the backup in {self.root} is being written by {holder}: stop it first") from None
            f.seek(0)
            f.truncate()
            f.write(f"{who} (pid {os.getpid()})")
            f.flush()
            try:
                unfinished = self.interrupted_resyncs()
                if unfinished and who != RESYNC:
                    raise SnapshotStoreBusyError(
                        f"a resync of {', '.join(unfinished)} was interrupted: run `bcl backup resync --municipality "
                        f"{unfinished[0]}` again to complete it")
                yield
            finally:
                f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    def interrupted_resyncs(self) -> list[str]:
        return sorted(p.name.removesuffix("-new") for p in self._resync_dir.glob("*-new"))

    def set_aside_history(self, municipality_code: str, from_sequence: int) -> tuple[pa.Table, Path | None]:
        """Take a municipality's history rows with sequence >= from_sequence out of the backup, into a
        file of their own under set_aside/ (owner-only: personal data). Returns the rows and that file
        (None when there were none). The caller holds the writer lock.

        The partition is replaced by directory renames, never rewritten in place: a reader sees the old
        rows or the new ones. If interrupted, running it again completes it (a new partition waiting in
        resync/ replaces the old one; then the rows from `from_sequence` on are set aside, if any remain)."""
        part_dir = self.history_dir / f"municipality_code={municipality_code}"
        new_dir, old_dir = self._resync_dir / f"{municipality_code}-new", self._resync_dir / f"{municipality_code}-old"
        if new_dir.exists():
            if part_dir.exists() and not old_dir.exists():  # interrupted before the swap: start again
                shutil.rmtree(new_dir)
            else:
                if part_dir.exists():
                    part_dir.rename(old_dir)
                new_dir.rename(part_dir)
        shutil.rmtree(old_dir, ignore_errors=True)
        parts = sorted(part_dir.glob("*.parquet"))
        if not parts:
            return pa.table({}), None
        history = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
        later = pc.greater_equal(history.column("sequence"), from_sequence)
        removed = history.filter(later)
        if not removed.num_rows:
            return removed, None
        removed = removed.append_column("municipality_code", pa.array([municipality_code] * removed.num_rows))
        aside_dir = self.root / "set_aside"
        aside_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        aside = aside_dir / f"{municipality_code}-from-{from_sequence}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = aside.with_name(f".{aside.name}.tmp")
        with tmp.open("wb") as f:
            os.fchmod(f.fileno(), 0o600)
            pq.write_table(removed, f, compression="zstd")
        tmp.replace(aside)
        new_dir.mkdir(mode=0o700, parents=True)
        kept = history.filter(pc.invert(later))
        if kept.num_rows:
            pq.write_table(kept, new_dir / f"part-{uuid.uuid4().hex}.parquet", compression="zstd")
        part_dir.rename(old_dir)
        new_dir.rename(part_dir)
        shutil.rmtree(old_dir)
        return removed, aside

    @property
    def _resync_dir(self) -> Path:
        return self.root / "resync"


RESYNC = "bcl backup resync"
