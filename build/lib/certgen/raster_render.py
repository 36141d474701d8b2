"""The front page of a certificate as a raster image, drawn from the same layout as the PDF.

The back-side scramble image (certgen.scramble) is made from this raster. Drawing the layout
directly with FreeType (Pillow's ImageFont, the same TrueType font as the PDF) takes a few
milliseconds, where rasterising the finished PDF would take tens.
"""

from __future__ import annotations

import io
import math
from collections import OrderedDict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from certgen.certificate_document import Box, Color, DocumentLayout, ImageSlot, Line, Text
from certgen.errors import FontError

DEFAULT_DPI = 100  # what the scramble codec's block size is tuned for (16 px blocks = 4 mm)
# Rendered text masks kept per renderer: labels, headings, the certifying sentence and the issuer
# repeat on every certificate; FreeType rendering is the biggest part of drawing a page.
TEXT_MASK_CACHE = 4096


def _rgb(color: Color) -> tuple[int, int, int]:
    return (round(color[0] * 255), round(color[1] * 255), round(color[2] * 255))


class RasterRenderer:
    """Draws layout pages at a fixed resolution; font faces are loaded once per size and reused."""

    def __init__(self, font_path: Path, dpi: int = DEFAULT_DPI) -> None:
        self.font_path = font_path
        self.dpi = dpi
        self.scale = dpi / 72
        self._faces: dict[int, ImageFont.FreeTypeFont] = {}
        self._masks: OrderedDict[tuple[object, ...], tuple[object, tuple[int, int]]] = OrderedDict()
        self._face(10)  # fail early on a missing font

    def _face(self, size_pt: float) -> ImageFont.FreeTypeFont:
        key = round(size_pt * self.scale * 4)  # quarter-pixel steps: shrunk-to-fit sizes share faces
        face = self._faces.get(key)
        if face is None:
            try:
                face = ImageFont.truetype(str(self.font_path), key / 4)
            except OSError as exc:
                raise FontError(f"cannot load the font {self.font_path}: {exc}") from exc
            self._faces[key] = face
        return face

    def page_size(self, layout: DocumentLayout) -> tuple[int, int]:
        return round(layout.width * self.scale), round(layout.height * self.scale)

    def render(self, layout: DocumentLayout, page_index: int) -> Image.Image:
        """One front page as an RGB image (white paper, black text, red seals)."""
        s = self.scale
        image = Image.new("RGB", self.page_size(layout), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        for item in layout.pages[page_index].items:
            if isinstance(item, Text):
                self._text(draw, item.x * s, item.y * s, item.text, self._face(item.size), _rgb(item.color))
            elif isinstance(item, Line):
                draw.line((item.x1 * s, item.y1 * s, item.x2 * s, item.y2 * s), fill=_rgb(item.color),
                          width=max(1, round(item.width * s)))
            elif isinstance(item, Box):
                draw.rectangle((item.x * s, item.y * s, (item.x + item.w) * s, (item.y + item.h) * s),
                               outline=_rgb(item.color), width=max(1, round(item.width * s)))
            elif isinstance(item, ImageSlot):
                picture = Image.open(io.BytesIO(layout.images[item.name])).convert("RGBA")
                size = (max(1, round(item.w * s)), max(1, round(item.h * s)))
                picture = picture.resize(size, Image.Resampling.BILINEAR)
                image.paste(picture, (round(item.x * s), round(item.y * s)), picture)
        return image

    def _text(self, draw: ImageDraw.ImageDraw, x: float, y: float, text: str, face: ImageFont.FreeTypeFont,
              color: tuple[int, int, int]) -> None:
        """What draw.text(..., anchor="ls") does for one line, with the glyph mask cached by text, face,
        sub-pixel start and ink (the same mask is drawn at the same place: pixel-identical output)."""
        if "\n" in text or draw.fontmode != "L":
            draw.text((x, y), text, font=face, fill=color, anchor="ls")
            return
        ink = draw.draw.draw_ink(color)
        start = (math.modf(x)[0], math.modf(y)[0])
        key = (text, id(face), start, ink)
        cached = self._masks.get(key)
        if cached is None:
            mask, offset = face.getmask2(text, "L", None, None, None, 0, "ls", ink, start, stroke_filled=True)
            cached = (mask, offset)
            self._masks[key] = cached
            if len(self._masks) > TEXT_MASK_CACHE:
                self._masks.popitem(last=False)
        else:
            self._masks.move_to_end(key)
        mask, offset = cached
        draw.draw.draw_bitmap((int(x) + offset[0], int(y) + offset[1]), mask, ink)

    def render_all(self, layout: DocumentLayout) -> list[Image.Image]:
        return [self.render(layout, i) for i in range(len(layout.pages))]
