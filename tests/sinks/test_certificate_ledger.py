"""The billing ledger without a broker: duplicates across batches and instances, exact confirmation of index
hits, compaction of small parts and repair of rows written twice."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq

from domain.billing import BillingMonth
from sinks.certificate_ledger import CertificateLedger, issued_month
from sinks.certificate_log import part_files, partition_dir, register_view
from tests.streams.certificate_events import certificate_events


def log_ids(snapshot_dir: Path) -> list[str]:
    con = duckdb.connect()
    register_view(con, snapshot_dir)
    return [r[0] for r in con.execute("SELECT certificate_id FROM certificates_issued").fetchall()]


def test_each_certificate_once_across_batches_and_instances(tmp_path: Path) -> None:
    events = certificate_events(200)
    ledger = CertificateLedger(tmp_path)
    first = ledger.record(events[:150] + events[:20])  # duplicates inside the batch
    assert (first.new, first.duplicates) == (150, 20)
    second = ledger.record(events[100:])  # overlaps the first batch
    assert (second.new, second.duplicates) == (len(events) - 150, 50)
    ledger.close()
    restarted = CertificateLedger(tmp_path)
    again = restarted.record(events)
    assert (again.new, again.duplicates, again.paths) == (0, len(events), [])
    ids = log_ids(tmp_path)
    assert sorted(ids) == sorted(e["certificate_id"] for e in events)
    assert restarted.known(BillingMonth(2025, 11)) == sum(issued_month(e) == BillingMonth(2025, 11) for e in events)


def test_an_index_hit_is_confirmed_against_the_log(tmp_path: Path) -> None:
    """A hash collision must not drop a new certificate: make every hash 'known' and check that the ledger
    still writes the events whose ids the log does not hold."""
    events = certificate_events(30)
    ledger = CertificateLedger(tmp_path)
    ledger.record(events[:10])
    for month in {issued_month(e) for e in events}:
        index = ledger._month(month)
        index.contains = lambda hashes: np.ones(len(hashes), dtype=bool)  # type: ignore[method-assign]
    result = ledger.record(events)
    assert (result.new, result.duplicates) == (len(events) - 10, 10)
    assert sorted(log_ids(tmp_path)) == sorted(e["certificate_id"] for e in events)


def test_small_parts_are_compacted_and_rows_twice_are_repaired(tmp_path: Path) -> None:
    events = [e for e in certificate_events(400) if issued_month(e) == BillingMonth(2025, 11)]
    ledger = CertificateLedger(tmp_path, compact_parts=4)
    for start in range(0, len(events), 20):
        ledger.record(events[start:start + 20])
    folder = partition_dir(tmp_path, 2025, 11)
    assert len(list(folder.glob("part-*.parquet"))) <= 5
    assert sorted(log_ids(tmp_path)) == sorted(e["certificate_id"] for e in events)
    ledger.close()

    # An interrupted compaction: the merged part was renamed in but the small parts were not removed yet.
    [merged, *_] = sorted(part_files(tmp_path), key=lambda p: -pq.ParquetFile(p).metadata.num_rows)
    (folder / "part-copy.parquet").write_bytes(merged.read_bytes())
    assert len(log_ids(tmp_path)) > len(events)
    repaired = CertificateLedger(tmp_path)
    assert repaired.record(events[:5]).duplicates == 5
    assert sorted(log_ids(tmp_path)) == sorted(e["certificate_id"] for e in events)
