"""Writes a laid-out certificate as PDF bytes, fast, with a reserved electronic-seal slot.

The writer emits PDF objects directly rather than through a general drawing library: a certificate
is a few text runs, rules and images, and the expensive parts of general libraries (font parsing
and subsetting per document, object graphs, generic serialisation) are what a kiosk worker cannot
afford per request. What does not change between documents is prepared once: the font is parsed
once (TrueTypeFont), images that repeat (the copy-evident background) are encoded once (PdfImage).

Each front page may be followed by its back side (the scramble image of that front over the
copy-evident pattern, docs/domain.md §3.1), so a printed sheet is front + back.

The signature dictionary is written in place with a zero-filled /Contents slot and a padded
/ByteRange: certgen.seal fills both in, so sealing needs no PDF parsing or rewriting.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError
from zlib_ng import zlib_ng

from certgen.certificate_document import Box, Color, DocumentLayout, ImageSlot, Line, Page, Text
from certgen.errors import CertificateDocumentError
from certgen.truetype_font import FontSubset, TrueTypeFont

_BYTE_RANGE_WIDTH = 40  # "[0 1234567890 1234567890 1234567890]" padded to a fixed width
# Deflate level (zlib-ng: same format as zlib, several times faster): 1 is barely faster on these small
# streams and ~10 % larger.
_COMPRESSION = 6


@dataclass(frozen=True)
class PdfImage:
    """An image XObject's encoded stream, built once and embeddable in any number of documents."""

    width: int
    height: int
    color_space: str  # /DeviceRGB or /DeviceGray
    data: bytes
    filter: str  # /FlateDecode or /DCTDecode
    smask: PdfImage | None = None  # alpha, as a soft mask
    stencil_color: Color | None = None  # a 1-bit stencil mask painted in this colour (no colour space)

    @classmethod
    def stencil(cls, mask: np.ndarray, color: Color) -> PdfImage:
        """A boolean ink mask (True = ink, e.g. the copy-evident pattern) printed in one colour."""
        if mask.ndim != 2:
            raise CertificateDocumentError(f"a stencil mask is two-dimensional, got shape {mask.shape}")
        # /ImageMask samples of 0 paint: pack the inverted mask, 8 pixels per byte, rows padded.
        packed = np.packbits(~mask.astype(bool), axis=1)
        return cls(mask.shape[1], mask.shape[0], "", zlib_ng.compress(packed.tobytes(), _COMPRESSION), "/FlateDecode",
                   stencil_color=color)

    def paint(self, name: str, width: float, height: float, x: float = 0, y: float = 0) -> str:
        """Content-stream operators drawing this image as XObject name over a rectangle."""
        fill = f"{_rgb(self.stencil_color)} rg " if self.stencil_color is not None else ""
        return f"q {fill}{_num(width)} 0 0 {_num(height)} {_num(x)} {_num(y)} cm /{name} Do Q"

    @classmethod
    def from_pillow(cls, image: Image.Image) -> PdfImage:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            alpha = rgba.getchannel("A")
            smask = cls(alpha.width, alpha.height, "/DeviceGray", zlib_ng.compress(alpha.tobytes(), _COMPRESSION),
                        "/FlateDecode")
            base = rgba.convert("RGB")
            return cls(base.width, base.height, "/DeviceRGB", zlib_ng.compress(base.tobytes(), _COMPRESSION),
                       "/FlateDecode", smask)
        converted = image if image.mode in ("RGB", "L") else image.convert("RGB")
        space = "/DeviceGray" if converted.mode == "L" else "/DeviceRGB"
        return cls(converted.width, converted.height, space,
                   zlib_ng.compress(converted.tobytes(), _COMPRESSION), "/FlateDecode")

    @classmethod
    def from_bytes(cls, data: bytes) -> PdfImage:
        """PNG/JPEG bytes. A baseline JPEG in RGB or grey is embedded as it is (no re-encoding)."""
        try:
            image = Image.open(io.BytesIO(data))
            if image.format == "JPEG" and image.mode in ("RGB", "L") and not image.info.get("progressive"):
                return cls(image.width, image.height, "/DeviceGray" if image.mode == "L" else "/DeviceRGB",
                           bytes(data), "/DCTDecode")
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise CertificateDocumentError(f"cannot read an image for the certificate: {exc}") from exc
        return cls.from_pillow(image)

    @classmethod
    def of(cls, image: PdfImage | Image.Image | bytes) -> PdfImage:
        if isinstance(image, PdfImage):
            return image
        if isinstance(image, Image.Image):
            return cls.from_pillow(image)
        return cls.from_bytes(image)


