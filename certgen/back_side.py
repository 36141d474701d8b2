"""The back of a printed certificate sheet and the copy-evident background of both sides
(docs/domain.md §3.1): joins the scramble codec (certgen.scramble) and the copy-evident pattern
(certgen.copy_evident) to the PDF writer.

Everything that does not change between certificates is made once here: the page-sized
copy-evident stencil (one compressed 1-bit image, shared by every page of a document) and the
scramble key. Per sheet: scramble the front raster and JPEG-encode it (the decoder is built to read
JPEG-compressed scans, and JPEG bytes go into the PDF without re-encoding). Per copy: the sheet's
machine-readable id (certgen.sheet_code), which the verifier reads to find the archived sheet directly.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image

from certgen.certificate_document import PAGE_HEIGHT, PAGE_WIDTH, Color
from certgen.copy_evident import MIN_DPI, copy_evident_pattern
from certgen.pdf_render import BackSide, PdfImage
from certgen.scramble import ScrambleParams, scramble_image
from certgen.sheet_code import sheet_code_modules

PATTERN_COLOR: Color = (0.80, 0.84, 0.90)  # light grey-blue: reads as plain paper, survives a copier as dots
CODE_COLOR: Color = (0.0, 0.0, 0.0)


def copy_evident_background(font_path: Path, dpi: int = MIN_DPI, color: Color = PATTERN_COLOR) -> PdfImage:
    """The copy-evident pattern of a whole A4 page as a PDF stencil image; build once, reuse everywhere."""
    width_px, height_px = round(PAGE_WIDTH / 72 * dpi), round(PAGE_HEIGHT / 72 * dpi)
    return PdfImage.stencil(copy_evident_pattern(width_px, height_px, dpi, font_path), color)


class ScrambleBackSide:
    """A BackSideMaker: the scrambled front as a JPEG over the copy-evident background."""

    def __init__(self, key: bytes, background: PdfImage | None, params: ScrambleParams | None = None,
                 jpeg_quality: int = 85) -> None:
        self.key = key
        self.background = background
        self.params = params or ScrambleParams()
        self.jpeg_quality = jpeg_quality

    def __call__(self, front: Image.Image) -> BackSide:
        scrambled = scramble_image(front, self.key, self.params)
        out = io.BytesIO()
        scrambled.save(out, "JPEG", quality=self.jpeg_quality)
        return BackSide(out.getvalue(), self.background)


def with_sheet_codes(backs: Sequence[BackSide], certificate_ids: Sequence[str]) -> list[BackSide]:
    """The backs of every copy, in print order (copy 1's sheets, then copy 2's, ...), each carrying the
    code of its own certificate and sheet; the scramble and background image objects stay shared."""
    return [replace(back, code=PdfImage.stencil(sheet_code_modules(certificate_id, sheet), CODE_COLOR))
            for certificate_id in certificate_ids for sheet, back in enumerate(backs)]
