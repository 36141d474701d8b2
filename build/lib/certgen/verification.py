"""Verification of an issued certificate (docs/domain.md §3.1): of its PDF, and of a scan of its paper.

A PDF is genuine when three checks pass, each reported with a sentence a person can read:
  1. seal — the electronic seal (電子契印) is intact (the signed bytes hash to the signed digest), its
     signature is valid, its certificate chains to the municipal seal root, and it covers the whole
     file (pyHanko's validator; nothing appended after sealing);
  2. record — the PDF's SHA-256 is in the issuance archive: BCL issued exactly these bytes;
  3. issuer — the seal's municipality (the OU of its certificate) is the one the archive recorded.
A validly sealed PDF that was never archived fails check 2: that is what a stolen seal key would make.

A scan (or photo) of the back is verified by restoring the front from the scramble image with the
municipality's key (certgen.scramble.descramble) and comparing it with the issued front raster kept in
the archive (certgen.verification_scan.match, judged against its MATCH_THRESHOLD, the one threshold of
scan verification). A scan does not say which certificate it is, so the person names either the
certificate id or the municipality and the issue date printed on the front (both are on the paper);
every sheet of every certificate that municipality issued that day is then a
candidate and the best match wins. On a match the restore is shown beside the issued front (the score
cannot catch a single altered character, a person comparing the two can); without one, nothing of the
archived certificates is returned, since the best candidate is then someone else's certificate.

The archive is reached through BaseIssuanceRecord (sinks.issuance_archive.IssuanceArchive satisfies
it); this module does no file or network I/O of its own.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from hashlib import sha256
from typing import Protocol

import numpy as np
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from certgen.errors import ScrambleError
from certgen.scramble import descramble
from certgen.verification_scan import MATCH_THRESHOLD, match

# A scan larger than this (pixels) is refused before decoding: a phone photo is ~12 MP, an A4 scan
# at 600 dpi ~35 MP; anything bigger is not a scan of one certificate back.
MAX_SCAN_PIXELS = 40_000_000
# A PDF larger than this is not one of ours (a multi-page household certificate is well under 1 MiB).
MAX_PDF_BYTES = 20 * 1024 * 1024


class IssuedRecord(Protocol):
    """What the verifier needs to know of an archived certificate."""

    @property
    def certificate_id(self) -> str: ...
    @property
    def municipality_code(self) -> str: ...
    @property
    def issued_at(self) -> datetime: ...
    @property
    def front_sha256(self) -> tuple[str, ...]: ...


class BaseIssuanceRecord(Protocol):
    """The issuance archive as the verifier sees it (read-only)."""

    def get(self, certificate_id: str) -> IssuedRecord | None: ...
    def find_by_pdf_sha256(self, digest: str) -> Sequence[IssuedRecord]: ...
    def issued_on(self, municipality_code: str, day: date) -> Sequence[IssuedRecord]: ...
    def read_front(self, record: IssuedRecord, sheet: int = 0) -> bytes: ...


@dataclass(frozen=True)
class VerificationContext:
    """What a verifier works with: the trusted seal roots, the archive and the scramble keys."""

    seal_roots: Sequence[x509.Certificate]
    archive: BaseIssuanceRecord
    key_of: Callable[[str], bytes]  # municipality code -> scramble key (certgen.scramble_keys)
    # Called after a scan was compared with archived fronts (municipality, sheets compared, matched
    # certificate id or None): the application records it in the audit log (they are personal data).
    on_scan_checked: Callable[[str, int, str | None], None] | None = None


class Check(Enum):
    DOCUMENT = "document"
    SEAL = "seal"
    RECORD = "record"
    ISSUER = "issuer"
    SCAN = "scan"
    MATCH = "match"


@dataclass(frozen=True)
class Finding:
    check: Check
    ok: bool
    message: str


@dataclass(frozen=True)
class PdfVerification:
    findings: tuple[Finding, ...]
    pdf_sha256: str
    certificate_ids: tuple[str, ...] = ()  # archived certificates with exactly these bytes
    municipality_code: str | None = None  # from the seal certificate
    signer: str | None = None  # the seal certificate's common name, e.g. 横浜市 電子契印
    signed_at: datetime | None = None  # as claimed in the seal (no time stamp: not independently attested)

    @property
    def valid(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def reasons(self) -> list[str]:
        """Why it is not valid (empty when valid)."""
        return [f.message for f in self.findings if not f.ok]


@dataclass(frozen=True)
class ScanVerification:
    findings: tuple[Finding, ...]
    certificate_id: str | None = None  # the matching archived certificate (None unless it matches)
    sheet: int | None = None  # 0-based sheet of that certificate
    score: float | None = None
    candidates: int = 0  # issued sheets compared
    municipality_code: str | None = None  # whose scramble key restored the scan
    restored: np.ndarray | None = field(default=None, repr=False)  # RGB uint8
    issued: np.ndarray | None = field(default=None, repr=False)  # RGB uint8 of the matching front
    tile_scores: np.ndarray | None = field(default=None, repr=False)

    @property
    def matches(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def reasons(self) -> list[str]:
        return [f.message for f in self.findings if not f.ok]


def _name_attribute(certificate: asn1_x509.Certificate, name: str) -> str | None:
    value = certificate.subject.native.get(name)
    if isinstance(value, list):  # a repeated attribute: the last one is the most specific
        value = value[-1]
    return str(value) if value is not None else None


def verify_pdf(pdf: bytes, seal_roots: Sequence[x509.Certificate], archive: BaseIssuanceRecord,
               at: datetime | None = None) -> PdfVerification:
    """Check a certificate PDF: seal valid and trusted over the whole file, bytes in the issuance
    archive, seal municipality = archived municipality. `at` is the moment the seal certificate must
    be valid (now by default)."""
    digest = sha256(pdf).hexdigest()
    if len(pdf) > MAX_PDF_BYTES:
        return PdfVerification((Finding(Check.DOCUMENT, False,
                                        f"the file is {len(pdf) // 1024} KiB: too large to be a certificate"),), digest)
    records = list(archive.find_by_pdf_sha256(digest))
    record_finding = (
        Finding(Check.RECORD, True, f"issued by BCL: certificate {', '.join(r.certificate_id for r in records)}")
        if records else
        Finding(Check.RECORD, False,
                "not in the issuance record: BCL never issued a PDF with exactly these bytes "
                "(it was altered after issue, or it is not a BCL certificate)")
    )
    findings: list[Finding] = []
    municipality = signer = None
    signed_at = None
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, IndexError, TypeError) as exc:
        findings.append(Finding(Check.DOCUMENT, False, f"not a readable PDF ({exc})"))
        signatures = []
    else:
        if not signatures:
            findings.append(Finding(Check.SEAL, False, "the PDF carries no electronic seal"))
        elif len(signatures) > 1:
            findings.append(Finding(Check.SEAL, False, f"the PDF carries {len(signatures)} signatures; "
                                                       "a certificate has exactly one seal"))
    if len(signatures) == 1:
        roots = [asn1_x509.Certificate.load(r.public_bytes(serialization.Encoding.DER)) for r in seal_roots]
        context = ValidationContext(trust_roots=roots, moment=(at or datetime.now(UTC)), allow_fetching=False)
        embedded = signatures[0]
        try:
            status = validate_pdf_signature(embedded, context)
        # pyHanko's SignatureValidationError is a ValueError; malformed structures raise the others.
        except (PdfError, ValueError, KeyError, IndexError, TypeError) as exc:
            findings.append(Finding(Check.SEAL, False, f"the electronic seal cannot be checked ({exc})"))
        else:
            certificate = status.signing_cert
            municipality = _name_attribute(certificate, "organizational_unit_name")
            signer = _name_attribute(certificate, "common_name")
            signed_at = status.signer_reported_dt
            findings.extend(_seal_findings(status, signer))
    findings.append(record_finding)
    if records and municipality is not None:
        recorded = {r.municipality_code for r in records}
        findings.append(
            Finding(Check.ISSUER, True, f"sealed by municipality {municipality}, as recorded at issue")
            if recorded == {municipality} else
            Finding(Check.ISSUER, False, f"sealed by municipality {municipality} but issued for "
                                         f"{', '.join(sorted(recorded))}")
        )
    return PdfVerification(tuple(findings), digest, tuple(r.certificate_id for r in records), municipality, signer,
                           signed_at)


def _seal_findings(status: PdfSignatureStatus, signer: str | None) -> list[Finding]:
    who = signer or "an unnamed signer"
    if not status.intact:
        return [Finding(Check.SEAL, False, "the document was altered after sealing: its content no longer matches "
                                           "the electronic seal")]
    if not status.valid:
        return [Finding(Check.SEAL, False, f"the electronic seal of {who} is not a valid signature")]
    findings = []
    if status.revoked:
        findings.append(Finding(Check.SEAL, False, f"the seal certificate of {who} is revoked"))
    elif not status.trusted:
        findings.append(Finding(Check.SEAL, False, f"the seal of {who} does not chain to the municipal seal root "
                                                   "(unknown issuer, or the seal certificate is expired)"))
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        findings.append(Finding(Check.SEAL, False, "the seal does not cover the whole file: something was added "
                                                   "after sealing"))
    if not findings:
        findings.append(Finding(Check.SEAL, True, f"electronic seal of {who}: intact, trusted, covers the whole file"))
    return findings


def load_scan(data: bytes) -> Image.Image:
    """Decode an uploaded scan or photo (any format Pillow reads), refusing oversized images."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_SCAN_PIXELS:
            raise ScrambleError(f"the image is {image.width}x{image.height} px: too large for a scan of one page")
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ScrambleError(f"the file is not an image Pillow can read ({exc})") from exc
    return image.convert("RGB")


