"""Seal impressions (印影) for the synthetic seal registrations: the family name written top to
bottom inside a red circle, in the Mincho font, as a small palette PNG.

Images depend only on the family name, so they are cached: a register of a million residents
draws each of its few hundred family names once.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from streams.register.errors import RegisterError

SIZE = 64
RING_WIDTH = 3
INK = (200, 30, 40)
# Eight shades from paper to ink keep the anti-aliased edges while the PNG stays small.
LEVELS = 8


class SealImages:
    """Draws and caches seal impressions; `font_path` is a TrueType/OpenType Japanese font."""

    def __init__(self, font_path: Path) -> None:
        self._font_path = Path(font_path)
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._cache: dict[str, bytes] = {}
        self._palette = _palette()

    def _font(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._fonts:
            try:
                self._fonts[size] = ImageFont.truetype(str(self._font_path), size)
            except OSError as exc:
                raise RegisterError(
                    f"cannot load the seal font {self._font_path}: {exc} (install fonts-ipaexfont "
                    "or set BCL_MINCHO_FONT)"
                ) from exc
        return self._fonts[size]

    def png(self, family_name: str) -> bytes:
        cached = self._cache.get(family_name)
        if cached is None:
            cached = self._cache[family_name] = self._draw(family_name)
        return cached

    def _draw(self, family_name: str) -> bytes:
        # Ink coverage as a greyscale mask (255 = full ink), drawn then mapped to the red palette.
        mask = Image.new("L", (SIZE, SIZE), 0)
        draw = ImageDraw.Draw(mask)
        draw.ellipse((1, 1, SIZE - 2, SIZE - 2), outline=255, width=RING_WIDTH)
        chars = list(family_name) or ["印"]
        inner = SIZE - 2 * (RING_WIDTH + 5)
        # One column for up to three characters, two columns (right to left) for longer names.
        columns = [chars] if len(chars) <= 3 else [chars[: (len(chars) + 1) // 2], chars[(len(chars) + 1) // 2 :]]
        rows = max(len(c) for c in columns)
        glyph = min(inner // rows, inner // len(columns) + 4)
        font = self._font(glyph)
        column_width = inner / len(columns)
        for ci, column in enumerate(columns):
            x_center = SIZE / 2 + (len(columns) / 2 - ci - 0.5) * column_width
            top = (SIZE - glyph * len(column)) / 2
            for ri, ch in enumerate(column):
                draw.text((x_center, top + glyph * (ri + 0.5)), ch, fill=255, font=font, anchor="mm")
        quantised = mask.point([(v * (LEVELS - 1) + 127) // 255 for v in range(256)])
        image = Image.frombytes("P", quantised.size, quantised.tobytes())
        image.putpalette(self._palette)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True, bits=3)
        return out.getvalue()


def _palette() -> list[int]:
    palette: list[int] = []
    for level in range(LEVELS):
        t = level / (LEVELS - 1)
        palette.extend(round(255 + (c - 255) * t) for c in INK)
    return palette
