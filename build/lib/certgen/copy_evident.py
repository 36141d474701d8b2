"""The copy-evident background (けん制文字, docs/domain.md §3.1 item 2), printed on both sides.

Two dot screens of the same average tone: the background is fine 1-pixel dots on a 3-pixel pitch
(at 600 dpi: 42 µm dots every 0.13 mm, below what a copier resolves), the word 「複写」 is the same
screen scaled up three times (3 x 3-pixel dots on a 9-pixel pitch). Every aligned 9 x 9 cell holds
exactly 9 ink pixels in either screen, so on the original the word is invisible. A copier's
optics blur the fine dots into a uniform light grey that its background suppression drops, while
the coarse dots survive as dots: the word appears on the copy.

Pure: the pattern is computed from the word's glyphs, rendered once from the font file whose path
the caller passes (Settings.mincho_font or IPAex Gothic) and cached. Output is a boolean ink mask
(True = dot) at print resolution; the caller prints it in a light colour of its choice.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from certgen.errors import CertificateDocumentError

WORD = "複写"
MIN_DPI = 600  # below this a one-pixel dot is coarse enough for a copier to reproduce
_FINE_MM = 0.127  # fine screen pitch (3 px at 600 dpi)
_WORD_HEIGHT_MM = 14.0
_STROKE_MM = 1.8  # glyph strokes are thickened to hold at least a few coarse dots across


class CopyEvidentError(CertificateDocumentError):
    """The copy-evident pattern cannot be made with the values given."""


def _fine_pitch(dpi: int) -> int:
    if dpi < MIN_DPI:
        raise CopyEvidentError(f"the copy-evident pattern needs at least {MIN_DPI} dpi, got {dpi}")
    return max(3, round(_FINE_MM * dpi / 25.4))


def _px(mm: float, dpi: int) -> int:
    return round(mm * dpi / 25.4)


@lru_cache(maxsize=8)
def word_mask(font_path: Path, dpi: int, word: str = WORD) -> np.ndarray:
    """The word's glyphs as a boolean mask at print resolution, strokes thickened to _STROKE_MM."""
    height = _px(_WORD_HEIGHT_MM, dpi)
    try:
        font = ImageFont.truetype(str(font_path), height)
    except OSError as exc:
        raise CopyEvidentError(f"cannot read the font {font_path} for the copy-evident word: {exc}") from exc
    left, top, right, bottom = font.getbbox(word)
    pad = _px(_STROKE_MM, dpi)
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(image).text((pad - left, pad - top), word, font=font, fill=255)
    mask = np.asarray(image) > 127
    if not mask.any():
        raise CopyEvidentError(f"the font {font_path} has no glyphs for {word!r}")
    # Dilate by the difference between the wanted and the font's own stroke width (~8 % of the em).
    radius = max(0, round((_STROKE_MM - 0.08 * _WORD_HEIGHT_MM) * dpi / 25.4 / 2))
    if radius:
        disk = np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius
        mask = ndimage.binary_dilation(mask, structure=disk)
    mask.setflags(write=False)
    return mask


def screens(height: int, width: int, dpi: int) -> tuple[np.ndarray, np.ndarray]:
    """The fine (background) and coarse (word) dot screens, anchored at the page's top-left corner."""
    f = _fine_pitch(dpi)
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    fine = (y % f == 0) & (x % f == 0)
    coarse = (y % (3 * f) < 3) & (x % (3 * f) < 3)
    return fine, coarse


@lru_cache(maxsize=4)
def _word_layout(font_path: Path, dpi: int, word: str) -> np.ndarray:
    """Where the words sit in one repeat: two rows, the second shifted by half a repeat. The sides
    are whole multiples of the coarse pitch, so repeats placed edge to edge continue both screens."""
    mask = word_mask(font_path, dpi, word)
    cell = 3 * _fine_pitch(dpi)
    gap = _px(10.0, dpi)

    def whole(n: int) -> int:
        return -(-n // cell) * cell

    row_w = whole(mask.shape[1] + gap)
    row_h = whole(mask.shape[0] + gap // 2)
    row = np.zeros((row_h, row_w), bool)
    row[: mask.shape[0], : mask.shape[1]] = mask
    # The shifted row is rolled, so its word wraps across the repeat's edge.
    layout = np.concatenate([row, np.roll(row, whole(row_w // 2) % row_w, axis=1)])
    layout.setflags(write=False)
    return layout


def _page(repeat: np.ndarray, width_px: int, height_px: int) -> np.ndarray:
    if width_px < 1 or height_px < 1:
        raise CopyEvidentError(f"the page is empty ({width_px}x{height_px} px)")
    reps = (-(-height_px // repeat.shape[0]), -(-width_px // repeat.shape[1]))
    return np.tile(repeat, reps)[:height_px, :width_px]


@lru_cache(maxsize=4)
def copy_evident_tile(font_path: Path, dpi: int = MIN_DPI, word: str = WORD) -> np.ndarray:
    """One repeat of the pattern (True = ink), for a renderer that tiles it (e.g. a PDF pattern)."""
    words = _word_layout(font_path, dpi, word)
    fine, coarse = screens(*words.shape, dpi)
    tile = np.where(words, coarse, fine)
    tile.setflags(write=False)
    return tile


def copy_evident_pattern(width_px: int, height_px: int, dpi: int, font_path: Path, word: str = WORD) -> np.ndarray:
    """The pattern for a whole page (True = ink), shape (height_px, width_px), at dpi (≥ 600)."""
    return _page(copy_evident_tile(font_path, dpi, word), width_px, height_px)


def word_region(width_px: int, height_px: int, dpi: int, font_path: Path, word: str = WORD) -> np.ndarray:
    """Where the word's coarse screen lies on the page (True = inside a glyph), for checks and previews."""
    return _page(_word_layout(font_path, dpi, word), width_px, height_px)