def verify_scan(scan: Image.Image | np.ndarray, archive: BaseIssuanceRecord, key_of: Callable[[str], bytes], *,
                certificate_id: str | None = None, municipality_code: str | None = None,
                issued_on: date | None = None) -> ScanVerification:
    """Restore the front from a scan of a certificate's back and compare it with the issued front.
    Name the certificate (certificate_id) or the municipality and issue date printed on the front;
    key_of(municipality_code) gives the scramble key (certgen.scramble_keys.scramble_key)."""
    if certificate_id is not None:
        record = archive.get(certificate_id)
        if record is None:
            return ScanVerification((Finding(Check.RECORD, False,
                                             f"certificate {certificate_id} is not in the issuance record"),))
        candidates: Sequence[IssuedRecord] = [record]
        municipality_code = record.municipality_code
    elif municipality_code is not None and issued_on is not None:
        candidates = archive.issued_on(municipality_code, issued_on)
        if not candidates:
            return ScanVerification((Finding(Check.RECORD, False,
                                             f"municipality {municipality_code} issued no certificate on "
                                             f"{issued_on.isoformat()} through BCL"),))
    else:
        raise ScrambleError("name the certificate id, or the municipality and the issue date printed on the front")

    key = key_of(municipality_code)
    restored_by_shape: dict[tuple[int, int], np.ndarray] = {}
    best: tuple[float, IssuedRecord, int, np.ndarray, np.ndarray, np.ndarray] | None = None
    sheets = 0
    for record in candidates:
        for sheet in range(len(record.front_sha256)):
            sheets += 1
            issued = np.asarray(Image.open(io.BytesIO(archive.read_front(record, sheet))).convert("RGB"))
            shape = (issued.shape[0], issued.shape[1])
            if shape not in restored_by_shape:
                try:
                    restored_by_shape[shape] = descramble(scan, key, shape)
                except ScrambleError as exc:
                    finding = Finding(Check.SCAN, False, f"no scramble image found in the scan: {exc}")
                    return ScanVerification((finding,), candidates=sheets, municipality_code=municipality_code)
            restored = restored_by_shape[shape]
            result = match(restored, issued)
            if best is None or result.score > best[0]:
                best = (result.score, record, sheet, restored, issued, result.tile_scores)
    if best is None:  # records always have at least one front; kept for the type checker
        return ScanVerification((Finding(Check.RECORD, False, "no archived front to compare with"),))
    score, record, sheet, restored, issued, tiles = best
    findings = [Finding(Check.SCAN, True, "scramble image found and restored")]
    if score < MATCH_THRESHOLD:
        # Neither the best candidate's id nor its front is returned: it is someone else's certificate.
        findings.append(Finding(Check.MATCH, False, f"the restored front matches no certificate issued "
                                                    f"(best score {score:.2f} < {MATCH_THRESHOLD:.2f} "
                                                    f"over {sheets} issued sheet(s))"))
        return ScanVerification(tuple(findings), score=score, candidates=sheets, municipality_code=municipality_code,
                                restored=restored)
    findings.append(Finding(Check.MATCH, True, f"the restored front matches certificate {record.certificate_id}, "
                                               f"sheet {sheet + 1} (score {score:.2f}, threshold "
                                               f"{MATCH_THRESHOLD:.2f}); compare it with the paper"))
    return ScanVerification(tuple(findings), record.certificate_id, sheet, score, sheets, municipality_code, restored,
                            issued, tiles)


def side_by_side(restored: np.ndarray, issued: np.ndarray, gap_px: int = 16) -> Image.Image:
    """restored | issued on one image, on a grey ground, for comparing by eye."""
    height = max(restored.shape[0], issued.shape[0])
    canvas = Image.new("RGB", (restored.shape[1] + gap_px + issued.shape[1], height), (128, 128, 128))
    canvas.paste(Image.fromarray(restored), (0, 0))
    canvas.paste(Image.fromarray(issued), (restored.shape[1] + gap_px, 0))
    return canvas


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    out = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(out, "PNG")
    return out.getvalue()
