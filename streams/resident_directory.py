"""Finding residents by JPKI certificate serial in the materialised backup (docs/domain.md §4).

An in-memory index, built at start from the snapshot store (latest state of every record: the row
with the highest sequence per municipality and resident code, removals dropped) and kept current
from bcl.residents (Resident after-images, tombstones for removed records), as the materialiser
publishes them. Three maps: record key → latest record, serial → record keys (a person who moved
keeps a deleted record in the former municipality, so a serial can link to several records), and
household → member keys.

Why in memory: a kiosk request must be answered in well under a second, and the lookups are
point reads. The index holds whole records (the seal impression is a few kB), so it fits the demo
and a few million residents per worker host; a national deployment would partition it by
municipality (one keyed store per worker partition) — not built here.

Every read of personal data is audited (docs/domain.md §8): the worker calls `audit_reads` once per
processed batch with the records it read, grouped per municipality, so the audit log gets one line
per municipality and batch instead of one per certificate.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from sinks.audit import record_access
from sinks.snapshot_store import EVENT_FIELDS, BaseSnapshotStore, latest_changes

RecordKey = tuple[str, str]  # (municipality code, resident code)
Resident = dict[str, Any]

_EVENT_COLUMNS = [f.name for f in EVENT_FIELDS]


def key_of(message_key: bytes) -> RecordKey:
    """bcl.residents keys are `<municipality code>:<resident code>` (domain.register_validation)."""
    municipality, _, resident = message_key.decode().partition(":")
    return municipality, resident


class ResidentDirectory:
    """Thread-safe: the feed thread applies updates while the worker reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[RecordKey, Resident] = {}
        self._by_serial: dict[str, set[RecordKey]] = defaultdict(set)
        self._by_household: dict[tuple[str, str], set[RecordKey]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._records)

    # -- building ------------------------------------------------------------------------------

    def load_snapshot(self, store: BaseSnapshotStore) -> int:
        """Load the latest state of every record from the snapshot store; returns the count."""
        if not store.has_history():
            return 0
        con = duckdb.connect()
        relation = store.history_relation(con)
        table = con.sql(
            f"SELECT * EXCLUDE ({', '.join(_EVENT_COLUMNS)}) FROM ({latest_changes(relation)}) WHERE NOT removed"
        ).to_arrow_table()
        count = 0
        for batch in table.to_batches(50_000):
            for record in batch.to_pylist():
                self.put((record["municipality_code"], record["resident_code"]), record)
                count += 1
        con.close()
        return count

    def put(self, key: RecordKey, record: Resident | None) -> None:
        """The latest state of one record (None: removed)."""
        with self._lock:
            old = self._records.pop(key, None)
            if old is not None:
                for certificate in old.get("jpki_certificates") or ():
                    self._discard(self._by_serial, certificate["serial"], key)
                self._discard(self._by_household, (key[0], old.get("household_number") or ""), key)
            if record is None:
                return
            self._records[key] = record
            for certificate in record.get("jpki_certificates") or ():
                self._by_serial[certificate["serial"]].add(key)
            self._by_household[(key[0], record.get("household_number") or "")].add(key)

    @staticmethod
    def _discard(index: dict[Any, set[RecordKey]], at: Any, key: RecordKey) -> None:
        keys = index.get(at)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[at]

    # -- reading -------------------------------------------------------------------------------

    def by_serial(self, serial: str) -> list[Resident]:
        """Every record that lists the certificate serial (usually one)."""
        with self._lock:
            return [self._records[k] for k in sorted(self._by_serial.get(serial, ()))]

    def household(self, municipality_code: str, household_number: str) -> list[Resident]:
        with self._lock:
            return [self._records[k] for k in sorted(self._by_household.get((municipality_code, household_number), ()))]

    def get(self, key: RecordKey) -> Resident | None:
        with self._lock:
            return self._records.get(key)


def audit_reads(audit_file: Path, reads: Mapping[str, Mapping[str, int]], action: str = "certificate_issue") -> None:
    """One audit line per municipality: the records read, and for which requests (municipality →
    request id → number of resident records read for it)."""
    for municipality_code, per_request in sorted(reads.items()):
        record_access(audit_file, action, municipality_code, sum(per_request.values()),
                      request_ids=sorted(per_request), processor="certificate-worker")
