"""The certificate PDF's content and layout, read back with the poppler tools."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from certgen.certificate_document import ResidentCopyOptions
from certgen.certificate_pdf import CertificateRenderer
from certgen.errors import CertificateContentError, CertificateDocumentError
from certgen.pdf_render import BackSide
from certgen.truetype_font import TrueTypeFont
from domain.certificate_types import CertificateType
from tests.certgen.factories import (
    INDIVIDUAL_NUMBERS,
    ISSUER,
    MINCHO,
    RESIDENT_CODES,
    household_of_seven,
    household_of_three,
)
from tests.certgen.pdf_fixtures import ISSUED_AT, page_count, pdf_text, run

FULL = ResidentCopyOptions(household_head_and_relationship=True, domicile=True)


def assert_no_identifiers(text: str) -> None:
    for secret in (*INDIVIDUAL_NUMBERS, *RESIDENT_CODES):
        assert secret not in text


def test_resident_copy_of_the_whole_household(renderer: CertificateRenderer, tmp_path: Path) -> None:
    issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_three(), ISSUER, ISSUED_AT, options=FULL)
    text = pdf_text(issued.pdf, tmp_path)
    for expected in ("住民票の写し", "1枚中1枚目", "神奈川県横浜市中区日本大通1番地", "世帯主佐藤健一",
                     "佐藤健一", "佐藤美咲", "佐藤陽菜", "サトウケンイチ", "昭和53年6月14日", "令和元年5月1日",
                     "平成27年4月1日", "東京都千代田区丸の内一丁目1番1号から転入", "出生", "妻", "子",
                     "本籍東京都千代田区丸の内一丁目1番", "筆頭者佐藤健一",
                     "この写しは、世帯全員の住民票の原本と相違ないことを証明する。",
                     "令和8年11月21日", "横浜市長山中竹春"):
        assert expected in text, expected
    assert "世帯の一部" not in text
    assert_no_identifiers(text)
    assert issued.sheets == 1


def test_optional_items_are_left_out_unless_asked(renderer: CertificateRenderer, tmp_path: Path) -> None:
    issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_three(), ISSUER, ISSUED_AT)
    text = pdf_text(issued.pdf, tmp_path)
    assert "佐藤美咲" in text
    assert "世帯主佐藤" not in text  # neither the head line nor a relationship value
    assert "続柄妻" not in text
    assert "筆頭者" not in text and "本籍" not in text


def test_part_of_the_household(renderer: CertificateRenderer, tmp_path: Path) -> None:
    household = household_of_three()
    options = ResidentCopyOptions(member_codes=frozenset({RESIDENT_CODES[1]}))
    text = pdf_text(renderer.render(CertificateType.RESIDENT_RECORD, household, ISSUER, ISSUED_AT,
                                    options=options).pdf, tmp_path)
    assert "この写しは、世帯の一部の住民票の原本と相違ないことを証明する。" in text
    assert "佐藤美咲" in text
    assert "佐藤健一" not in text and "佐藤陽菜" not in text


@pytest.mark.parametrize(("options", "pages"), [(ResidentCopyOptions(), 2), (FULL, 3)])
def test_large_household_is_numbered_across_pages(renderer: CertificateRenderer, tmp_path: Path,
                                                  options: ResidentCopyOptions, pages: int) -> None:
    issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER, ISSUED_AT,
                             options=options)
    assert issued.sheets == pages
    assert page_count(issued.pdf, tmp_path) == pages
    # The readings identify members uniquely (a name may recur as 世帯主 or 筆頭者).
    names = ["サトウケンイチ", "サトウミサキ", "サトウヒナ", "サトウシゲル", "サトウカズコ", "サトウヒロト",
             "タカハシイチロウ"]
    seen = []
    for number in range(1, pages + 1):
        text = pdf_text(issued.pdf, tmp_path, number)
        assert f"{pages}枚中{number}枚目" in text
        assert ("原本と相違ないことを証明する。" in text) == (number == pages)
        assert ("次葉へ続く" in text) == (number < pages)
        seen.extend(n for n in names if n in text)
        assert_no_identifiers(text)
    assert sorted(seen) == sorted(names)  # every member exactly once
    assert "昭和64年1月7日" in pdf_text(issued.pdf, tmp_path)  # 高橋 一郎, born on the last day of 昭和


def test_seal_registration_certificate(renderer: CertificateRenderer, tmp_path: Path) -> None:
    head = household_of_three()[0]
    issued = renderer.render(CertificateType.SEAL_REGISTRATION, [head], ISSUER, ISSUED_AT)
    text = pdf_text(issued.pdf, tmp_path)
    for expected in ("印鑑登録証明書", "印影", "20150423", "佐藤健一", "平成27年4月23日",
                     "この写しは、登録されている印影と相違ないことを証明する。", "令和8年11月21日"):
        assert expected in text, expected
    assert_no_identifiers(text)
    path = tmp_path / "seal.pdf"
    path.write_bytes(issued.pdf)
    images = run("pdfimages", "-list", path)
    assert re.search(r"\bimage\s+240\s+240\s+rgb\b", images)  # the impression, with its alpha as a soft mask
    assert re.search(r"\bsmask\s+240\s+240\s+gray\b", images)


def test_seal_certificate_needs_a_registered_seal(renderer: CertificateRenderer) -> None:
    wife = household_of_three()[1]
    with pytest.raises(CertificateContentError, match="seal registration"):
        renderer.render(CertificateType.SEAL_REGISTRATION, [wife], ISSUER, ISSUED_AT)
    head = household_of_three()[0]
    head["seal"]["status"] = "ABOLISHED"
    with pytest.raises(CertificateContentError, match="seal registration"):
        renderer.render(CertificateType.SEAL_REGISTRATION, [head], ISSUER, ISSUED_AT)


@pytest.mark.parametrize(
    ("kind", "person", "fiscal_year", "expected"),
    [
        (CertificateType.INCOME, 0, None, ["所得証明書", "令和8年度", "令和7年分", "5,234,000円"]),
        (CertificateType.INCOME, 0, 2025, ["所得証明書", "令和7年度", "令和6年分", "5,010,000円"]),
        (CertificateType.TAXATION, 0, None, ["課税証明書", "3,880,000円", "市県民税額398,000円"]),
        (CertificateType.TAXATION, 1, None, ["非課税証明書", "市県民税額非課税", "佐藤美咲"]),
        (CertificateType.TAX_PAYMENT, 0, None, ["納税証明書", "納付済額199,000円", "未納額199,000円", "一部納付"]),
    ],
)
def test_tax_certificates(renderer: CertificateRenderer, tmp_path: Path, kind: CertificateType, person: int,
                          fiscal_year: int | None, expected: list[str]) -> None:
    resident = household_of_three()[person]
    text = pdf_text(renderer.render(kind, [resident], ISSUER, ISSUED_AT, fiscal_year=fiscal_year).pdf, tmp_path)
    for item in [*expected, "上記のとおり相違ないことを証明する。", "令和8年11月21日", "横浜市長山中竹春"]:
        assert item in text, item
    assert_no_identifiers(text)


def test_missing_tax_year_names_the_available_ones(renderer: CertificateRenderer) -> None:
    with pytest.raises(CertificateContentError, match="available: 2025, 2026"):
        renderer.render(CertificateType.INCOME, [household_of_three()[0]], ISSUER, ISSUED_AT, fiscal_year=2020)


def test_deleted_records_are_refused(renderer: CertificateRenderer) -> None:
    household = household_of_three()
    household[2] = copy.deepcopy(household[2]) | {"status": "DELETED", "deletion_reason": "MOVE_OUT"}
    with pytest.raises(CertificateContentError, match="deleted"):
        renderer.render(CertificateType.RESIDENT_RECORD, household, ISSUER, ISSUED_AT)


def test_issue_date_is_the_date_in_japan(renderer: CertificateRenderer, tmp_path: Path) -> None:
    late_utc = ISSUED_AT.replace(hour=15, minute=30)  # 00:30 on the 22nd in Japan
    text = pdf_text(renderer.render(CertificateType.INCOME, [household_of_three()[0]], ISSUER, late_utc).pdf,
                    tmp_path)
    assert "令和8年11月22日" in text


def test_pdf_structure_embeds_a_font_subset_and_metadata(renderer: CertificateRenderer) -> None:
    issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_three(), ISSUER, ISSUED_AT)
    with pikepdf.open(io.BytesIO(issued.pdf)) as pdf:
        assert str(pdf.docinfo["/Title"]) == "住民票の写し"
        assert str(pdf.docinfo["/Author"]) == "横浜市"
        fonts = pdf.pages[0].Resources.Font
        type0 = fonts[next(iter(fonts.keys()))]
        assert type0.Subtype == "/Type0" and type0.Encoding == "/Identity-H"
        assert re.fullmatch(r"/[A-Z]{6}\+IPAexMincho", str(type0.BaseFont))
        descriptor = type0.DescendantFonts[0].FontDescriptor
        subset = bytes(descriptor.FontFile2.read_bytes())
        assert 1000 < len(subset) < 200_000  # a subset, not the 7.8 MB font
        assert str(pdf.Root.AcroForm.Fields[0].FT) == "/Sig"
    assert len(issued.pdf) < 120_000


def test_font_subset_is_a_valid_truetype_font(font: TrueTypeFont) -> None:
    subset = font.subset(set("住民票の写し令和元年"))
    parsed = TTFont(io.BytesIO(subset.data))
    assert parsed["maxp"].numGlyphs == len(subset.advances) == 11  # .notdef + 10 distinct characters
    original = TTFont(str(MINCHO))
    for ch in "票和":
        gid = subset.new_gid[font.glyph(ch)[0]]
        new_name = parsed.getGlyphOrder()[gid]
        old_name = original.getBestCmap()[ord(ch)]
        new_glyph, old_glyph = parsed["glyf"][new_name], original["glyf"][old_name]
        assert list(new_glyph.getCoordinates(parsed["glyf"])[0]) == list(old_glyph.getCoordinates(original["glyf"])[0])
        assert parsed["hmtx"][new_name][0] == original["hmtx"][old_name][0]
        assert subset.unicode_of[gid] == ch


def test_raster_front_matches_the_pdf_page(renderer: CertificateRenderer, tmp_path: Path) -> None:
    """The scramble is made from the raster; it must show what the PDF shows (same layout, same font)."""
    layout = renderer.layout(CertificateType.RESIDENT_RECORD, household_of_three(), ISSUER, ISSUED_AT, options=FULL)
    raster = renderer.front_rasters(layout)[0]
    assert raster.size == (827, 1169)  # A4 at 100 dpi
    path = tmp_path / "front.pdf"
    path.write_bytes(CertificateRenderer(renderer.font, None).prepare(layout, ISSUER, ISSUED_AT))  # type: ignore[arg-type]
    run("pdftoppm", "-r", "100", "-gray", "-png", "-singlefile", path, tmp_path / "poppler")
    reference = Image.open(tmp_path / "poppler.png").convert("L").resize(raster.size)

    def ink(image: Image.Image) -> np.ndarray:
        small = np.asarray(image.convert("L").resize((raster.width // 8, raster.height // 8), Image.BOX), float)
        return 255 - small

    a, b = ink(raster), ink(reference)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9
    assert 0.8 < a.sum() / b.sum() < 1.25


def test_back_sides_follow_their_fronts(renderer: CertificateRenderer, tmp_path: Path) -> None:
    layout = renderer.layout(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER, ISSUED_AT)
    fronts = renderer.front_rasters(layout)
    jpeg = io.BytesIO()
    fronts[1].rotate(180).save(jpeg, "JPEG", quality=80)
    pattern = Image.new("L", (64, 64), 235)
    backs = [BackSide(fronts[0].rotate(180), pattern), BackSide(jpeg.getvalue(), pattern)]
    prepared = renderer.prepare(layout, ISSUER, ISSUED_AT, backs)
    assert not isinstance(prepared, bytes)
    path = tmp_path / "duplex.pdf"
    path.write_bytes(prepared.data)
    assert page_count(prepared.data, tmp_path) == 4  # front 1, back 1, front 2, back 2
    assert "2枚中1枚目" in pdf_text(bytes(prepared.data), tmp_path, 1)
    assert pdf_text(bytes(prepared.data), tmp_path, 2) == ""  # a back side carries images only
    listing = run("pdfimages", "-list", path)
    assert re.search(r"^\s*4\s+\d+\s+image\s+827\s+1169\s+rgb\s+3\s+8\s+jpeg", listing, re.M)  # JPEG kept as is
    with pytest.raises(CertificateDocumentError, match="one per page"):
        renderer.prepare(layout, ISSUER, ISSUED_AT, backs[:1])


def test_scrambled_back_and_copy_evident_pattern_on_both_sides(font: TrueTypeFont, tmp_path: Path) -> None:
    from certgen.back_side import ScrambleBackSide, copy_evident_background
    from certgen.raster_render import RasterRenderer

    background = copy_evident_background(MINCHO)
    renderer = CertificateRenderer(font, None, raster=RasterRenderer(MINCHO), front_background=background,
                                   back_side=ScrambleBackSide(b"test scramble key", background))
    issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER, ISSUED_AT)
    assert page_count(issued.pdf, tmp_path) == 2 * issued.sheets == 4
    path = tmp_path / "both.pdf"
    path.write_bytes(issued.pdf)
    rows = [line.split() for line in run("pdfimages", "-list", path).splitlines()[2:]]
    stencils = [r for r in rows if r[2] == "stencil"]
    assert [r[0] for r in stencils] == ["1", "2", "3", "4"]  # the pattern under every side...
    assert len({r[10] for r in stencils}) == 1  # ...embedded once (one object) and shared
    scrambles = [r for r in rows if r[2] == "image" and r[8] == "jpeg"]
    assert [r[0] for r in scrambles] == ["2", "4"]  # a scramble image on each back
    assert "2枚中1枚目" in pdf_text(issued.pdf, tmp_path, 1)


def test_an_image_dropped_while_writing_is_never_mistaken_for_the_next_one() -> None:
    """Images are shared per document by identity; a freed image's id must not alias a new one
    (that would print one sheet's scramble image on another sheet's back)."""
    from certgen.pdf_render import PdfImage, _Writer

    writer = _Writer()
    ids = []
    for shade in range(20):  # temporaries freed as soon as they are written, as for converted backs
        ids.append(writer.image(PdfImage.from_pillow(Image.new("RGB", (8, 8), (shade, 0, 0)))))
    assert len(set(ids)) == 20
