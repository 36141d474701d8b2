"""The snapshot store: the backup's change history, from which any past instant can be rebuilt.

Each applied change is one row: the event's metadata plus the full record after it (the Resident
fields, nested as in the contract). Rows are written in batches as Parquet files partitioned by
municipality (hive layout: register_history/municipality_code=XXXXXX/part-*.parquet); a file is
written under a temporary name and renamed, so a reader or a restarted materialiser never sees half
a batch. The files hold the register: mode 0600 in 0700 folders (infra.private_files)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from infra import topics
from infra.private_files import private_folder, private_output
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


class BaseSnapshotStore(Protocol):
    def append_history(self, municipality_code: str, batch: pa.Table) -> None:
        """Durably add a batch of history rows of one municipality (all or nothing)."""
        ...

    def history_relation(self, con: duckdb.DuckDBPyConnection) -> str:
        """A SQL table expression over all history rows, usable in FROM on this connection."""
        ...

    def has_history(self) -> bool: ...


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
