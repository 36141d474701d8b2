"""What a person submits to verify a certificate, checked once for the web page and the command line
(`bcl verify serve`, `bcl verify pdf|scan`): the file — the sealed PDF, or a scan or photo of the
paper's back — and, for a scan whose code on the back cannot be read (or to check it), what they read
off the front to say which certificate it is: the issuer as printed (横浜市長, or the municipality code)
and the issue date as printed (令和8年11月17日), or the certificate id where they have it.

Everything wrong with a submission raises VerificationInputError with one line in Japanese and one in
English that names the file or the field at fault; the verdicts themselves come from
certgen.verification. Pure apart from what the VerificationContext does (reading the archive, the
audit callback).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from PIL import Image, UnidentifiedImageError

from certgen.verification import (
    MAX_PDF_BYTES,
    NotAnImageError,
    PdfVerification,
    ScanVerification,
    VerificationContext,
    VerificationInputError,
    load_scan,
    verify_pdf,
    verify_scan,
)
from domain.municipalities import Municipality
from domain.printed_date import PrintedDateError, parse_printed_date
from domain.printed_issuer import IssuerNameError, resolve_issuer

# The one size limit of an upload: a certificate PDF (certgen.verification.MAX_PDF_BYTES) with room for
# the form around it; a scan of one page as PNG or JPEG is well below it.
MAX_UPLOAD_BYTES = MAX_PDF_BYTES + 1024 * 1024
# A PDF's header may follow a little junk (ISO 32000-1 §7.5.2 lets readers look in the first 1024 bytes).
_PDF_HEADER_WINDOW = 1024

# (Japanese, English) name of each input, as the page labels it.
FIELD_NAMES: dict[str, tuple[str, str]] = {
    "file": ("ファイル", "file"),
    "certificate": ("証明書", "certificate"),  # nothing typed says which one
    "certificate_id": ("証明書ID", "certificate id"),
    "issuer": ("発行者", "issuer"),
    "issued_on": ("発行日", "issue date"),
}

_UPLOAD_HINT_EN = "choose the certificate PDF, or a scan or photo of the back of the paper"
_UPLOAD_HINT_JA = "証明書のPDFか、用紙の裏面をスキャン・撮影した画像を選んでください"


@dataclass(frozen=True)
class ScanSubject:
    """Which certificate a scan claims to be: by id, or by issuer and issue date as printed."""

    certificate_id: str | None = None
    municipality: Municipality | None = None
    issued_on: date | None = None


def _field_error(field: str, en: str, ja: str) -> VerificationInputError:
    name_ja, name_en = FIELD_NAMES[field]
    return VerificationInputError(f"{name_en}: {en}", f"{name_ja}: {ja}", field, detail=en)


def name_certificate(certificate_id: str | None = None, issuer: str | None = None,
                     issued_on: str | None = None) -> ScanSubject:
    """The certificate a scan is to be compared with, from what the person typed. The id, when given,
    names it alone; otherwise both the issuer and the issue date as printed on the front are needed.
    Nothing typed names nothing: the code on the back is to say (certgen.verification.verify_scan asks
    for these when it cannot be read)."""
    if certificate_id and certificate_id.strip():
        return ScanSubject(certificate_id=certificate_id.strip())
    issuer, issued_on = (issuer or "").strip(), (issued_on or "").strip()
    if not issuer and not issued_on:
        return ScanSubject()
    if not issuer:
        raise _field_error("issuer", "missing: type the municipality printed beside the mayor's seal (e.g. 横浜市長)",
                           "入力されていません。公印の横に印刷された市区町村長名を入力してください（例: 横浜市長）")
    if not issued_on:
        raise _field_error("issued_on", "missing: type the date printed above the mayor's name (e.g. 令和8年11月17日)",
                           "入力されていません。市区町村長名の上に印刷された日付を入力してください"
                           "（例: 令和8年11月17日）")
    try:
        municipality = resolve_issuer(issuer)
    except IssuerNameError as exc:
        raise _field_error("issuer", exc.en, exc.ja) from None
    try:
        day = parse_printed_date(issued_on)
    except PrintedDateError as exc:
        raise _field_error("issued_on", exc.en, exc.ja) from None
    return ScanSubject(municipality=municipality, issued_on=day)


def is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:_PDF_HEADER_WINDOW]


def _quoted(filename: str | None) -> tuple[str, str]:
    """The file as named in a message: “name” / 「name」 (shortened), or just the file."""
    if not filename:
        return "the file", "ファイル"
    # Long enough for a path on the command line; a name of hundreds of characters is cut in the middle.
    name = filename if len(filename) <= 160 else filename[:78] + "…" + filename[-78:]
    return f"“{name}”", f"「{name}」"


def _looks_like(data: bytes) -> tuple[str, str] | None:
    """What a file that is neither a PDF nor an image seems to be, for the message (None: no idea)."""
    head = data[:4096]
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive or an Office document", "ZIPファイルまたはOffice文書のようです"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "a web page (HTML)", "Webページ（HTML）のようです"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not merely a character cut at the end of the sample
                return None
        return "a text file", "テキストファイルのようです"
    return None


def check_size(size: int, filename: str | None = None) -> None:
    """Refuses an empty or oversized upload (the web page checks while the upload streams in)."""
    en, ja = _quoted(filename)
    if size == 0:
        raise VerificationInputError(f"{en} is empty (0 bytes): {_UPLOAD_HINT_EN}",
                                     f"{ja}は空です（0バイト）。{_UPLOAD_HINT_JA}")
    if size > MAX_UPLOAD_BYTES:
        limit = f"{MAX_UPLOAD_BYTES // 1024 // 1024} MiB"
        raise VerificationInputError(f"{en} is too large (more than {limit}): {_UPLOAD_HINT_EN}",
                                     f"{ja}が大きすぎます（上限 {limit}）。{_UPLOAD_HINT_JA}")


def check_pdf(context: VerificationContext, data: bytes, filename: str | None = None) -> PdfVerification:
    """Verify an uploaded certificate PDF (certgen.verification.verify_pdf)."""
    check_size(len(data), filename)
    if not is_pdf(data):
        en, ja = _quoted(filename)
        image_format = _image_format(data)
        seems = _looks_like(data)
        if image_format is not None:
            what_en = f" (it is a {image_format} image: verify it as a scan of the paper)"
            what_ja = f"（{image_format}画像です。用紙のスキャンとして検証してください）"
        else:
            what_en, what_ja = (f" (it looks like {seems[0]})", f"（{seems[1]}）") if seems else ("", "")
        raise VerificationInputError(f"{en} is not a PDF{what_en}", f"{ja}はPDFではありません{what_ja}")
    return verify_pdf(data, context.seal_roots, context.archive)


def _image_format(data: bytes) -> str | None:
    """PNG, JPEG, … when Pillow recognises the file's header (nothing is decoded), else None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format or "")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _load_image(data: bytes, filename: str | None) -> Image.Image:
    en, ja = _quoted(filename)
    try:
        return load_scan(data)
    except NotAnImageError:
        seems = _looks_like(data)
        what_en, what_ja = (f": it looks like {seems[0]}", f"（{seems[1]}）") if seems else ("", "")
        raise VerificationInputError(f"{en} is neither a PDF nor an image{what_en}; {_UPLOAD_HINT_EN}",
                                     f"{ja}はPDFでも画像でもありません{what_ja}。{_UPLOAD_HINT_JA}") from None
    except VerificationInputError as exc:
        raise VerificationInputError(f"{en}: {exc.en}", f"{ja}: {exc.ja}") from None


