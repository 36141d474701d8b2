"""Resync of one municipality whose backup went wrong (`bcl backup resync`, docs/operations.md).

What it repairs: events that were applied but should not have been — a forged or corrupt sequence
number far ahead (the municipality stays INCOMPLETE for ever, and a record's forged change outranks
its later genuine ones), or a range an operator knows to be bad. What it does, in this order, with
the backup materialiser stopped (it takes the snapshot store's writer lock, and refuses while the
materialiser holds it):

1. choose the first sequence number to drop: the first one missing (everything up to the contiguous
   watermark is kept), or the operator's `--from-sequence`;
2. re-publish to bcl.residents, for every record with a change at or after that number, its latest
   state before it (or a tombstone when it did not exist before), and wait for the cluster to
   acknowledge: then the latest state follows the history that is kept;
3. set the changes from that number on aside — out of the history, into a file of their own under
   the snapshot store (set_aside/, owner-only), for inspection; nothing is deleted.

Afterwards the municipality's backup is complete up to the number before. The municipality's adapter
then sends its events again from that number (`bcl adapter resend`), and the restarted materialiser
applies them as new: the genuine events come back, the forged ones stay out (they are behind the
committed offsets). The command line records the resync in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from domain.errors import BclError
from domain.register_validation import message_key
from domain.sequencing import MunicipalitySequence
from infra import kafka, topics
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde
from sinks.snapshot_store import RESYNC, ParquetSnapshotStore, latest_changes, resident_arrow_schema


class ResyncError(BclError):
    pass


@dataclass(frozen=True)
class ResyncResult:
    municipality_code: str
    from_sequence: int
    set_aside: int  # history rows taken out
    set_aside_file: Path | None
    republished: int  # records whose latest state was published again


def resync(store: ParquetSnapshotStore, registry: BaseSchemaRegistry, bootstrap_servers: str, municipality_code: str,
           from_sequence: int | None = None, *, residents_topic: str = topics.RESIDENTS) -> ResyncResult:
    with store.writer_lock(RESYNC):
        con = duckdb.connect()
        rel = store.history_relation(con) if store.has_history() else None
        applied = [] if rel is None else con.execute(
            f"SELECT list(sequence ORDER BY sequence) FROM {rel} WHERE municipality_code = ?", [municipality_code]
        ).fetchone()[0] or []  # type: ignore[index]
        if not applied and not store.interrupted_resyncs():
            raise ResyncError(f"no backup of municipality {municipality_code} in the snapshot store")
        state = MunicipalitySequence.from_applied(applied)
        if from_sequence is None:
            if state.complete and not store.interrupted_resyncs():
                raise ResyncError(
                    f"the backup of {municipality_code} is complete (sequence 1–{state.high}): nothing to resync; "
                    "give --from-sequence to set aside the events from a number on")
            from_sequence = state.contiguous + 1
        if rel is not None and applied:
            republished = _republish(con, rel, registry, bootstrap_servers, municipality_code, from_sequence,
                                     residents_topic)
        else:
            republished = 0
        # The shared serial holders follow the latest states, which the set-aside changes: the next
        # materialiser rebuilds them from the history (sinks.serial_index).
        index = store.serial_index()
        try:
            index.forget()
        finally:
            index.close()
        removed, aside = store.set_aside_history(municipality_code, from_sequence)
    return ResyncResult(municipality_code, from_sequence, removed.num_rows, aside, republished)


def _republish(con: duckdb.DuckDBPyConnection, rel: str, registry: BaseSchemaRegistry, bootstrap_servers: str,
               municipality_code: str, from_sequence: int, residents_topic: str) -> int:
    """bcl.residents back to each affected record's latest state before `from_sequence`; flushed."""
    params = {"m": municipality_code, "s": from_sequence}
    affected = [rc for (rc,) in con.execute(
        f"SELECT DISTINCT resident_code FROM {rel} WHERE municipality_code = $m AND sequence >= $s", params
    ).fetchall()]
    if not affected:
        return 0
    where = "municipality_code = $m AND sequence < $s AND list_contains($codes, resident_code)"
    rows = con.sql(latest_changes(rel, where), params={**params, "codes": affected}).to_arrow_table().to_pylist()
    before = {row["resident_code"]: row for row in rows}
    fields = resident_arrow_schema().names
    serde = AvroSerde(registry, CONTRACTS[topics.RESIDENTS])
    producer = kafka.make_producer(bootstrap_servers)
    delivered = kafka.DeliveryTracker()
    for rc in affected:
        row = before.get(rc)
        value = None if row is None or row["removed"] else serde.encode({f: row[f] for f in fields})
        kafka.produce(producer, residents_topic, value, message_key(municipality_code, rc), on_delivery=delivered)
    delivered.flush(producer, "records to bcl.residents",
                    "nothing was set aside: run the resync again once the cluster answers")
    return len(affected)
