"""The issued-certificate log in the snapshot store: partitions, atomic parts, de-duplication, the view."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from sinks.certificate_log import (
    CertificateLogError,
    append_certificates,
    deduplicate_month,
    log_dir,
    part_files,
    register_view,
)
from tests.sinks.issued_log_factory import events


def test_partitions_follow_the_japan_month(tmp_path: Path) -> None:
    written = append_certificates(tmp_path, events())
    months = sorted({(p.parent.parent.name, p.parent.name) for p in written})
    assert months == [("year=2025", "month=03"), ("year=2025", "month=04"), ("year=2025", "month=11"),
                      ("year=2025", "month=12"), ("year=2026", "month=01")]
    assert not list(log_dir(tmp_path).rglob("*.tmp")) and not list(log_dir(tmp_path).rglob(".*"))
    con = duckdb.connect()
    register_view(con, tmp_path)
    # 2025-03-31 15:30 UTC is 1 April 00:30 in Japan: the April partition, Japan date and minute derived.
    row = con.execute("SELECT year, month, issued_date, issued_minute, issued_at FROM certificates_issued "
                      "WHERE certificate_id = 'cert-008'").fetchall()[0]
    assert row[:4] == (2025, 4, date(2025, 4, 1), 30)
    assert row[4] == datetime(2025, 3, 31, 15, 30, tzinfo=UTC)
    assert con.execute("SELECT count(*) FROM certificates_issued").fetchall()[0][0] == 11


def test_epoch_millis_are_accepted_and_batch_duplicates_dropped(tmp_path: Path) -> None:
    batch = events()[:2]
    batch[1]["issued_at"] = int(batch[1]["issued_at"].timestamp() * 1000)
    append_certificates(tmp_path, [*batch, batch[0]])
    con = duckdb.connect()
    register_view(con, tmp_path)
    assert con.execute("SELECT count(*), count(DISTINCT certificate_id) FROM certificates_issued").fetchall() == [
        (2, 2)]


def test_bad_events_are_refused(tmp_path: Path) -> None:
    event = events()[0]
    del event["kiosk_id"]
    with pytest.raises(CertificateLogError, match="kiosk_id"):
        append_certificates(tmp_path, [event])
    naive = events()[0] | {"issued_at": datetime(2025, 11, 4, 1, 0)}
    with pytest.raises(CertificateLogError, match="time zone"):
        append_certificates(tmp_path, [naive])
    assert part_files(tmp_path) == []


def test_view_on_an_empty_store_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CertificateLogError, match="generate-year"):
        register_view(duckdb.connect(), tmp_path)


def test_redelivered_batch_is_removed_by_deduplicate_month(tmp_path: Path) -> None:
    november = [e for e in events() if e["certificate_id"] in ("cert-000", "cert-001", "cert-007")]
    append_certificates(tmp_path, november)
    append_certificates(tmp_path, november[1:])  # an at-least-once redelivery of part of the batch
    assert deduplicate_month(tmp_path, 2025, 11) == 2
    assert deduplicate_month(tmp_path, 2025, 11) == 0
    assert deduplicate_month(tmp_path, 2024, 1) == 0
    con = duckdb.connect()
    register_view(con, tmp_path)
    ids = con.execute("SELECT certificate_id FROM certificates_issued ORDER BY certificate_id").fetchall()
    assert ids == [("cert-000",), ("cert-001",), ("cert-007",)]
    assert len(part_files(tmp_path)) == 1
