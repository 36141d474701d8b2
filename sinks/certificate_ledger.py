"""The billing ledger: the issued-certificate log (sinks.certificate_log) kept free of duplicates, so that each
certificate_id is counted once however often its event is delivered or the topic is replayed.

The log is the source of truth. To know whether a certificate is already in it without re-reading a month of
Parquet for every batch, the ledger keeps, per month, a sorted array of the 64-bit hashes of the certificate
ids in that month's partition (8 bytes per certificate: a national month of ~4 million certificates is
~32 MB, a month of a large city a few MB), loaded from the log the first time the month is touched. A hash
not in the index is a new certificate for sure. A hash in the index (a redelivery, or very rarely a
collision) is confirmed against the log itself by certificate_id, so the answer is exact.

Order of a write: the new events are appended to the log (atomic part files), then added to the index; the
caller commits its offsets afterwards. After a crash in between, the redelivered events are recognised by
the index, which is rebuilt from the log.

Maintenance: a month gets one part file per batch. When it holds more than compact_parts small files they are
merged into one (renamed in, then the small ones removed). A crash between the two leaves rows twice in the
log; loading the month notices (fewer distinct hashes than rows) and de-duplicates it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from domain.billing import BillingMonth
from domain.japan_time import JST
from sinks.certificate_log import (
    LOG_SCHEMA,
    CertificateLogError,
    append_certificates,
    deduplicate_month,
    partition_dir,
    write_partition,
)

log = structlog.get_logger("certificate_ledger")

Event = Mapping[str, Any]


def issued_month(event: Event) -> BillingMonth:
    """The Japan-time month a CertificateIssued event belongs to (its log partition)."""
    value = event["issued_at"]
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise CertificateLogError(f"certificate {event.get('certificate_id')}: issued_at must be an aware datetime "
                                  f"or epoch milliseconds, got {value!r}")
    local = value.astimezone(JST)
    return BillingMonth(local.year, local.month)


def _member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(sorted_values, values)
    at[at == len(sorted_values)] = len(sorted_values) - 1
    return sorted_values[at] == values


class _MonthHashes:
    """Hashes of one month's certificate ids: a large sorted array and a small sorted one of recent additions,
    merged when the small one grows, so that adding a batch never re-sorts the whole month."""

    def __init__(self, hashes: np.ndarray) -> None:
        self._main = np.sort(hashes)
        self._recent = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._main) + len(self._recent)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        return _member(self._main, hashes) | _member(self._recent, hashes)

    def add(self, hashes: np.ndarray) -> None:
        self._recent = np.sort(np.concatenate([self._recent, hashes]))
        if len(self._recent) > max(65_536, len(self._main) // 8):
            self._main = np.sort(np.concatenate([self._main, self._recent]))
            self._recent = np.empty(0, dtype=np.uint64)


@dataclass
class LedgerWrite:
    """What one record() call did: certificates new to the ledger, events already in it, files written."""

    new: int = 0
    duplicates: int = 0
    paths: list[Path] = field(default_factory=list)


class CertificateLedger:
    def __init__(self, snapshot_dir: Path, *, cached_months: int = 3, compact_parts: int = 32,
                 small_part_rows: int = 250_000) -> None:
        self.snapshot_dir = snapshot_dir
        self._cached_months = cached_months
        self._compact_parts = compact_parts
        self._small_part_rows = small_part_rows
        self._months: OrderedDict[BillingMonth, _MonthHashes] = OrderedDict()
        self._con = duckdb.connect()

    def close(self) -> None:
        self._con.close()

    # -- reading the log -----------------------------------------------------------------------
    def _parts(self, month: BillingMonth) -> list[Path]:
        return sorted(partition_dir(self.snapshot_dir, month.year, month.month).glob("part-*.parquet"))

    @staticmethod
    def _files_sql(parts: Sequence[Path]) -> str:
        return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"

    def _hashes(self, ids: Sequence[str]) -> np.ndarray:
        self._con.register("ids_arrow", pa.table({"id": pa.array(ids, type=pa.string())}))
        try:
            return self._con.execute("SELECT hash(id) AS h FROM ids_arrow").fetchnumpy()["h"].astype(np.uint64)
        finally:
            self._con.unregister("ids_arrow")

    def _load(self, month: BillingMonth) -> _MonthHashes:
        parts = self._parts(month)
        if not parts:
            return _MonthHashes(np.empty(0, dtype=np.uint64))
        sql = f"SELECT hash(certificate_id) AS h FROM read_parquet({self._files_sql(parts)})"
        hashes = self._con.execute(sql).fetchnumpy()["h"].astype(np.uint64)
        if len(np.unique(hashes)) < len(hashes):
            # Rows twice in the log (an interrupted compaction, or a writer without this ledger): repair it.
            removed = deduplicate_month(self.snapshot_dir, month.year, month.month)
            if removed:
                log.warning("log_deduplicated", month=str(month), removed=removed)
                return self._load(month)
        log.info("month_indexed", month=str(month), certificates=len(hashes), parts=len(parts))
        return _MonthHashes(hashes)

    def _month(self, month: BillingMonth) -> _MonthHashes:
        index = self._months.get(month)
        if index is None:
            index = self._months[month] = self._load(month)
            while len(self._months) > self._cached_months:
                self._months.popitem(last=False)
        self._months.move_to_end(month)
        return index

    def _in_log(self, month: BillingMonth, ids: Sequence[str]) -> set[str]:
        """Which of ids the month's partition holds (exact, by certificate_id)."""
        parts = self._parts(month)
        if not parts:
            return set()
        self._con.register("candidates_arrow", pa.table({"id": pa.array(ids, type=pa.string())}))
        try:
            rows = self._con.execute(
                f"SELECT DISTINCT certificate_id FROM read_parquet({self._files_sql(parts)}) "
                "WHERE certificate_id IN (SELECT id FROM candidates_arrow)"
            ).fetchall()
        finally:
            self._con.unregister("candidates_arrow")
        return {r[0] for r in rows}

    def known(self, month: BillingMonth) -> int:
        """How many certificates the ledger holds for a month."""
        return len(self._month(month))

    # -- writing -------------------------------------------------------------------------------
    def record(self, events: Iterable[Event]) -> LedgerWrite:
        """Append the events whose certificate_id the ledger does not hold yet; count the others as duplicates."""
        result = LedgerWrite()
        unique: dict[str, Event] = {}
        for event in events:
            certificate_id = str(event["certificate_id"])
            if certificate_id in unique:
                result.duplicates += 1
            else:
                unique[certificate_id] = event
        by_month: dict[BillingMonth, list[Event]] = {}
        for event in unique.values():
            by_month.setdefault(issued_month(event), []).append(event)
        fresh: list[Event] = []
        fresh_hashes: dict[BillingMonth, np.ndarray] = {}
        for month, month_events in sorted(by_month.items()):
            ids = [str(e["certificate_id"]) for e in month_events]
            hashes = self._hashes(ids)
            hit = self._month(month).contains(hashes)
            present = self._in_log(month, [i for i, h in zip(ids, hit, strict=True) if h]) if hit.any() else set()
            keep = np.array([i not in present for i in ids], dtype=bool)
            result.duplicates += int((~keep).sum())
            fresh.extend(e for e, k in zip(month_events, keep, strict=True) if k)
            fresh_hashes[month] = hashes[keep]
        if fresh:
            result.paths = append_certificates(self.snapshot_dir, fresh)
            result.new = len(fresh)
        for month, hashes in fresh_hashes.items():
            if len(hashes):
                self._month(month).add(hashes)
                self._compact(month)
        return result

    def _compact(self, month: BillingMonth) -> None:
        parts = self._parts(month)
        if len(parts) <= self._compact_parts:
            return
        small = [p for p in parts if pq.ParquetFile(p).metadata.num_rows < self._small_part_rows]
        if len(small) <= self._compact_parts:
            return
        table = pa.concat_tables([pq.ParquetFile(p).read().cast(LOG_SCHEMA) for p in small])
        write_partition(self.snapshot_dir, month.year, month.month, table)
        for part in small:
            part.unlink()
        log.info("month_compacted", month=str(month), parts=len(small), rows=table.num_rows)
