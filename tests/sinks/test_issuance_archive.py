"""The issuance archive: put/get, content addressing, indexes, idempotence and conflicts."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime

import pytest

from domain.japan_time import JST
from sinks.issuance_archive import ArchiveConflictError, IssuanceArchive, IssuanceArchiveError, sha256_hex

PDF = b"%PDF-1.7\n% a sealed certificate\n"
FRONT = b"\x89PNG front of sheet 1"
# 2026-11-20 23:30 in Japan is still the 20th there, the 20th 14:30 in UTC.
ISSUED = datetime(2026, 11, 20, 23, 30, tzinfo=JST)


def test_put_then_read_back_by_id_pdf_digest_and_issue_day(tmp_path):
    archive = IssuanceArchive(tmp_path)
    record = archive.put("c-1", "r-1", "131016", ISSUED, PDF, [FRONT, b"second sheet"])
    assert record.issued_at == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    assert record.issued_on == date(2026, 11, 20)
    assert archive.get("c-1") == record
    assert archive.find_by_pdf_sha256(sha256_hex(PDF)) == [record]
    assert archive.find_by_pdf_sha256(sha256_hex(PDF).upper()) == [record]
    assert archive.issued_on("131016", date(2026, 11, 20)) == [record]
    assert archive.issued_on("131016", date(2026, 11, 21)) == []
    assert archive.read_pdf(record) == PDF
    assert archive.read_front(record, 1) == b"second sheet"
    with pytest.raises(IssuanceArchiveError, match="2 sheet"):
        archive.read_front(record, 2)
    # Personal data: owner-only files.
    mode = (tmp_path / "records" / "c-1.json").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_unknown_certificates_are_absent(tmp_path):
    archive = IssuanceArchive(tmp_path)
    assert archive.get("nope") is None
    assert archive.get("../etc/passwd") is None
    assert archive.find_by_pdf_sha256("0" * 64) == []
    with pytest.raises(IssuanceArchiveError, match="SHA-256"):
        archive.find_by_pdf_sha256("xyz")


def test_copies_with_identical_bytes_share_one_blob_and_both_are_found(tmp_path):
    archive = IssuanceArchive(tmp_path)
    first = archive.put("c-1", "r-1", "131016", ISSUED, PDF, [FRONT])
    second = archive.put("c-2", "r-1", "131016", ISSUED, PDF, [FRONT])
    assert archive.find_by_pdf_sha256(first.pdf_sha256) == [first, second]
    assert len(list((tmp_path / "pdf").rglob("*.pdf"))) == 1


def test_put_is_idempotent_and_refuses_other_content_under_the_same_id(tmp_path):
    archive = IssuanceArchive(tmp_path)
    record = archive.put("c-1", "r-1", "131016", ISSUED, PDF, [FRONT])
    assert archive.put("c-1", "r-1", "131016", ISSUED, PDF, [FRONT]) == record
    with pytest.raises(ArchiveConflictError):
        archive.put("c-1", "r-1", "131016", ISSUED, PDF + b"x", [FRONT])
    assert archive.read_pdf(archive.get("c-1")) == PDF


@pytest.mark.parametrize(
    ("certificate_id", "municipality", "issued_at", "pdf", "fronts", "message"),
    [
        ("../x", "131016", ISSUED, PDF, [FRONT], "not a valid id"),
        ("c", "13101", ISSUED, PDF, [FRONT], "6 digits"),
        ("c", "131016", datetime(2026, 11, 20), PDF, [FRONT], "aware"),
        ("c", "131016", ISSUED, b"GIF89a", [FRONT], "not a PDF"),
        ("c", "131016", ISSUED, PDF, [], "front raster"),
    ],
)
def test_bad_input_is_refused_with_the_reason(tmp_path, certificate_id, municipality, issued_at, pdf, fronts, message):
    with pytest.raises(IssuanceArchiveError, match=message):
        IssuanceArchive(tmp_path).put(certificate_id, "r", municipality, issued_at, pdf, fronts)
    assert not (tmp_path / "records").exists()
