"""The checks of what a person submits (certgen.verification_request), shared by the web page and the
command line: every bad upload and every unusable field is one line in Japanese and in English naming
what was wrong; a good submission is verified."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from certgen.keys import KeyPool
from certgen.verification import PdfVerification, ScanVerification, VerificationContext, VerificationInputError
from certgen.verification_request import (
    MAX_UPLOAD_BYTES,
    ScanSubject,
    check_pdf,
    check_scan,
    check_upload,
    name_certificate,
)
from tests.certgen.issued_world import IssuedWorld, build_issued_world, degraded_scan_png, hide_sheet_code


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> IssuedWorld:
    return build_issued_world(tmp_path_factory.mktemp("verification-request"), key_pool)


@pytest.fixture(scope="module")
def audit() -> list[tuple[str, int, str | None]]:
    return []


@pytest.fixture(scope="module")
def context(world: IssuedWorld, audit: list[tuple[str, int, str | None]]) -> VerificationContext:
    return VerificationContext([world.seal_root], world.archive, world.key_of, lambda *entry: audit.append(entry))


@pytest.fixture(scope="module")
def scan(world: IssuedWorld, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return degraded_scan_png(world.household.pdf, tmp_path_factory.mktemp("scan"))


def _png(size: tuple[int, int] = (300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, "PNG")
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def _refused(call, *args, **kwargs) -> VerificationInputError:  # type: ignore[no-untyped-def]
    with pytest.raises(VerificationInputError) as caught:
        call(*args, **kwargs)
    error = caught.value
    for text in (error.en, error.ja, str(error)):
        assert "\n" not in text and "BytesIO" not in text and "Traceback" not in text and "<" not in text, text
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in error.ja), error.ja
    return error


@pytest.mark.parametrize(
    ("data", "en", "ja"),
    [
        (b"", "is empty (0 bytes)", "は空です"),
        (b"meeting notes\n\xe4\xbc\x9a\xe8\xad\xb0\n", "neither a PDF nor an image: it looks like a text file",
         "PDFでも画像でもありません（テキストファイルのようです）"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "it looks like a web page", "Webページ"),
        (_zip(), "ZIP archive or an Office document", "Office文書"),
        (bytes(range(256)) * 8, "is neither a PDF nor an image;", "PDFでも画像でもありません"),
        (_png()[:-60], "PNG image is damaged or truncated", "壊れているか途中で切れて"),
    ],
)
def test_a_bad_upload_says_what_was_wrong(context: VerificationContext, data: bytes, en: str, ja: str) -> None:
    error = _refused(check_upload, context, data, "upload.bin", issuer="横浜市長", issued_on="令和8年11月21日")
    assert en in error.en and ja in error.ja
    assert "“upload.bin”" in error.en and "「upload.bin」" in error.ja  # names the file
    assert error.field == "file"


def test_a_file_over_the_limit_is_refused_before_anything_is_read(context: VerificationContext) -> None:
    error = _refused(check_upload, context, b"%PDF-1.7\n" + bytes(MAX_UPLOAD_BYTES), "huge.pdf")
    assert "too large" in error.en and "大きすぎます" in error.ja and "21 MiB" in error.en


def test_an_image_of_too_many_pixels_is_refused(context: VerificationContext) -> None:
    error = _refused(check_scan, context, _png((8000, 6000)), "photo.png", issuer="横浜市長",
                     issued_on="令和8年11月21日")
    assert "too large for a scan of one page" in error.en and "大きすぎます" in error.ja


def test_the_pdf_and_scan_commands_refuse_the_other_kind(context: VerificationContext, world: IssuedWorld) -> None:
    assert "is not a PDF (it is a PNG image" in _refused(check_pdf, context, _png(), "scan.png").en
    assert "is a PDF, not a scan" in _refused(check_scan, context, world.household.pdf, "c.pdf", issuer="横浜市長",
                                              issued_on="令和8年11月21日").en


@pytest.mark.parametrize(
    ("fields", "field", "en", "ja"),
    [
        ({"issued_on": "令和8年11月21日"}, "issuer", "issuer: missing", "発行者: 入力されていません"),
        ({"issuer": "横浜市長"}, "issued_on", "issue date: missing", "発行日: 入力されていません"),
        ({"issuer": "横浜", "issued_on": "令和8年11月21日"}, "issuer", "issuer: «横浜» names no municipality",
         "発行者: 「横浜」に当たる市区町村がありません"),
        ({"issuer": "府中市長", "issued_on": "令和8年11月21日"}, "issuer", "add the prefecture", "都道府県名"),
        ({"issuer": "横浜市長", "issued_on": "2026-21-11"}, "issued_on", "issue date: «2026-21-11» is not a date",
         "発行日: 「2026-21-11」はありえない日付"),
        ({"issuer": "横浜市長", "issued_on": "平成31年5月1日"}, "issued_on", "does not exist", "存在しない日付"),
        ({"issuer": "横浜市長", "issued_on": "next tuesday"}, "issued_on", "is not a date as printed",
         "日付として読めません"),
    ],
)
def test_a_field_that_names_no_certificate_is_named(fields: dict[str, str], field: str, en: str, ja: str) -> None:
    error = _refused(name_certificate, **fields)
    assert error.field == field and en in error.en and ja in error.ja


def test_nothing_typed_leaves_it_to_the_code_on_the_back() -> None:
    assert name_certificate() == name_certificate(" ", "", "\u3000") == ScanSubject()


def test_a_pdf_is_verified_whatever_was_typed(context: VerificationContext, world: IssuedWorld) -> None:
    result = check_upload(context, world.household.pdf, "jyuminhyo.pdf", issuer="nonsense", issued_on="x")
    assert isinstance(result, PdfVerification) and result.valid, result.reasons
    assert all(f.message_ja for f in result.findings)


@pytest.mark.parametrize(("issuer", "issued_on"), [("横浜市長", "令和8年11月21日"),
                                                   ("横浜市長　山中　竹春", "令和８年１１月２１日"),
                                                   ("141003", "2026/11/21")])
def test_a_scan_named_as_the_paper_prints_it_matches(context: VerificationContext, scan: bytes, issuer: str,
                                                      issued_on: str, audit: list[tuple[str, int, str | None]]) -> None:
    result = check_upload(context, scan, "scan.png", issuer=issuer, issued_on=issued_on)
    assert isinstance(result, ScanVerification) and result.matches, result.reasons
    assert result.certificate_id == "cert-household"
    assert audit[-1] == ("141003", 1, "cert-household")  # the comparison is recorded: the one sheet the code names


def test_a_scan_with_its_code_needs_nothing_typed(context: VerificationContext, scan: bytes) -> None:
    result = check_upload(context, scan, "scan.png")
    assert isinstance(result, ScanVerification) and result.matches, result.reasons
    assert (result.certificate_id, result.candidates) == ("cert-household", 1)


def test_a_scan_named_with_another_day_finds_nothing_issued(context: VerificationContext, scan: bytes) -> None:
    # The code names the household's sheet, issued on the 21st: the date typed contradicts it.
    result = check_scan(context, scan, "scan.png", issuer="横浜市長", issued_on="令和8年11月20日")
    assert not result.matches and "not the issuer and date typed" in result.reasons[0]
    # Without a readable code, nothing was issued that day to compare with.
    out = io.BytesIO()
    hide_sheet_code(Image.open(io.BytesIO(scan)).convert("RGB")).save(out, "PNG")
    result = check_scan(context, out.getvalue(), "scan.png", issuer="横浜市長", issued_on="令和8年11月20日")
    assert not result.matches and result.candidates == 0
    assert "横浜市 (141003) issued no certificate on 2026-11-20 (令和8年11月20日)" in result.reasons[0]
    assert "令和8年11月20日" in result.findings[0].message_ja

