"""The issuance archive: every certificate a kiosk printed, kept so that a verifier can later say
"this PDF (or this paper) is one we issued".

For each certificate the worker stores the sealed PDF and the front raster of each sheet (the image
the scramble on the back encodes, at the renderer's raster resolution) with a small JSON record.
Blobs are content-addressed by SHA-256, so the copies of one request that render to the same bytes
are stored once. Layout under the root:

    pdf/<ab>/<sha256>.pdf               the sealed PDF, <ab> = first two hex digits
    fronts/<ab>/<sha256>.png            a front raster
    records/<certificate_id>.json       certificate_id, request_id, municipality_code, issued_at (UTC),
                                        pdf_sha256, front_sha256 (one per sheet)
    by-pdf/<sha256>/<certificate_id>    empty marker: which certificates have this PDF
    by-day/<municipality>/<YYYY-MM-DD>/<certificate_id>
                                        empty marker: certificates of a municipality by Japan date of
                                        issue (the date printed on the front), for matching a scan

Every file appears atomically (written under a temporary name in its folder, flushed to disk,
renamed), blobs before the record and the record before its index markers, so a reader that finds
a marker always finds the record and the record's blobs. A put of a certificate id that is already
archived with the same content is a no-op (a re-delivered request); with other content it is refused.

The archive holds personal data (the certificates themselves): files are mode 0600 in 0700 folders
(infra.private_files), and callers that read a certificate for a person record it in the audit log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from domain.errors import BclError
from domain.identifiers import ID_RULE, is_valid_id
from domain.japan_time import japan_date
from infra.private_files import private_folder, write_private_file

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MUNICIPALITY = re.compile(r"[0-9]{6}")


class IssuanceArchiveError(BclError):
    """The issuance archive cannot store or read a certificate."""


class ArchiveConflictError(IssuanceArchiveError):
    """A certificate id is already archived with other content."""


@dataclass(frozen=True)
class ArchivedCertificate:
    certificate_id: str
    request_id: str
    municipality_code: str
    issued_at: datetime  # aware, UTC
    pdf_sha256: str
    front_sha256: tuple[str, ...]  # one per sheet, in sheet order

    @property
    def issued_on(self) -> date:
        """The Japan date of issue: the date printed on the certificate."""
        return japan_date(self.issued_at)

    def to_json(self) -> dict[str, object]:
        return {
            "certificate_id": self.certificate_id,
            "request_id": self.request_id,
            "municipality_code": self.municipality_code,
            "issued_at": self.issued_at.astimezone(UTC).isoformat(),
            "pdf_sha256": self.pdf_sha256,
            "front_sha256": list(self.front_sha256),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ArchivedCertificate:
        fronts = data["front_sha256"]
        if not isinstance(fronts, list):
            raise IssuanceArchiveError(f"archive record of {data.get('certificate_id')!r} is malformed")
        return cls(
            certificate_id=str(data["certificate_id"]),
            request_id=str(data["request_id"]),
            municipality_code=str(data["municipality_code"]),
            issued_at=datetime.fromisoformat(str(data["issued_at"])).astimezone(UTC),
            pdf_sha256=str(data["pdf_sha256"]),
            front_sha256=tuple(str(f) for f in fronts),
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_id(kind: str, value: str) -> str:
    # Ids become file names (domain.identifiers: never a path); the worker refuses requests whose id breaks it.
    if not is_valid_id(value):
        raise IssuanceArchiveError(f"{kind} {value[:200]!r} is not a valid id ({ID_RULE})")
    return value


class IssuanceArchive:
    """The archive under one root folder (Settings.issuance_dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # --- writing (the certificate worker) ---

    def put(
        self,
        certificate_id: str,
        request_id: str,
        municipality_code: str,
        issued_at: datetime,
        pdf: bytes,
        front_pngs: Sequence[bytes],
    ) -> ArchivedCertificate:
        """Archive one issued certificate: its sealed PDF and the PNG of each sheet's front raster.
        Idempotent for the same content; raises ArchiveConflictError if the id holds other content."""
        _check_id("certificate id", certificate_id)
        _check_id("request id", request_id)
        if not _MUNICIPALITY.fullmatch(municipality_code):
            raise IssuanceArchiveError(f"municipality code {municipality_code!r} is not 6 digits")
        if issued_at.tzinfo is None:
            raise IssuanceArchiveError("issued_at must be time-zone aware")
        if not pdf.startswith(b"%PDF-"):
            raise IssuanceArchiveError(f"certificate {certificate_id}: the archived document is not a PDF")
        if not front_pngs:
            raise IssuanceArchiveError(f"certificate {certificate_id}: at least one front raster is needed")
        record = ArchivedCertificate(
            certificate_id=certificate_id,
            request_id=request_id,
            municipality_code=municipality_code,
            issued_at=issued_at.astimezone(UTC),
            pdf_sha256=sha256_hex(pdf),
            front_sha256=tuple(sha256_hex(png) for png in front_pngs),
        )
        private_folder(self.root)  # also an archive made before its folders were private
        existing = self.get(certificate_id)
        if existing is not None:
            if existing != record:
                raise ArchiveConflictError(f"certificate {certificate_id} is already archived with other content")
            return existing
        self._put_blob(self._pdf_path(record.pdf_sha256), pdf)
        for digest, png in zip(record.front_sha256, front_pngs, strict=True):
            self._put_blob(self._front_path(digest), png)
        write_private_file(self._record_path(certificate_id), json.dumps(record.to_json(), sort_keys=True).encode())
        for marker in (
            self.root / "by-pdf" / record.pdf_sha256 / certificate_id,
            self.root / "by-day" / municipality_code / record.issued_on.isoformat() / certificate_id,
        ):
            write_private_file(marker, b"")
        return record

    def _put_blob(self, path: Path, data: bytes) -> None:
        if not path.exists():  # content-addressed: an existing file already holds these bytes
            write_private_file(path, data)

    # --- reading (the verifier) ---

    def get(self, certificate_id: str) -> ArchivedCertificate | None:
        """The record of a certificate, or None if no such certificate was issued."""
        if not is_valid_id(certificate_id):
            return None
        path = self._record_path(certificate_id)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise IssuanceArchiveError(f"cannot read the archive record {path}: {exc}") from exc
        return ArchivedCertificate.from_json(data)

    def find_by_pdf_sha256(self, digest: str) -> list[ArchivedCertificate]:
        """Certificates whose sealed PDF has this SHA-256 (hex): usually one; the copies of one
        request share it when they rendered to the same bytes. Empty if it was never issued."""
        digest = digest.lower()
        if not _SHA256.fullmatch(digest):
            raise IssuanceArchiveError(f"{digest!r} is not a SHA-256 hex digest")
        folder = self.root / "by-pdf" / digest
        if not folder.is_dir():
            return []
        return self._records(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))

    def issued_on(self, municipality_code: str, day: date) -> list[ArchivedCertificate]:
        """Certificates a municipality issued on a Japan date: the candidates a scan of a paper
        with that municipality and issue date printed on its front can belong to."""
        if not _MUNICIPALITY.fullmatch(municipality_code):
            raise IssuanceArchiveError(f"municipality code {municipality_code!r} is not 6 digits")
        folder = self.root / "by-day" / municipality_code / day.isoformat()
        if not folder.is_dir():
            return []
        return self._records(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))

    def read_pdf(self, record: ArchivedCertificate) -> bytes:
        return self._read_blob(self._pdf_path(record.pdf_sha256), record)

    def read_front(self, record: ArchivedCertificate, sheet: int = 0) -> bytes:
        """The PNG of the front raster of one sheet (0-based)."""
        if not 0 <= sheet < len(record.front_sha256):
            raise IssuanceArchiveError(
                f"certificate {record.certificate_id} has {len(record.front_sha256)} sheet(s), not {sheet + 1}"
            )
        return self._read_blob(self._front_path(record.front_sha256[sheet]), record)

    def _records(self, certificate_ids: list[str]) -> list[ArchivedCertificate]:
        records = []
        for certificate_id in certificate_ids:
            record = self.get(certificate_id)
            if record is None:
                raise IssuanceArchiveError(f"archive index names certificate {certificate_id} but it has no record")
            records.append(record)
        return records

    def _read_blob(self, path: Path, record: ArchivedCertificate) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise IssuanceArchiveError(f"certificate {record.certificate_id}: cannot read {path}: {exc}") from exc

    def _pdf_path(self, digest: str) -> Path:
        return self.root / "pdf" / digest[:2] / f"{digest}.pdf"

    def _front_path(self, digest: str) -> Path:
        return self.root / "fronts" / digest[:2] / f"{digest}.png"

    def _record_path(self, certificate_id: str) -> Path:
        return self.root / "records" / f"{certificate_id}.json"
