"""A small world of issued certificates for the verification tests: a PKI with the municipality's seal
certificate under <data_dir>/pki, three certificates of 横浜市 issued the same day (the whole household
of three; the wife alone, another layout; a neighbouring household of three at the same address, the
same layout with other people) rendered with the scrambled back side, each back carrying its sheet's
machine-readable id, and archived under <data_dir>/issuance exactly as the certificate worker does, and
scans of their backs (rendered from the PDF by poppler, then degraded like a scanner would)."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zxingcpp
from cryptography import x509
from PIL import Image, ImageDraw

from certgen.back_side import ScrambleBackSide, copy_evident_background
from certgen.certificate_document import ResidentCopyOptions
from certgen.certificate_pdf import CertificateRenderer
from certgen.endpoints import JpkiEndpoints
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.raster_render import RasterRenderer
from certgen.scramble_keys import scramble_key
from certgen.seal import KeyFileSealSigner
from certgen.sheet_code import read_sheet_codes
from certgen.verification import png_bytes
from domain.certificate_types import CertificateType
from sinks.issuance_archive import ArchivedCertificate, IssuanceArchive
from tests.certgen.factories import ISSUER, MINCHO, address, household_of_three, resident
from tests.certgen.pdf_fixtures import ISSUED_AT, shared_font
from tests.certgen.scan_degradation import degrade

SECRET = "verification-test-secret-7f2c9a41d3e85b60"  # strong enough for the settings (domain.secret_strength)
REPOSITORY_URL = "http://127.0.0.1:8470"  # only written into certificates; nothing is fetched


@dataclass(frozen=True)
class Issued:
    record: ArchivedCertificate
    pdf: bytes


@dataclass(frozen=True)
class IssuedWorld:
    data_dir: Path
    archive: IssuanceArchive
    seal_root: x509.Certificate
    household: Issued  # 住民票の写し of the household of three
    wife: Issued  # 住民票の写し of the wife alone: another layout (one member instead of three)
    neighbour: Issued  # 住民票の写し of another household of three at the same address: same layout

    def key_of(self, municipality_code: str) -> bytes:
        return scramble_key(SECRET, municipality_code)


def other_household() -> list[dict[str, Any]]:
    """Three people of another household in the same town: same layout, other names, dates and address."""
    home = address(town="山下町", block="27番地")
    common = {"household_number": "0005678", "household_head_name": "田中\u3000誠", "family_name": "田中",
              "family_name_kana": "タナカ", "address": home, "domicile_head": "田中\u3000誠",
              "registered_domicile": "神奈川県横浜市中区山下町27番地",
              "previous_address": "埼玉県さいたま市浦和区高砂三丁目15番1号"}
    return [
        resident(3, **common, given_name="誠", given_name_kana="マコト", birth_date=dt.date(1969, 11, 2)),
        resident(4, **common, relationship="妻", given_name="由美子", given_name_kana="ユミコ",
                 birth_date=dt.date(1972, 3, 19), sex="FEMALE"),
        resident(5, **common, relationship="子", given_name="翔太", given_name_kana="ショウタ",
                 birth_date=dt.date(2004, 7, 8), became_resident_on=dt.date(2004, 7, 8)),
    ]


def neighbour_household() -> list[dict[str, Any]]:
    """Three people at the same address as household_of_three (a flat in the same building): the same
    layout and address, other names and dates. The hardest impostor: only the people's fields differ."""
    common = {"household_number": "0001240", "household_head_name": "鈴木\u3000大輔", "family_name": "鈴木",
              "family_name_kana": "スズキ", "domicile_head": "鈴木\u3000大輔"}
    return [
        resident(3, **common, given_name="大輔", given_name_kana="ダイスケ", birth_date=dt.date(1983, 9, 27)),
        resident(4, **common, relationship="妻", given_name="恵", given_name_kana="メグミ",
                 birth_date=dt.date(1985, 12, 5), sex="FEMALE"),
        resident(5, **common, relationship="子", given_name="蓮", given_name_kana="レン",
                 birth_date=dt.date(2016, 2, 14), became_resident_on=dt.date(2016, 2, 14)),
    ]