@dataclass(frozen=True)
class BackSide:
    """The back of a sheet: the scrambled front image over the copy-evident background, and the sheet's
    machine-readable id (a stencil, certgen.sheet_code) centred below it on a white patch."""

    scramble: PdfImage | Image.Image | bytes
    background: PdfImage | Image.Image | bytes | None = None
    margin: float = 28.0  # points around the scramble image
    code: PdfImage | None = None
    # The code's side (quiet zone included) and its distance from the bottom edge, in points: 64 pt
    # (22.6 mm) gives the worker's version-2 QR codes 0.78 mm modules, read from 100 dpi scans; with
    # the scramble image 6 pt above it, the scramble image keeps 99.7 % of the size it has without a code.
    code_side: float = 64.0
    code_bottom: float = 14.0


@dataclass(frozen=True)
class PdfMetadata:
    title: str
    author: str  # the issuing municipality
    subject: str = "コンビニ交付証明書"
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class PreparedPdf:
    """A complete PDF whose signature slot is still empty: certgen.seal.seal_prepared fills it."""

    data: bytearray
    contents_offset: int  # index of '<' opening the hex /Contents slot
    contents_length: int  # bytes reserved for the DER signature (hex is twice this)
    byte_range_offset: int  # index of '[' of the padded /ByteRange

    def byte_range(self) -> tuple[int, int, int, int]:
        after = self.contents_offset + 2 * self.contents_length + 2
        return 0, self.contents_offset, after, len(self.data) - after


@dataclass(frozen=True)
class SignatureSlot:
    """What the signature dictionary says about the seal; reserve = bytes kept for the CMS DER."""

    reserve: int
    signed_at: dt.datetime
    name: str = ""
    reason: str = "電子契印"
    location: str = ""


def _num(v: float) -> str:
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _rgb(color: Color) -> str:
    return " ".join(_num(c) for c in color)


