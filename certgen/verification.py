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
scan verification). The code at the bottom of the back (certgen.sheet_code) says which sheet it is, and
the scan is compared with that one; what the person typed (the certificate id, or the municipality and
the issue date as printed on the front, 横浜市長 and 令和8年11月17日, read by
certgen.verification_request) is checked against it. Only when the code cannot be read is every sheet
of the certificate typed, or of every certificate that municipality issued that day (at most
MAX_FALLBACK_SHEETS), a candidate, and the best match wins. On a match the restore
is shown beside the issued front (the score cannot catch a single altered character, a person comparing
the two can); without one, nothing of the archived certificates is returned, since the best candidate is
then someone else's certificate.

Every finding is worded in English and in Japanese (the page is read by residents and shop clerks first);
what a person submitted that cannot be checked at all (not an image, no certificate named) raises
VerificationInputError, also worded in both. pyHanko reports why a seal is not trusted through logging
(a warning with a traceback, which an unconfigured program prints to stderr): the verifier collects it
as the one-line reason of the finding instead.

The archive is reached through BaseIssuanceRecord (sinks.issuance_archive.IssuanceArchive satisfies
it); this module does no file or network I/O of its own.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from certgen.errors import ScrambleError
from certgen.scramble import descramble
from certgen.sheet_code import read_sheet_codes
from certgen.verification_scan import MATCH_THRESHOLD, match
from domain.errors import BclError
from domain.japan_time import japan_date
from domain.japanese_date import format_japanese_date
from domain.municipalities import municipality as find_municipality

# A scan larger than this (pixels) is refused from its header, before anything is decoded: an A4 scan
# at 400 dpi is 15.5 MP, a phone photo 12 MP (24 MP at most); decoded, it takes at most 4 bytes a pixel.
MAX_SCAN_PIXELS = 25_000_000
# A decoded scan is reduced (integer box filter; a JPEG is decoded reduced) until its long side is at
# most this: ~200 dpi for an A4 page, twice what the scramble image needs (it is read from 100 dpi
# scans), and what bounds the memory of restoring and matching (bench/scan_lookup.py).
MAX_WORKING_SIDE = 2400
# Without a readable code on the back, a scan is compared with every sheet its municipality issued on
# the date typed, up to this many (~0.3 s each); beyond it the person is asked for the certificate id.
MAX_FALLBACK_SHEETS = 8
# A PDF larger than this is not one of ours (a multi-page household certificate is well under 1 MiB).
MAX_PDF_BYTES = 20 * 1024 * 1024
# The loggers through which pyHanko explains a failed validation.
_PYHANKO_LOGGERS = ("pyhanko", "pyhanko_certvalidator")


class VerificationInputError(BclError, ValueError):
    """What a person submitted cannot be checked: a file that is no certificate PDF or image, a field
    that names nothing. str() is the English message, `ja` the Japanese one; `field` is the input at
    fault ("file", "certificate_id", "issuer", "issued_on", or "certificate" when nothing names the
    certificate), `detail` the English message without the field's name (for a caller that names the
    field its own way, as the command line does with its options)."""

    def __init__(self, en: str, ja: str, field: str = "file", detail: str | None = None) -> None:
        super().__init__(en)
        self.en = en
        self.ja = ja
        self.field = field
        self.detail = detail or en


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


class NotAnImageError(VerificationInputError):
    """The file is no image format that can be decoded at all (as opposed to a damaged or oversized image)."""


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
    message: str  # English
    message_ja: str


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
        """Why it is not valid (empty when valid), in English."""
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