def build_issued_world(data_dir: Path, key_pool: KeyPool) -> IssuedWorld:
    keys = itertools.cycle(key_pool.load())
    pki = PkiDirectory(data_dir / "pki", JpkiEndpoints(REPOSITORY_URL))
    pki.initialise(datetime.now(UTC), key_factory=lambda: next(keys))
    credentials, _ = pki.ensure_seal_certificate(ISSUER.municipality_code, ISSUER.municipality_name,
                                                 datetime.now(UTC), key_factory=lambda: next(keys))
    signer = KeyFileSealSigner(credentials.key, credentials.certificate, list(credentials.chain))
    background = copy_evident_background(MINCHO)
    renderer = CertificateRenderer(shared_font(), signer, raster=RasterRenderer(MINCHO), front_background=background,
                                   back_side=ScrambleBackSide(scramble_key(SECRET, ISSUER.municipality_code),
                                                              background))
    archive = IssuanceArchive(data_dir / "issuance")
    members = household_of_three()
    wife_only = ResidentCopyOptions(member_codes=frozenset({members[1]["resident_code"]}))

    def issue(certificate_id: str, people: list[dict[str, Any]], options: ResidentCopyOptions | None) -> Issued:
        # What the certificate worker does: render and seal, then archive the PDF and the fronts.
        issued = renderer.render(CertificateType.RESIDENT_RECORD, people, ISSUER, ISSUED_AT, options=options,
                                 certificate_id=certificate_id)
        layout = renderer.layout(CertificateType.RESIDENT_RECORD, people, ISSUER, ISSUED_AT, options=options)
        fronts = [png_bytes(front) for front in renderer.front_rasters(layout)]
        record = archive.put(certificate_id, f"request-{certificate_id}", ISSUER.municipality_code, ISSUED_AT,
                             issued.pdf, fronts)
        return Issued(record, issued.pdf)

    return IssuedWorld(data_dir, archive, pki.seal_root().certificate,
                       issue("cert-household", members, None), issue("cert-wife", members, wife_only),
                       issue("cert-neighbour", neighbour_household(), None))


def back_page(pdf: bytes, directory: Path, dpi: int = 100) -> np.ndarray:
    """The back of the first sheet (page 2) as poppler prints it, RGB."""
    path = directory / "certificate.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "2", "-l", "2", "-png", "-singlefile", str(path),
                    str(directory / "back")], check=True, capture_output=True)
    return np.asarray(Image.open(directory / "back.png").convert("RGB"))


def degraded_scan_png(pdf: bytes, directory: Path, angle: float = 1.5, scale: float = 1.03, seed: int = 0) -> bytes:
    """A scan of the printed back: blur, JPEG quality 60, rotation, scale change and noise (saved as PNG
    so that the upload carries exactly that degradation)."""
    scan = degrade(back_page(pdf, directory), angle=angle, scale=scale, seed=seed)
    out = io.BytesIO()
    scan.save(out, "PNG")
    return out.getvalue()


def hide_sheet_code(scan: Image.Image) -> Image.Image:
    """The scan with the code at the bottom of the back painted over (smudged, cut off, or a sheet
    printed before backs carried codes): found where zxing-cpp finds it, so the test cannot miss it."""
    codes = zxingcpp.read_barcodes(scan.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    assert codes, "the scan has no code to hide"
    hidden = scan.copy()
    draw = ImageDraw.Draw(hidden)
    for code in codes:
        corners = [code.position.top_left, code.position.top_right, code.position.bottom_right,
                   code.position.bottom_left]
        xs, ys = [p.x for p in corners], [p.y for p in corners]
        pad = (max(xs) - min(xs)) // 4
        draw.rectangle((min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad), fill="white")
    assert not read_sheet_codes(hidden)
    return hidden
