"""The machine-readable id on the back of each sheet (certgen.sheet_code): its text, and the code as the
certificate worker prints it (a UUID id, version 3) read back from degraded scans of the printed back."""

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
Printed = tuple[list[np.ndarray], str, list[Image.Image]]  # backs as printed, certificate id, fronts


def test_the_text_names_certificate_and_sheet() -> None:
    certificate_id = str(uuid.uuid4())
    assert sheet_code_text(certificate_id, 0) == f"{certificate_id}/1"
    assert parse_sheet_code(f"{certificate_id}/2") == SheetRef(certificate_id, 1)
    for other in ("https://example.invalid/verify", "cert/0", "cert/1/2", "../x/1", "cert-1"):
        assert parse_sheet_code(other) is None, other  # another QR code on the paper is no sheet code
    with pytest.raises(ValueError, match="no sheet code"):
        sheet_code_text("a/b", 0)
    assert sheet_code_modules(certificate_id, 0).shape == (33, 33)  # version 3 and a 2-module quiet zone


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Printed:
    """The backs of a two-sheet certificate with a worker's UUID id, printed by poppler at 100 dpi."""
    background = copy_evident_background(MINCHO)
    raster = RasterRenderer(MINCHO)
    renderer = CertificateRenderer(shared_font(), None, raster=raster, front_background=background,
                                   back_side=ScrambleBackSide(KEY, background))
    certificate_id = str(uuid.uuid4())
    issued = renderer.render(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER, ISSUED_AT,
                             certificate_id=certificate_id)
    assert issued.sheets == 2
    directory = tmp_path_factory.mktemp("sheet-code")
    (directory / "c.pdf").write_bytes(issued.pdf)
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(directory / "c.pdf"), str(directory / "page")], check=True)
    backs = [np.asarray(Image.open(directory / f"page-{n}.png").convert("RGB")) for n in (2, 4)]
    fronts = renderer.front_rasters(renderer.layout(CertificateType.RESIDENT_RECORD, household_of_seven(), ISSUER,
                                                    ISSUED_AT))
    return backs, certificate_id, fronts


@pytest.mark.parametrize(("angle", "scale", "seed"), SCANNER_POSES)
def test_the_code_reads_back_from_degraded_scans_of_each_sheet(printed: Printed,
                                                                angle: float, scale: float, seed: int) -> None:
    backs, certificate_id, fronts = printed
    for sheet, back in enumerate(backs):
        scan = degrade(back, angle=angle, scale=scale, seed=seed)
        assert read_sheet_codes(scan) == [SheetRef(certificate_id, sheet)]
        # The code's finder patterns do not confuse the scramble image's own corner markers.
        restored = descramble(scan, KEY, (fronts[sheet].height, fronts[sheet].width))
        assert restored.shape[:2] == (fronts[sheet].height, fronts[sheet].width)
