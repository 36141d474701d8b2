"""The front raster: cached text masks draw exactly what Pillow's draw.text draws."""

from __future__ import annotations

import datetime as dt

import numpy as np
from PIL import ImageDraw, ImageFont

from certgen.certificate_pdf import CertificateRenderer
from certgen.raster_render import RasterRenderer
from domain.certificate_types import CertificateType
from tests.certgen.factories import ISSUER, MINCHO, household_of_seven, household_of_three
from tests.certgen.pdf_fixtures import shared_font

ISSUED_AT = dt.datetime(2026, 11, 21, 1, 30, tzinfo=dt.UTC)


class PillowText(RasterRenderer):
    """The renderer as it was before the mask cache: every text item through draw.text."""

    def _text(self, draw: ImageDraw.ImageDraw, x: float, y: float, text: str, face: ImageFont.FreeTypeFont,
              color: tuple[int, int, int]) -> None:
        draw.text((x, y), text, font=face, fill=color, anchor="ls")


def test_cached_text_draws_the_same_pixels_as_pillow() -> None:
    layouts = CertificateRenderer(shared_font(), None)
    raster, reference = RasterRenderer(MINCHO), PillowText(MINCHO)
    for kind, residents in ((CertificateType.RESIDENT_RECORD, household_of_three()),
                            (CertificateType.RESIDENT_RECORD, household_of_seven()),
                            (CertificateType.SEAL_REGISTRATION, household_of_three()[:1])):
        layout = layouts.layout(kind, residents, ISSUER, ISSUED_AT)
        for _ in range(2):  # the second time every mask comes from the cache
            for page in range(len(layout.pages)):
                expected = np.asarray(reference.render(layout, page))
                assert np.array_equal(np.asarray(raster.render(layout, page)), expected)
