"""The machine-readable id on the back of each sheet (certgen.sheet_code): its text, and the code as the
certificate worker prints it (UUID ids) read back from degraded scans of the printed back, for many ids."""

from __future__ import annotations

import subprocess
import uuid

import numpy as np
import pytest
from PIL import Image

from certgen.back_side import ScrambleBackSide, copy_evident_background
from certgen.certificate_pdf import CertificateRenderer
from certgen.raster_render import RasterRenderer
from certgen.scramble import descramble
from certgen.sheet_code import SheetRef, parse_sheet_code, read_sheet_codes, sheet_code_modules, sheet_code_text
from domain.certificate_types import CertificateType
from tests.certgen.factories import ISSUER, MINCHO, household_of_seven
from tests.certgen.pdf_fixtures import ISSUED_AT, shared_font
from tests.certgen.scan_degradation import degrade
from tests.certgen.test_verification import SCANNER_POSES

KEY = b"sheet code test scramble key"
CERTIFICATES = 6  # each with its own id: how well a code reads depends on its modules
Printed = tuple[list[tuple[str, int, np.ndarray]], list[Image.Image]]  # (id, sheet, back as printed), fronts


def test_the_text_names_certificate_and_sheet() -> None:
    assert sheet_code_text("cert-household", 0) == "cert-household/1"
    assert parse_sheet_code("cert-household/2") == SheetRef("cert-household", 1)
    # A worker's id, a UUID, is written as numerals: QR version 2 instead of 3, bigger modules.
    certificate_id = str(uuid.uuid4())
    text = sheet_code_text(certificate_id, 1)
    assert text == f"{uuid.UUID(certificate_id).int:039d}02" and parse_sheet_code(text) == SheetRef(certificate_id, 1)
    assert sheet_code_modules(certificate_id, 0).shape == (29, 29)  # version 2 and a 2-module quiet zone
    assert sheet_code_text(certificate_id.upper(), 0) == f"{certificate_id.upper()}/1"  # not how the worker writes
    others = ("https://example.invalid/verify", "cert/0", "cert/1/2", "../x/1", "cert-1", "9" * 41, "1" * 39 + "00")
    for other in others:
        assert parse_sheet_code(other) is None, other  # another QR code on the paper is no sheet code
    for bad_id, sheet in (("a/b", 0), ("cert", 99)):
        with pytest.raises(ValueError, match="no sheet code"):
            sheet_code_text(bad_id, sheet)


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Printed:
    """The backs of two-sheet certificates with worker-style UUID ids, printed by poppler at 100 dpi."""
    background = copy_evident_background(MINCHO)
    renderer = CertificateRenderer(shared_font(), None, raster=RasterRenderer(MINCHO), front_background=background,
                                   back_side=ScrambleBackSide(KEY, background))
    directory = tmp_path_factory.mktemp("sheet-code")
    backs = []
    for n in range(CERTIFICATES):
        certificate_id = str(uuid.uuid4())
        issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER, ISSUED_AT,
                                 certificate_id=certificate_id)
        assert issued.sheets == 2
        (directory / f"c{n}.pdf").write_bytes(issued.pdf)
        subprocess.run(["pdftoppm", "-r", "100", "-png", str(directory / f"c{n}.pdf"), str(directory / f"c{n}")],
                       check=True)
        backs += [(certificate_id, sheet, np.asarray(Image.open(directory / f"c{n}-{page}.png").convert("RGB")))
                  for sheet, page in ((0, 2), (1, 4))]
    fronts = renderer.front_rasters(renderer.layout(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER,
                                                    ISSUED_AT))
    return backs, fronts


@pytest.mark.parametrize(("angle", "scale", "seed"), SCANNER_POSES)
def test_the_code_reads_back_from_degraded_scans_of_each_sheet(printed: Printed, angle: float, scale: float,
                                                                seed: int) -> None:
    backs, fronts = printed
    for certificate_id, sheet, back in backs:
        scan = degrade(back, angle=angle, scale=scale, seed=seed)
        assert read_sheet_codes(scan) == [SheetRef(certificate_id, sheet)]
    # The code's finder patterns do not confuse the scramble image's own corner markers.
    for _, sheet, back in backs[:2]:
        front = fronts[sheet]
        restored = descramble(degrade(back, angle=angle, scale=scale, seed=seed), KEY, (front.height, front.width))
        assert restored.shape[:2] == (front.height, front.width)