class _PyHankoReasons(logging.Handler):
    """pyHanko's validation warnings logged on this thread (the web page verifies in several threads)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        error = record.exc_info[1] if record.exc_info else None
        # The certvalidator's own sentence, without the certificate's subject pyHanko puts before it.
        reason = getattr(error, "failure_msg", None) or record.getMessage()
        if reason not in self.reasons:
            self.reasons.append(str(reason))


@contextmanager
def _pyhanko_reasons() -> Iterator[_PyHankoReasons]:
    """Collects what pyHanko logs while validating. While a handler is attached, logging's last-resort
    handler (which would print the warning and its traceback to stderr) stays silent; a handler the
    application configured on the root logger still receives the records."""
    handler = _PyHankoReasons()
    loggers = [logging.getLogger(name) for name in _PYHANKO_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _short(exc: BaseException) -> str:
    """An exception as one line of text for a person: its message, or its kind when it has none."""
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def verify_pdf(pdf: bytes, seal_roots: Sequence[x509.Certificate], archive: BaseIssuanceRecord,
               at: datetime | None = None) -> PdfVerification:
    """Check a certificate PDF: seal valid and trusted over the whole file, bytes in the issuance
    archive, seal municipality = archived municipality. `at` is the moment the seal certificate must
    be valid (now by default)."""
    digest = sha256(pdf).hexdigest()
    if len(pdf) > MAX_PDF_BYTES:
        size = f"{len(pdf) / 1024 / 1024:.1f} MiB"
        return PdfVerification((Finding(Check.DOCUMENT, False, f"the file is {size}: too large to be a certificate",
                                        f"ファイルが大きすぎます（{size}）。証明書のPDFではありません"),), digest)
    records = list(archive.find_by_pdf_sha256(digest))
    record_finding = (
        Finding(Check.RECORD, True, f"issued by BCL: certificate {', '.join(r.certificate_id for r in records)}",
                f"BCLが発行した証明書です（証明書ID {'、'.join(r.certificate_id for r in records)}）")
        if records else
        Finding(Check.RECORD, False,
                "not in the issuance record: BCL never issued a PDF with exactly these bytes "
                "(it was altered after issue, or it is not a BCL certificate)",
                "発行記録にありません: BCLはこの内容のPDFを発行していません"
                "（発行後に改変されたか、BCLの証明書ではありません）")
    )
    findings: list[Finding] = []
    municipality = signer = None
    signed_at = None
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    # Any exception: pyHanko parses an untrusted file, and a malformed one can fail anywhere inside it
    # (zlib, struct, attribute errors); each means the same thing to the person: not a readable PDF.
    except Exception as exc:
        findings.append(Finding(Check.DOCUMENT, False, f"the file is not a readable PDF ({_short(exc)})",
                                "PDFとして読み取れません（ファイルが壊れています）"))
        signatures = []
    else:
        if not signatures:
            findings.append(Finding(Check.SEAL, False, "the PDF carries no electronic seal",
                                    "PDFに電子契印がありません"))
        elif len(signatures) > 1:
            findings.append(Finding(Check.SEAL, False, f"the PDF carries {len(signatures)} signatures; "
                                                       "a certificate has exactly one seal",
                                    f"PDFに署名が{len(signatures)}つあります（証明書の電子契印は1つだけです）"))
    if len(signatures) == 1:
        roots = [asn1_x509.Certificate.load(r.public_bytes(serialization.Encoding.DER)) for r in seal_roots]
        context = ValidationContext(trust_roots=roots, moment=(at or datetime.now(UTC)), allow_fetching=False)
        embedded = signatures[0]
        with _pyhanko_reasons() as pyhanko:
            try:
                status = validate_pdf_signature(embedded, context)
            # As above: a malformed signature structure can fail anywhere in the validator.
            except Exception as exc:
                status = None
                findings.append(Finding(Check.SEAL, False, f"the electronic seal cannot be checked ({_short(exc)})",
                                        "電子契印を検証できません（署名の構造が壊れています）"))
        if status is not None:
            certificate = status.signing_cert
            municipality = _name_attribute(certificate, "organizational_unit_name")
            signer = _name_attribute(certificate, "common_name")
            signed_at = status.signer_reported_dt
            findings.extend(_seal_findings(status, signer, pyhanko.reasons))
    findings.append(record_finding)
    if records and municipality is not None:
        recorded = {r.municipality_code for r in records}
        findings.append(
            Finding(Check.ISSUER, True, f"sealed by municipality {municipality}, as recorded at issue",
                    f"発行記録のとおり、市区町村 {municipality} の電子契印です")
            if recorded == {municipality} else
            Finding(Check.ISSUER, False, f"sealed by municipality {municipality} but issued for "
                                         f"{', '.join(sorted(recorded))}",
                    f"市区町村 {municipality} の電子契印ですが、"
                    f"発行記録では {'、'.join(sorted(recorded))} の証明書です")
        )
    return PdfVerification(tuple(findings), digest, tuple(r.certificate_id for r in records), municipality, signer,
                           signed_at)


def _seal_findings(status: PdfSignatureStatus, signer: str | None, reasons: Sequence[str] = ()) -> list[Finding]:
    who = signer or "an unnamed signer"
    who_ja = signer or "署名者不明"
    if not status.intact:
        return [Finding(Check.SEAL, False, "the document was altered after sealing: its content no longer matches "
                                           "the electronic seal",
                        "電子契印の後に内容が改変されています（内容が電子契印と一致しません）")]
    if not status.valid:
        return [Finding(Check.SEAL, False, f"the electronic seal of {who} is not a valid signature",
                        f"電子契印（{who_ja}）は正しい署名ではありません")]
    findings = []
    if status.revoked:
        findings.append(Finding(Check.SEAL, False, f"the seal certificate of {who} is revoked",
                                f"電子契印（{who_ja}）の証明書は失効しています"))
    elif not status.trusted:
        detail = f": {'; '.join(reasons)}" if reasons else ""
        findings.append(Finding(Check.SEAL, False, f"the seal of {who} does not chain to the municipal seal root "
                                                   f"(unknown issuer, or the seal certificate is expired){detail}",
                                f"電子契印（{who_ja}）は、自治体の電子契印ルート証明書で確認できません"
                                "（発行元が不明か、電子契印の証明書の有効期限切れです）"))
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        findings.append(Finding(Check.SEAL, False, "the seal does not cover the whole file: something was added "
                                                   "after sealing",
                                "電子契印がファイル全体を覆っていません（電子契印の後に何かが追加されています）"))
    if not findings:
        findings.append(Finding(Check.SEAL, True, f"electronic seal of {who}: intact, trusted, covers the whole file",
                                f"電子契印（{who_ja}）: 改変なし、信頼できる発行元、ファイル全体を保護"))
    return findings


def load_scan(data: bytes) -> Image.Image:
    """Decode an uploaded scan or photo (any format Pillow reads) into 8-bit RGB at working size
    (MAX_WORKING_SIDE), refusing an image of more than MAX_SCAN_PIXELS from its header, before decoding.
    VerificationInputError says what is wrong with the file."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise NotAnImageError("the file is not an image (PNG, JPEG, TIFF, …) that can be read",
                                     "画像ファイル（PNG・JPEG・TIFF など）として読み取れません") from None
    if image.width * image.height > MAX_SCAN_PIXELS:
        raise _too_many_pixels(image.size)
    factor = -(-max(image.size) // MAX_WORKING_SIDE)
    if factor > 1 and image.format == "JPEG":
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly: the full-size pixels never exist.
        image.draft("RGB", (-(-image.width // factor), -(-image.height // factor)))
    kind = image.format or ""
    try:
        image.load()
        rgb = _eight_bit_rgb(image)
    # A header that decodes but a body that does not: cut short in transfer, or damaged.
    except (OSError, ValueError, Image.DecompressionBombError):
        raise VerificationInputError(f"the {kind + ' ' if kind else ''}image is damaged or truncated and cannot be "
                                     "read", f"{kind}画像が壊れているか途中で切れていて、読み取れません") from None
    factor = -(-max(rgb.size) // MAX_WORKING_SIDE)
    return rgb.reduce(factor) if factor > 1 else rgb


def _too_many_pixels(size: tuple[int, int] | None) -> VerificationInputError:
    limit = MAX_SCAN_PIXELS // 1_000_000
    what_en = f"{size[0]}×{size[1]} px" if size else "far too many pixels"
    what_ja = f"{size[0]}×{size[1]} ピクセル" if size else "画素数が多すぎます"
    return VerificationInputError(
        f"the image is {what_en}: too large for a scan of one page (at most {limit} megapixels; "
        "scan at 300 dpi or less)",
        f"画像が大きすぎます（{what_ja}。1ページのスキャンは{limit}00万画素まで、300dpi以下でスキャンしてください）")


def _eight_bit_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. 16- and 32-bit grey is scaled down to 8 bits here (Pillow's own conversion would clip
    it to white); every other mode is Pillow's conversion (ValueError for a mode it cannot convert)."""
    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
    elif image.mode in ("I", "F"):
        grey = np.asarray(image).astype(np.float32)
        grey *= np.float32(255 / max(255.0, float(grey.max())))
        image = Image.fromarray(grey.clip(0, 255).astype(np.uint8))
    return image if image.mode == "RGB" else image.convert("RGB")


def _municipality_label(code: str) -> str:
    try:
        return f"{find_municipality(code).name} ({code})"
    except LookupError:  # an archive of a municipality the shipped list no longer has
        return f"municipality {code}"


def _printed(day: date) -> str:
    return f"{format_japanese_date(day)}（{day.isoformat()}）"


def _sheets_to_compare(scan: Image.Image | np.ndarray, archive: BaseIssuanceRecord, certificate_id: str | None,
                       municipality_code: str | None, issued_on: date | None,
                       ) -> tuple[list[tuple[IssuedRecord, int]], list[Finding]] | ScanVerification:
    """Which archived sheets the scan is compared with, and findings against what was typed; or the
    verdict when there is nothing to compare with. The code on the back names one sheet; what the person
    typed is checked against it. Without a code: the certificate typed, or (bounded) every sheet of the
    municipality and date typed."""
    codes = read_sheet_codes(scan)
    if len(codes) > 1:
        return ScanVerification((Finding(Check.SCAN, False, f"the scan shows the codes of {len(codes)} sheets: scan "
                                                            "the back of one sheet at a time",
                                         f"{len(codes)}枚分の裏面のコードが写っています。1枚ずつスキャンしてください"),))
    code = codes[0] if codes else None
    against: list[Finding] = []
    if certificate_id is not None:
        record = archive.get(certificate_id)
        if record is None:
            return ScanVerification((Finding(Check.RECORD, False,
                                             f"certificate {certificate_id} is not in the issuance record",
                                             f"証明書ID {certificate_id} は発行記録にありません"),))
        sheets = range(len(record.front_sha256))
        if code is not None and code.certificate_id != certificate_id:
            named = code.certificate_id
            against.append(Finding(Check.RECORD, False, f"the code on the back names certificate {named}, "
                                                        f"not {certificate_id}",
                                   f"裏面のコードは証明書 {named} を示しています（{certificate_id} ではありません）"))
        elif code is not None and code.sheet in sheets:
            sheets = range(code.sheet, code.sheet + 1)
        return [(record, sheet) for sheet in sheets], against
    if code is not None:
        record = archive.get(code.certificate_id)
        if record is None or code.sheet >= len(record.front_sha256):
            return ScanVerification((Finding(Check.RECORD, False,
                                             f"the code on the back names certificate {code.certificate_id}, sheet "
                                             f"{code.sheet + 1}, which is not in the issuance record",
                                             f"裏面のコードが示す証明書 {code.certificate_id} の{code.sheet + 1}枚目は"
                                             "発行記録にありません"),))
        day = japan_date(record.issued_at)  # as printed on the front
        typed_other_issuer = municipality_code is not None and municipality_code != record.municipality_code
        if typed_other_issuer or (issued_on is not None and issued_on != day):
            who = _municipality_label(record.municipality_code)
            against.append(Finding(Check.RECORD, False,
                                   f"the code on the back names a certificate {who} issued on "
                                   f"{day.isoformat()}, not the issuer and date typed",
                                   f"裏面のコードは{who}が{_printed(day)}に発行した証明書を示しています"
                                   "（入力された発行者・発行日と異なります）"))
        return [(record, code.sheet)], against
    if municipality_code is None or issued_on is None:
        raise VerificationInputError(
            "the code at the bottom of the back cannot be read: say which certificate the scan is: the issuer "
            "and the issue date printed on the front (e.g. 横浜市長, 令和8年11月17日), or its id",
            "裏面下のコードが読み取れません。表面に印刷された発行者と発行日（例: 横浜市長、令和8年11月17日）"
            "または証明書IDを入力してください", field="certificate")
    candidates = archive.issued_on(municipality_code, issued_on)
    who = _municipality_label(municipality_code)
    if not candidates:
        return ScanVerification((Finding(Check.RECORD, False,
                                         f"{who} issued no certificate on {issued_on.isoformat()} "
                                         f"({format_japanese_date(issued_on)}) through BCL",
                                         f"{who}が{_printed(issued_on)}にBCLで発行した証明書はありません"),))
    sheets_of_day = [(record, sheet) for record in candidates for sheet in range(len(record.front_sha256))]
    if len(sheets_of_day) > MAX_FALLBACK_SHEETS:
        raise VerificationInputError(
            f"the code at the bottom of the back cannot be read, and {who} issued {len(sheets_of_day)} sheets on "
            f"{issued_on.isoformat()}: more than the {MAX_FALLBACK_SHEETS} a scan is compared with one by one; scan "
            "the back again with its code whole and sharp, or type the certificate id",
            f"裏面下のコードが読み取れず、{who}が{_printed(issued_on)}に発行した用紙は{len(sheets_of_day)}枚あり、"
            f"1枚ずつ照合できる{MAX_FALLBACK_SHEETS}枚を超えています。コード全体がはっきり写るように"
            "スキャンし直すか、証明書IDを入力してください", field="certificate_id")
    return sheets_of_day, against


def verify_scan(scan: Image.Image | np.ndarray, archive: BaseIssuanceRecord, key_of: Callable[[str], bytes], *,
                certificate_id: str | None = None, municipality_code: str | None = None,
                issued_on: date | None = None) -> ScanVerification:
    """Restore the front from a scan of a certificate's back and compare it with the issued front: the
    sheet the code on the back names (certgen.sheet_code), or when it cannot be read the certificate
    named by certificate_id or by the municipality and issue date printed on the front; what was typed
    is checked against the code. key_of(municipality_code) gives the scramble key
    (certgen.scramble_keys.scramble_key)."""
    chosen = _sheets_to_compare(scan, archive, certificate_id, municipality_code, issued_on)
    if isinstance(chosen, ScanVerification):
        return chosen
    sheets_to_compare, against = chosen
    municipality_code = sheets_to_compare[0][0].municipality_code
    key = key_of(municipality_code)
    restored_by_shape: dict[tuple[int, int], np.ndarray] = {}
    best: tuple[float, IssuedRecord, int, np.ndarray, np.ndarray, np.ndarray] | None = None
    sheets = 0
    for record, sheet in sheets_to_compare:
        sheets += 1
        issued = np.asarray(Image.open(io.BytesIO(archive.read_front(record, sheet))).convert("RGB"))
        shape = (issued.shape[0], issued.shape[1])
        if shape not in restored_by_shape:
            try:
                restored_by_shape[shape] = descramble(scan, key, shape)
            except ScrambleError as exc:
                finding = Finding(Check.SCAN, False, f"no scramble image found in the scan: {exc}",
                                  "画像の中にスクランブル画像（証明書の裏面の模様）が見つかりません。"
                                  "裏面全体が写るように、傾けずにスキャン・撮影してください")
                return ScanVerification((finding,), candidates=sheets, municipality_code=municipality_code)
        restored = restored_by_shape[shape]
        result = match(restored, issued)
        if best is None or result.score > best[0]:
            best = (result.score, record, sheet, restored, issued, result.tile_scores)
    if best is None:  # records always have at least one front; kept for the type checker
        return ScanVerification((Finding(Check.RECORD, False, "no archived front to compare with",
                                         "照合する発行時の表面がありません"),))
    score, record, sheet, restored, issued, tiles = best
    findings = [Finding(Check.SCAN, True, "scramble image found and restored",
                        "スクランブル画像を読み取り、表面を復元しました"), *against]
    if against:
        # The paper contradicts itself or what was typed: no verdict on whose certificate it is.
        return ScanVerification(tuple(findings), score=score, candidates=sheets, municipality_code=municipality_code,
                                restored=restored)
    if score < MATCH_THRESHOLD:
        # Neither the best candidate's id nor its front is returned: it is someone else's certificate.
        findings.append(Finding(Check.MATCH, False, f"the restored front matches no certificate issued "
                                                    f"(best score {score:.2f} < {MATCH_THRESHOLD:.2f} "
                                                    f"over {sheets} issued sheet(s))",
                                f"復元した表面は、発行されたどの証明書とも一致しません"
                                f"（最高スコア {score:.2f}、基準 {MATCH_THRESHOLD:.2f}、{sheets}枚と照合）"))
        return ScanVerification(tuple(findings), score=score, candidates=sheets, municipality_code=municipality_code,
                                restored=restored)
    findings.append(Finding(Check.MATCH, True, f"the restored front matches certificate {record.certificate_id}, "
                                               f"sheet {sheet + 1} (score {score:.2f}, threshold "
                                               f"{MATCH_THRESHOLD:.2f}); compare it with the paper",
                            f"復元した表面は証明書 {record.certificate_id} の{sheet + 1}枚目と一致します"
                            f"（スコア {score:.2f}、基準 {MATCH_THRESHOLD:.2f}）。お手元の用紙と見比べてください"))
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