def check_scan(context: VerificationContext, data: bytes, filename: str | None = None, *,
               certificate_id: str | None = None, issuer: str | None = None,
               issued_on: str | None = None) -> ScanVerification:
    """Verify an uploaded scan or photo of a certificate's back against the sheet its code names, or the
    certificate the person named (name_certificate), recording the comparison through
    context.on_scan_checked."""
    check_size(len(data), filename)
    if is_pdf(data):
        en, ja = _quoted(filename)
        raise VerificationInputError(f"{en} is a PDF, not a scan: verify it as a PDF",
                                     f"{ja}はPDFです（スキャン画像ではありません）。PDFとして検証してください")
    subject = name_certificate(certificate_id, issuer, issued_on)
    scan = _load_image(data, filename)
    result = verify_scan(scan, context.archive, context.key_of,
                         certificate_id=subject.certificate_id,
                         municipality_code=subject.municipality.code if subject.municipality else None,
                         issued_on=subject.issued_on)
    if context.on_scan_checked is not None and result.candidates:
        context.on_scan_checked(result.municipality_code or "", result.candidates, result.certificate_id)
    return result


def check_upload(context: VerificationContext, data: bytes, filename: str | None = None, *,
                 certificate_id: str | None = None, issuer: str | None = None,
                 issued_on: str | None = None) -> PdfVerification | ScanVerification:
    """The web page's one upload: a PDF is verified as a PDF (the typed fields are not needed), anything
    else as a scan."""
    check_size(len(data), filename)
    if is_pdf(data):
        return check_pdf(context, data, filename)
    return check_scan(context, data, filename, certificate_id=certificate_id, issuer=issuer, issued_on=issued_on)
