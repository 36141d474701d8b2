"""The copy-evident pattern: invisible tone difference on the original, the word 「複写」 on a copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from certgen.copy_evident import (
    CopyEvidentError,
    copy_evident_pattern,
    copy_evident_tile,
    word_mask,
    word_region,
)
from streams.settings import load_settings

FONT = load_settings().mincho_font
DPI = 600
# A quarter of an A4 page at 600 dpi (105 x 148 mm): several whole words and their stagger.
WIDTH, HEIGHT = 2480, 3508


@pytest.fixture(scope="module")
def page() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pattern = copy_evident_pattern(WIDTH, HEIGHT, DPI, FONT)
    region = word_region(WIDTH, HEIGHT, DPI, FONT)
    # Compare well inside the glyphs with well outside them (a coarse pitch away from every edge).
    inside = ndimage.binary_erosion(region, iterations=9)
    outside = ~ndimage.binary_dilation(region, iterations=9)
    return pattern, inside, outside


def photocopy(pattern: np.ndarray, copier_dpi: int = 150, background_cut: float = 0.3) -> np.ndarray:
    """A copier: its sensor integrates the page over copier-dpi pixels, then background suppression
    drops anything lighter than background_cut darkness. True = toner on the copy."""
    f = DPI // copier_dpi
    h, w = pattern.shape[0] // f * f, pattern.shape[1] // f * f
    sensed = pattern[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return sensed > background_cut


def test_word_and_background_have_the_same_tone_on_the_original(page: tuple) -> None:
    pattern, inside, outside = page
    word_tone, background_tone = pattern[inside].mean(), pattern[outside].mean()
    assert 0.08 < background_tone < 0.15  # a light tint, not a dark page
    assert abs(word_tone - background_tone) / background_tone < 0.03
    # Also at a coarse look (a person a metre away): 2 mm patches inside vs outside the words.
    tone = ndimage.uniform_filter(pattern.astype(np.float64), size=48)
    assert abs(np.median(tone[inside]) - np.median(tone[outside])) < 0.01


@pytest.mark.parametrize("copier_dpi", [100, 150])
def test_the_word_appears_on_a_photocopy(page: tuple, copier_dpi: int) -> None:
    pattern, inside, outside = page
    copy = photocopy(pattern, copier_dpi, background_cut=0.2 if copier_dpi == 100 else 0.3)
    f = DPI // copier_dpi
    inside_c = inside[: copy.shape[0] * f : f, : copy.shape[1] * f : f]
    outside_c = outside[: copy.shape[0] * f : f, : copy.shape[1] * f : f]
    word_toner, background_toner = copy[inside_c].mean(), copy[outside_c].mean()
    assert background_toner < 0.01  # the fine screen vanishes
    assert word_toner > 0.1  # the coarse screen survives as dots: the word shows
    assert word_toner > 20 * max(background_toner, 1e-4)


def test_the_word_is_rendered_from_the_font() -> None:
    mask = word_mask(FONT, DPI)
    height, width = mask.shape
    assert width > 1.6 * height  # two characters side by side
    # The two glyphs are separate shapes with holes (複 and 写 are not blobs).
    coverage = mask.mean()
    assert 0.25 < coverage < 0.75


def test_the_page_is_the_tile_repeated_seamlessly() -> None:
    tile = copy_evident_tile(FONT, DPI)
    pattern = copy_evident_pattern(tile.shape[1] * 2 + 5, tile.shape[0] + 7, DPI, FONT)
    assert np.array_equal(pattern[: tile.shape[0], : tile.shape[1]], tile)
    assert np.array_equal(pattern[: tile.shape[0], tile.shape[1] : 2 * tile.shape[1]], tile)
    # The tile's sides are whole coarse pitches, so the background screen continues across the seam.
    assert tile.shape[0] % 9 == 0 and tile.shape[1] % 9 == 0


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CopyEvidentError, match="600 dpi"):
        copy_evident_pattern(100, 100, 300, FONT)
    with pytest.raises(CopyEvidentError, match="cannot read the font"):
        copy_evident_pattern(100, 100, DPI, tmp_path / "missing.ttf")
    with pytest.raises(CopyEvidentError, match="empty"):
        copy_evident_pattern(0, 100, DPI, FONT)