def _text_string(text: str) -> str:
    """A PDF text string as UTF-16BE hex with BOM: safe for any Japanese text, no escaping."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def _pdf_date(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.UTC)
    return "(D:" + utc.strftime("%Y%m%d%H%M%S") + "Z)"


class _Writer:
    """Object numbering and the byte buffer with its cross-reference offsets."""

    def __init__(self) -> None:
        self.buf = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        self.offsets: dict[int, int] = {}
        self.next_id = 1
        # id(PdfImage) -> (the image, its object): one copy per document, shared by pages. The image is
        # kept referenced so that its id cannot be reused by another image while the document is written.
        self._images: dict[int, tuple[PdfImage, int]] = {}

    def reserve(self) -> int:
        obj_id = self.next_id
        self.next_id += 1
        return obj_id

    def obj(self, obj_id: int, body: str | bytes) -> None:
        self.offsets[obj_id] = len(self.buf)
        self.buf += b"%d 0 obj\n" % obj_id
        self.buf += body.encode("latin-1") if isinstance(body, str) else body
        self.buf += b"\nendobj\n"

    def stream(self, obj_id: int, data: bytes, extra: str = "", compress: bool = True) -> None:
        if compress:
            data = zlib_ng.compress(data, _COMPRESSION)
            extra += " /Filter /FlateDecode"
        self.obj(obj_id, f"<< /Length {len(data)}{extra} >>\nstream\n".encode("latin-1") + data + b"\nendstream")

    def image(self, image: PdfImage) -> int:
        known = self._images.get(id(image))
        if known is not None and known[0] is image:
            return known[1]
        smask_id = self.image(image.smask) if image.smask is not None else None
        obj_id = self.reserve()
        self._images[id(image)] = (image, obj_id)
        extra = f" /Type /XObject /Subtype /Image /Width {image.width} /Height {image.height} /Filter {image.filter}"
        if image.stencil_color is not None:
            extra += " /ImageMask true /BitsPerComponent 1"
        else:
            extra += f" /ColorSpace {image.color_space} /BitsPerComponent 8"
        if smask_id is not None:
            extra += f" /SMask {smask_id} 0 R"
        self.stream(obj_id, image.data, extra, compress=False)
        return obj_id


def _content(page: Page, height: float, subset: FontSubset, font: TrueTypeFont, images: dict[str, str],
             background: PdfImage | None, width: float) -> bytes:
    out: list[str] = []
    if background is not None:
        out.append(background.paint("Bg", width, height))
    color: Color | None = None
    line_width: float | None = None
    texts: list[Text] = []
    for item in page.items:
        if isinstance(item, Text):
            texts.append(item)
            continue
        if isinstance(item, ImageSlot):
            out.append(f"q {_num(item.w)} 0 0 {_num(item.h)} {_num(item.x)} {_num(height - item.y - item.h)} cm "
                       f"/{images[item.name]} Do Q")
            continue
        if item.color != color:
            out.append(f"{_rgb(item.color)} RG")
            color = item.color
        if item.width != line_width:
            out.append(f"{_num(item.width)} w")
            line_width = item.width
        if isinstance(item, Line):
            out.append(f"{_num(item.x1)} {_num(height - item.y1)} m {_num(item.x2)} {_num(height - item.y2)} l S")
        elif isinstance(item, Box):
            out.append(f"{_num(item.x)} {_num(height - item.y - item.h)} {_num(item.w)} {_num(item.h)} re S")
    if texts:
        out.append("BT")
        fill: Color | None = None
        size: float | None = None
        new_gid = subset.new_gid
        glyph = font.glyph
        for t in texts:
            if t.color != fill:
                out.append(f"{_rgb(t.color)} rg")
                fill = t.color
            if t.size != size:
                out.append(f"/F1 {_num(t.size)} Tf")
                size = t.size
            hexed = "".join(f"{new_gid[glyph(ch)[0]]:04X}" for ch in t.text)
            out.append(f"1 0 0 1 {_num(t.x)} {_num(height - t.y)} Tm <{hexed}> Tj")
        out.append("ET")
    return "\n".join(out).encode("latin-1")


def _to_unicode(subset: FontSubset) -> bytes:
    entries = sorted(subset.unicode_of.items())
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        "1 begincodespacerange <0000> <FFFF> endcodespacerange",
    ]
    for i in range(0, len(entries), 100):
        chunk = entries[i : i + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines.extend(f"<{gid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for gid, ch in chunk)
        lines.append("endbfchar")
    lines.append("endcmap CMapName currentdict /CMap defineresource pop end end")
    return "\n".join(lines).encode("latin-1")


def _font_objects(w: _Writer, font: TrueTypeFont, subset: FontSubset) -> int:
    type0, cid, descriptor, file2, tounicode = (w.reserve() for _ in range(5))
    base = f"/{subset.tag}+{font.name}"
    scale = 1000 / font.units_per_em
    bbox = " ".join(str(round(v * scale)) for v in font.bbox)
    w.obj(type0, f"<< /Type /Font /Subtype /Type0 /BaseFont {base} /Encoding /Identity-H "
                 f"/DescendantFonts [{cid} 0 R] /ToUnicode {tounicode} 0 R >>")
    widths = " ".join(str(a) for a in subset.advances)
    w.obj(cid, f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont {base} "
               f"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
               f"/FontDescriptor {descriptor} 0 R /DW 1000 /W [0 [{widths}]] /CIDToGIDMap /Identity >>")
    w.obj(descriptor, f"<< /Type /FontDescriptor /FontName {base} /Flags 6 /FontBBox [{bbox}] /ItalicAngle 0 "
                      f"/Ascent {round(font.ascent * scale)} /Descent {round(font.descent * scale)} "
                      f"/CapHeight {round(font.ascent * scale)} /StemV 80 /FontFile2 {file2} 0 R >>")
    w.stream(file2, subset.data, f" /Length1 {len(subset.data)}")
    w.stream(tounicode, _to_unicode(subset))
    return type0


def render_pdf(
    layout: DocumentLayout,
    font: TrueTypeFont,
    metadata: PdfMetadata,
    *,
    signature: SignatureSlot | None = None,
    front_background: PdfImage | Image.Image | bytes | None = None,
    back_sides: Sequence[BackSide] = (),
) -> PreparedPdf | bytes:
    """The certificate as PDF. With a signature slot, a PreparedPdf to seal; without, final bytes.

    back_sides: none, or one per front page (the sheet's back follows its front).
    """
    if back_sides and len(back_sides) != len(layout.pages):
        raise CertificateDocumentError(
            f"{len(back_sides)} back sides for {len(layout.pages)} front pages: give one per page or none"
        )
    w = _Writer()
    catalog, pages_id, info = w.reserve(), w.reserve(), w.reserve()
    subset = font.subset(layout.characters())
    font_id = _font_objects(w, font, subset)

    xobjects: dict[str, int] = {}
    image_names: dict[str, str] = {}
    for i, (name, data) in enumerate(sorted(layout.images.items())):
        image_names[name] = f"Im{i}"
        xobjects[f"Im{i}"] = w.image(PdfImage.of(data))
    background = PdfImage.of(front_background) if front_background is not None else None
    if background is not None:
        xobjects["Bg"] = w.image(background)

    page_ids: list[int] = []
    media = f"[0 0 {_num(layout.width)} {_num(layout.height)}]"
    font_res = f"/Font << /F1 {font_id} 0 R >>"
    field_id = w.reserve() if signature is not None else None
    for index, page in enumerate(layout.pages):
        content_id, page_id = w.reserve(), w.reserve()
        w.stream(content_id, _content(page, layout.height, subset, font, image_names, background, layout.width))
        xobj = " ".join(f"/{n} {i} 0 R" for n, i in xobjects.items())
        annots = f" /Annots [{field_id} 0 R]" if field_id is not None and index == 0 else ""
        w.obj(page_id, f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox {media} /Contents {content_id} 0 R "
                       f"/Resources << {font_res} /XObject << {xobj} >> >>{annots} >>")
        page_ids.append(page_id)
        if back_sides:
            page_ids.append(_back_page(w, back_sides[index], pages_id, layout.width, layout.height))

    kids = " ".join(f"{p} 0 R" for p in page_ids)
    w.obj(pages_id, f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>")
    w.obj(info, f"<< /Title {_text_string(metadata.title)} /Author {_text_string(metadata.author)} "
                f"/Subject {_text_string(metadata.subject)} /Producer (BCL certgen) "
                f"/CreationDate {_pdf_date(metadata.created)} >>")
    acroform = ""
    contents_offset = byte_range_offset = 0
    if signature is not None and field_id is not None:
        sig_id = w.reserve()
        acroform = f" /AcroForm << /Fields [{field_id} 0 R] /SigFlags 3 >>"
        w.obj(field_id, f"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Seal1) /F 132 /Rect [0 0 0 0] "
                        f"/P {page_ids[0]} 0 R /V {sig_id} 0 R >>")
        head = (f"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached "
                f"/Name {_text_string(signature.name)} /Reason {_text_string(signature.reason)} "
                f"/Location {_text_string(signature.location)} /M {_pdf_date(signature.signed_at)} /ByteRange ")
        w.offsets[sig_id] = len(w.buf)
        w.buf += b"%d 0 obj\n" % sig_id + head.encode("latin-1")
        byte_range_offset = len(w.buf)
        w.buf += b" " * _BYTE_RANGE_WIDTH + b" /Contents "
        contents_offset = len(w.buf)
        w.buf += b"<" + b"0" * (2 * signature.reserve) + b"> >>\nendobj\n"
    w.obj(catalog, f"<< /Type /Catalog /Pages {pages_id} 0 R{acroform} >>")

    xref_at = len(w.buf)
    count = w.next_id
    xref = [f"xref\n0 {count}\n0000000000 65535 f \n"]
    xref.extend(f"{w.offsets[i]:010d} 00000 n \n" for i in range(1, count))
    w.buf += "".join(xref).encode("latin-1")
    w.buf += (f"trailer\n<< /Size {count} /Root {catalog} 0 R /Info {info} 0 R >>\n"
              f"startxref\n{xref_at}\n%%EOF\n").encode("latin-1")
    if signature is None:
        return bytes(w.buf)
    prepared = PreparedPdf(w.buf, contents_offset, signature.reserve, byte_range_offset)
    a, b, c, d = prepared.byte_range()
    w.buf[byte_range_offset : byte_range_offset + _BYTE_RANGE_WIDTH] = f"[{a} {b} {c} {d}]".ljust(
        _BYTE_RANGE_WIDTH
    ).encode("latin-1")
    return prepared


def _back_page(w: _Writer, back: BackSide, pages_id: int, width: float, height: float) -> int:
    scramble = PdfImage.of(back.scramble)
    names = {"Sc": w.image(scramble)}
    ops = []
    if back.background is not None:
        background = PdfImage.of(back.background)
        names["Bg"] = w.image(background)
        ops.append(background.paint("Bg", width, height))
    # The scramble image keeps its aspect ratio inside the margins, centred (above the code, if any).
    box_w, box_h, box_y = width - 2 * back.margin, height - 2 * back.margin, back.margin
    if back.code is not None:
        code_top = back.code_bottom + back.code_side
        box_y, box_h = code_top + 6, height - back.margin - code_top - 6
        names["Id"] = w.image(back.code)
        x, side = (width - back.code_side) / 2, _num(back.code_side)
        # White under the code: the copy-evident dots would otherwise speckle its quiet zone.
        ops.append(f"q 1 1 1 rg {_num(x)} {_num(back.code_bottom)} {side} {side} re f Q")
        ops.append(back.code.paint("Id", back.code_side, back.code_side, x, back.code_bottom))
    scale = min(box_w / scramble.width, box_h / scramble.height)
    sw, sh = scramble.width * scale, scramble.height * scale
    ops.append(scramble.paint("Sc", sw, sh, (width - sw) / 2, box_y + (box_h - sh) / 2))
    content_id, page_id = w.reserve(), w.reserve()
    w.stream(content_id, "\n".join(ops).encode("latin-1"))
    xobj = " ".join(f"/{n} {i} 0 R" for n, i in names.items())
    w.obj(page_id, f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {_num(width)} {_num(height)}] "
                   f"/Contents {content_id} 0 R /Resources << /XObject << {xobj} >> >> >>")
    return page_id

