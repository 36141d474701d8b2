"""Issues a certificate PDF: layout, front raster, back side, PDF, electronic seal.

A CertificateRenderer holds everything that does not change between certificates (the parsed
font, the raster font faces, the encoded background pattern, the loaded seal key) and is built
once per worker process; render() then costs only the per-document work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from certgen.back_side import with_sheet_codes
from certgen.certificate_document import (
    DocumentLayout,
    Issuer,
    Resident,
    ResidentCopyOptions,
    layout_certificate,
)
from certgen.errors import CertificateDocumentError
from certgen.pdf_render import BackSide, PdfImage, PdfMetadata, PreparedPdf, SignatureSlot, render_pdf
from certgen.raster_render import RasterRenderer
from certgen.seal import BaseSealSigner, seal_prepared
from certgen.truetype_font import TrueTypeFont
from domain.certificate_types import CertificateType
from domain.disaster_certificate import DisasterCertificate
from domain.japan_time import japan_date

# Makes the back of one sheet from the raster of its front (the scramble image and the pattern).
BackSideMaker = Callable[[Image.Image], BackSide]


@dataclass(frozen=True)
class IssuedCertificate:
    pdf: bytes
    title: str
    sheets: int  # printed A4 sheets (front pages)


class CertificateRenderer:
    """Renders and seals certificates; build one per process and reuse it."""

    def __init__(
        self,
        font: TrueTypeFont,
        signer: BaseSealSigner | None,
        *,
        raster: RasterRenderer | None = None,
        front_background: PdfImage | Image.Image | bytes | None = None,
        back_side: BackSideMaker | None = None,
    ) -> None:
        if back_side is not None and raster is None:
            raise CertificateDocumentError("a back side is made from the front raster: give a RasterRenderer too")
        self.font = font
        self.signer = signer
        self.raster = raster
        # Encoded once: the same pattern goes under every certificate's front.
        self.front_background = PdfImage.of(front_background) if front_background is not None else None
        self.back_side = back_side

    def layout(
        self,
        kind: CertificateType,
        residents: Sequence[Resident],
        issuer: Issuer,
        issued_at: dt.datetime,
        *,
        options: ResidentCopyOptions | None = None,
        fiscal_year: int | None = None,
        disaster: DisasterCertificate | None = None,
    ) -> DocumentLayout:
        """What goes on each page; the issue date is the Japan-time date of issued_at."""
        if issued_at.tzinfo is None:
            raise CertificateDocumentError("issued_at must be timezone-aware (times are stored in UTC)")
        issued_on = japan_date(issued_at)
        return layout_certificate(kind, residents, issuer, issued_on, self.font, options=options,
                                  fiscal_year=fiscal_year, disaster=disaster)

    def front_rasters(self, layout: DocumentLayout) -> list[Image.Image]:
        """The front pages as images, for the scramble image on the back."""
        if self.raster is None:
            raise CertificateDocumentError("this renderer has no RasterRenderer")
        return self.raster.render_all(layout)

    def prepare(self, layout: DocumentLayout, issuer: Issuer, issued_at: dt.datetime,
                back_sides: Sequence[BackSide] = ()) -> PreparedPdf | bytes:
        """The PDF with an empty seal slot (or final, unsealed bytes when there is no signer)."""
        metadata = PdfMetadata(title=layout.title, author=issuer.municipality_name, created=issued_at)
        slot = None
        if self.signer is not None:
            slot = SignatureSlot(self.signer.signature_reserve, issued_at, name=self.signer.signer_name,
                                 location=issuer.municipality_name)
        return render_pdf(layout, self.font, metadata, signature=slot, front_background=self.front_background,
                          back_sides=back_sides)

    def render(
        self,
        kind: CertificateType,
        residents: Sequence[Resident],
        issuer: Issuer,
        issued_at: dt.datetime,
        *,
        options: ResidentCopyOptions | None = None,
        fiscal_year: int | None = None,
        certificate_id: str | None = None,
        disaster: DisasterCertificate | None = None,
    ) -> IssuedCertificate:
        """The sealed certificate PDF, with back sides when this renderer has a BackSideMaker (each
        carrying its sheet's machine-readable id when the certificate id is given)."""
        layout = self.layout(kind, residents, issuer, issued_at, options=options, fiscal_year=fiscal_year,
                             disaster=disaster)
        backs: list[BackSide] = []
        if self.back_side is not None:
            backs = [self.back_side(front) for front in self.front_rasters(layout)]
            if certificate_id is not None:
                backs = with_sheet_codes(backs, [certificate_id])
        prepared = self.prepare(layout, issuer, issued_at, backs)
        pdf = seal_prepared(prepared, self.signer) if isinstance(prepared, PreparedPdf) and self.signer else prepared
        if not isinstance(pdf, bytes):
            raise CertificateDocumentError("a prepared PDF needs a signer to seal it")
        return IssuedCertificate(pdf, layout.title, len(layout.pages))
