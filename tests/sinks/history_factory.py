"""History rows as the materialiser writes them, from simulator events, without a cluster (for tests and benches
of what reads the snapshot store)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sinks.snapshot_store import ParquetSnapshotStore, history_schema


def history_table(events: list[dict[str, Any]]) -> pa.Table:
    schema = history_schema()
    rows = []
    for e in events:
        record = e["after"] or {"municipality_code": e["municipality_code"], "resident_code": e["resident_code"]}
        rows.append({"sequence": e["sequence"], "change_type": e["change_type"], "event_time": e["event_time"],
                     "event_notified_on": e["notified_on"], "sent_at": e["sent_at"], "event_id": e["event_id"],
                     "removed": e["after"] is None, **record})
    return pa.Table.from_pylist(rows, schema=schema)


def append_events(store: ParquetSnapshotStore, code: str, events: list[dict[str, Any]], part_rows: int) -> None:
    """One history part per `part_rows` events, in the order given (as the materialiser's flushes)."""
    for i in range(0, len(events), part_rows):
        store.append_history(code, history_table(events[i:i + part_rows]))
