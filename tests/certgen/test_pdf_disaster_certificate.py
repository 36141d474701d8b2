"""罹災証明書 and 被災証明書: their PDFs read back with the poppler tools, the raster the kiosk prints, the
security features of every certificate, and the verification of the printed sheet after a re-survey."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from certgen.back_side import ScrambleBackSide, copy_evident_background
from certgen.certificate_document import LAID_OUT_TYPES
from certgen.certificate_pdf import CertificateRenderer
from certgen.endpoints import JpkiEndpoints
from certgen.errors import CertificateContentError
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.raster_png import raster_png
from certgen.raster_render import RasterRenderer
from certgen.scramble_keys import scramble_key
from certgen.seal import KeyFileSealSigner
from certgen.verification import load_scan, verify_pdf, verify_scan
from domain.certificate_types import DISASTER_CERTIFICATES, CertificateType
from domain.damage_levels import DamageLevel, FloodDepth
from domain.disaster_certificate import AffectedCertificate, DamageCertificate, DisasterCause
from sinks.issuance_archive import IssuanceArchive
from tests.certgen.factories import INDIVIDUAL_NUMBERS, ISSUER, MINCHO, RESIDENT_CODES, resident
from tests.certgen.issued_world import REPOSITORY_URL, SECRET, degraded_scan_png
from tests.certgen.pdf_fixtures import ISSUED_AT, page_count, pdf_text, run, shared_font

CAUSE = DisasterCause("令和8年紀伊半島沖地震", dt.date(2026, 11, 1), "地震")


def damage(level: DamageLevel = DamageLevel.HANKAI, **overrides: object) -> DamageCertificate:
    values: dict[str, object] = {
        "number": "R-141003-0F1E2D3C-5E6F7A8B9C0D", "household_head_name": "佐藤\u3000健一",
        "household_address": "神奈川県横浜市中区日本大通1番地", "dwelling_address": "神奈川県横浜市中区日本大通1番地",
        "cause": CAUSE, "level": level, "flood_depth": FloodDepth.ABOVE_FLOOR, "remarks": "津波による浸水",
        **overrides}
    return DamageCertificate(**values)  # type: ignore[arg-type]


AFFECTED = AffectedCertificate("H-141003-0F1E2D3C-0A1B2C3D4E5F", CAUSE, ("自動車（浸水）", "家財（冷蔵庫）"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> PkiDirectory:
    keys = itertools.cycle(key_pool.load())
    pki = PkiDirectory(tmp_path_factory.mktemp("disaster-pki"), JpkiEndpoints(REPOSITORY_URL))
    pki.initialise(dt.datetime.now(dt.UTC), key_factory=lambda: next(keys))
    pki.ensure_seal_certificate(ISSUER.municipality_code, ISSUER.municipality_name, dt.datetime.now(dt.UTC),
                                key_factory=lambda: next(keys))
    return pki


@pytest.fixture(scope="module")
def sealed(pki: PkiDirectory) -> CertificateRenderer:
    """A renderer as the certificate worker builds it: the seal, the copy-evident pattern, the scramble back."""
    credentials = pki.seal_credentials(ISSUER.municipality_code)
    background = copy_evident_background(MINCHO)
    return CertificateRenderer(shared_font(), KeyFileSealSigner(credentials.key, credentials.certificate,
                                                                list(credentials.chain)),
                               raster=RasterRenderer(MINCHO), front_background=background,
                               back_side=ScrambleBackSide(scramble_key(SECRET, ISSUER.municipality_code), background))


def test_both_disaster_certificates_have_a_layout() -> None:
    assert DISASTER_CERTIFICATES <= LAID_OUT_TYPES


def test_a_damage_certificate_states_every_item(sealed: CertificateRenderer, tmp_path: Path) -> None:
    issued = sealed.render(CertificateType.DISASTER_DAMAGE, [resident()], ISSUER, ISSUED_AT, disaster=damage(),
                           certificate_id="cert-1")
    text = pdf_text(issued.pdf, tmp_path)
    flat = text.replace(" ", "").replace("\n", "")
    for expected in ("罹災証明書", "1枚中1枚目", "第R-141003-0F1E2D3C-5E6F7A8B9C0D号", "世帯主氏名佐藤健一",
                     "世帯の住所神奈川県横浜市中区日本大通1番地", "被災住家の所在地神奈川県横浜市中区日本大通1番地",
                     "罹災原因令和8年11月1日発生令和8年紀伊半島沖地震（地震）", "被害の程度半壊", "浸水の程度床上浸水",
                     "備考津波による浸水", "上記のとおり、住家に被害を受けたことを証明する。", "令和8年11月21日",
                     "横浜市長山中竹春", "以下余白"):
        assert expected in flat, expected
    for secret in (*INDIVIDUAL_NUMBERS, *RESIDENT_CODES):
        assert secret not in flat
    assert issued.sheets == 1 and page_count(issued.pdf, tmp_path) == 2  # the front and its scrambled back
    with pikepdf.open(io.BytesIO(issued.pdf)) as pdf:
        assert "/Sig" in str(pdf.Root.AcroForm.Fields[0].FT)  # the electronic seal (電子契印)
    path = tmp_path / "damage.pdf"
    path.write_bytes(issued.pdf)
    rows = [line.split() for line in run("pdfimages", "-list", path).splitlines()[2:]]
    assert sorted({r[0] for r in rows if r[2] == "stencil"}) == ["1", "2"]  # the copy-evident pattern on both sides
    assert [r[0] for r in rows if r[2] == "image" and r[8] == "jpeg"] == ["2"]  # the scramble image on the back
    # The official seal's 「横浜市長之印」, in red, on the front.
    assert all(ch in flat for ch in "之印")


def test_without_flood_depth_or_remarks_the_items_say_so(sealed: CertificateRenderer, tmp_path: Path) -> None:
    issued = sealed.render(CertificateType.DISASTER_DAMAGE, [resident()], ISSUER, ISSUED_AT,
                           disaster=damage(DamageLevel.ICHIBU_SONKAI, flood_depth=None, remarks=""))
    flat = pdf_text(issued.pdf, tmp_path).replace(" ", "").replace("\n", "")
    assert "被害の程度準半壊に至らない（一部損壊）" in flat
    assert "浸水の程度―" in flat and "備考―" in flat and "床上" not in flat


def test_an_affected_certificate_states_what_was_reported(sealed: CertificateRenderer, tmp_path: Path) -> None:
    issued = sealed.render(CertificateType.DISASTER_AFFECTED, [resident()], ISSUER, ISSUED_AT, disaster=AFFECTED)
    flat = pdf_text(issued.pdf, tmp_path).replace(" ", "").replace("\n", "")
    for expected in ("被災証明書", "第H-141003-0F1E2D3C-0A1B2C3D4E5F号", "届出者氏名佐藤健一",
                     "届出者の住所神奈川県横浜市中区日本大通1番地",
                     "災害令和8年11月1日発生令和8年紀伊半島沖地震（地震）",
                     "届出の内容自動車（浸水）、家財（冷蔵庫）", "上記のとおり、被害の届出があったことを証明する。",
                     "令和8年11月21日", "横浜市長山中竹春"):
        assert expected in flat, expected


def test_a_disaster_certificate_needs_its_own_facts(sealed: CertificateRenderer) -> None:
    with pytest.raises(CertificateContentError, match="disaster facts"):
        sealed.layout(CertificateType.DISASTER_DAMAGE, [resident()], ISSUER, ISSUED_AT)
    with pytest.raises(CertificateContentError, match="facts of its own kind"):
        sealed.layout(CertificateType.DISASTER_DAMAGE, [resident()], ISSUER, ISSUED_AT, disaster=AFFECTED)
    with pytest.raises(CertificateContentError, match="nothing was"):
        sealed.layout(CertificateType.DISASTER_AFFECTED, [resident()], ISSUER, ISSUED_AT,
                      disaster=AffectedCertificate(AFFECTED.number, CAUSE, ()))
    with pytest.raises(CertificateContentError, match="deleted"):
        sealed.layout(CertificateType.DISASTER_AFFECTED, [resident(status="DELETED")], ISSUER, ISSUED_AT,
                      disaster=AFFECTED)


def _ink(image: Image.Image) -> np.ndarray:
    """Ink per 8×8 block: what a page shows, insensitive to anti-aliasing."""
    small = np.asarray(image.convert("L").resize((image.width // 8, image.height // 8), Image.BOX), float)
    return 255 - small


def test_the_printed_raster_matches_the_pdf_front(sealed: CertificateRenderer, tmp_path: Path) -> None:
    """The raster the back's scramble and the archive are made from (PNG, as archived) shows what the PDF
    front shows: the one layout model drawn twice."""
    for kind, facts in ((CertificateType.DISASTER_DAMAGE, damage()), (CertificateType.DISASTER_AFFECTED, AFFECTED)):
        layout = sealed.layout(kind, [resident()], ISSUER, ISSUED_AT, disaster=facts)
        [front] = sealed.front_rasters(layout)
        raster = Image.open(io.BytesIO(raster_png(front)))
        assert raster.size == (827, 1169)  # A4 at 100 dpi
        path = tmp_path / "front.pdf"
        path.write_bytes(CertificateRenderer(sealed.font, None).prepare(layout, ISSUER, ISSUED_AT))  # type: ignore[arg-type]
        run("pdftoppm", "-r", "100", "-gray", "-png", "-singlefile", path, tmp_path / "poppler")
        reference = Image.open(tmp_path / "poppler.png").convert("L").resize(raster.size)

        a, b = _ink(raster), _ink(reference)
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9, kind
        assert 0.8 < a.sum() / b.sum() < 1.25, kind


def test_a_sheet_issued_before_a_re_survey_verifies_as_what_it_was(sealed: CertificateRenderer, pki: PkiDirectory,
                                                                   tmp_path: Path) -> None:
    """半壊 issued, then the dwelling re-surveyed as 全壊 and a new certificate issued: the first sheet's scan
    still restores and matches its own archived front (半壊), its PDF still verifies, and the two differ."""
    archive = IssuanceArchive(tmp_path / "issuance")
    issued: dict[str, bytes] = {}
    for certificate_id, level in (("before", DamageLevel.HANKAI), ("after", DamageLevel.ZENKAI)):
        facts = damage(level, number=f"R-141003-0F1E2D3C-{certificate_id.upper():0>12}")
        pdf = sealed.render(CertificateType.DISASTER_DAMAGE, [resident()], ISSUER, ISSUED_AT, disaster=facts,
                            certificate_id=certificate_id).pdf
        layout = sealed.layout(CertificateType.DISASTER_DAMAGE, [resident()], ISSUER, ISSUED_AT, disaster=facts)
        archive.put(certificate_id, f"request-{certificate_id}", ISSUER.municipality_code, ISSUED_AT, pdf,
                    [raster_png(front) for front in sealed.front_rasters(layout)])
        issued[certificate_id] = pdf
    assert "被害の程度半壊" in pdf_text(issued["before"], tmp_path).replace(" ", "").replace("\n", "")
    scan = load_scan(degraded_scan_png(issued["before"], tmp_path))
    result = verify_scan(scan, archive, lambda code: scramble_key(SECRET, code))
    assert result.matches and result.certificate_id == "before", result.reasons
    check = verify_pdf(issued["before"], [pki.seal_root().certificate], archive)
    assert check.valid, check
    # The other sheet's front (全壊) is not what the first scan restores.
    against_after = verify_scan(scan, archive, lambda code: scramble_key(SECRET, code), certificate_id="after")
    assert not against_after.matches
