"""Checkpoints of the registers (`bcl backup checkpoint`): each municipality's register compacted, so that a
restore reads the last checkpoint at or before its instant plus the changes after it.

What a restore computes (sinks.restore): for every record, its change of highest sequence among the history rows
with event_time at or before the instant. A checkpoint holds, for every record, its change of highest sequence
among the rows of the history parts it names as covered; its instant is the latest event time of those rows. For
an instant at or after it, the rows at or before the instant are the covered rows (all of them) plus the rows of
the other parts at or before the instant, and a maximum over a union is the maximum of the parts' maxima: so
"checkpoint + the other parts' rows up to the instant" gives exactly the full scan's answer. This holds whatever
order the rows arrived in: a late event with an older event time, or a gap filled with a lower sequence, after
the checkpoint was written is in a part the checkpoint does not cover, and is read with the changes after it.
Keyed by the parts it covers (append position) and not by time alone for that reason.

A checkpoint is built from the newest one that still covers only existing parts plus the parts written since
(time proportional to what changed), or from the whole history when there is none. It reads only parts that
are complete (a part is written then renamed) and takes no writer lock: the materialiser keeps writing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from domain.errors import BclError
from infra.snapshot_keys import SnapshotKey
from sinks.encrypted_parquet import write_query
from sinks.snapshot_store import CHECKPOINT_KEY, BaseSnapshotStore, Checkpoint, ParquetSnapshotStore, latest_changes


class CheckpointError(BclError):
    pass


KEEP = 7  # checkpoints kept per municipality (each is a copy of its register)


@dataclass(frozen=True)
class CheckpointResult:
    municipality_code: str
    checkpoint: Checkpoint | None  # None: nothing new since the last one, or a resync meanwhile
    new_parts: int  # history parts compacted into it that the previous checkpoint did not cover


def write_checkpoint(store: ParquetSnapshotStore, municipality_code: str, *, keep: int = KEEP) -> CheckpointResult:
    """Checkpoint one municipality's register as of the latest event time of what is in its history now."""
    parts = store.history_parts(municipality_code)
    if not parts:
        raise CheckpointError(f"no backup of municipality {municipality_code} in the snapshot store")
    names = {p.name for p in parts}
    bases = [c for c in store.checkpoints(municipality_code) if c.covered <= names]
    base = max(bases, key=lambda c: len(c.covered), default=None)
    new = [p for p in parts if base is None or p.name not in base.covered]
    if not new:
        return CheckpointResult(municipality_code, None, 0)
    con = duckdb.connect()
    sources = [f"SELECT * FROM {store.read_files(con, new)}"]
    if base is not None:
        sources.append(f"SELECT * FROM {store.read_files(con, [base.path])}")
    rows = f"({' UNION ALL BY NAME '.join(sources)})"
    span = con.execute(f"SELECT min(event_time), max(event_time) FROM {store.read_files(con, new)}").fetchone()
    assert span is not None
    earliest, instant = span
    if base is not None:
        earliest, instant = min(earliest, base.earliest), max(instant, base.instant)

    def write(path: Path, metadata: bytes, key: SnapshotKey | None) -> None:
        # Stored in the order a restore writes its rows (household, resident code).
        write_query(con, store.cipher, f"""SELECT * EXCLUDE (municipality_code) FROM ({latest_changes(rows)})
                             ORDER BY household_number, resident_code""",
                    path, key, metadata={CHECKPOINT_KEY: metadata.decode()})

    covered = frozenset(names if base is None else base.covered | {p.name for p in new})
    checkpoint = store.publish_checkpoint(municipality_code, write, instant, earliest, covered, keep=keep)
    return CheckpointResult(municipality_code, checkpoint, len(new) if checkpoint else 0)


def checkpoint_for(store: BaseSnapshotStore, municipality_code: str, as_of: dt.datetime,
                   parts: list[Path]) -> Checkpoint | None:
    """The checkpoint a restore as of `as_of` starts from: the last one at or before it whose covered parts
    are all among `parts` (the history as the restore lists it); None for a full scan."""
    names = {p.name for p in parts}
    usable = [c for c in store.checkpoints(municipality_code) if c.instant <= as_of and c.covered <= names]
    return max(usable, key=lambda c: (c.instant, len(c.covered)), default=None)
