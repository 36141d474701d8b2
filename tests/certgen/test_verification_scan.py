"""The match score between a restored front and the issued one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from certgen.errors import ScrambleError
from certgen.verification_scan import MATCH_THRESHOLD, match, match_score
from tests.certgen.test_scramble import RESIDENT_A, RESIDENT_B, make_front


def test_the_issued_front_matches_itself_and_a_rescaled_copy() -> None:
    front = make_front(RESIDENT_A)
    assert match_score(front, front) == pytest.approx(1.0)
    half = np.asarray(Image.fromarray(front).resize((front.shape[1] // 2, front.shape[0] // 2), Image.BILINEAR))
    assert match_score(half, front) >= MATCH_THRESHOLD


def test_fronts_of_two_residents_do_not_match_and_the_tiles_show_where() -> None:
    result = match(make_front(RESIDENT_B), make_front(RESIDENT_A), block_px=None)
    assert not result.matches
    rows = np.nonzero(result.tile_scores.min(axis=1) < MATCH_THRESHOLD)[0]
    assert rows.size and rows.min() * 32 + 64 > 180 and rows.max() * 32 < 290  # the three field lines


def test_a_blurred_copy_still_matches() -> None:
    # Printing and scanning blur the restore; the blur is estimated and put on the issued front too, so a
    # faint smeared stroke is not taken for a difference.
    front = make_front(RESIDENT_A)
    blurred = np.asarray(Image.fromarray(front).filter(ImageFilter.GaussianBlur(3)))
    assert match_score(blurred, front, block_px=None) >= 0.9


def _ruled(front: np.ndarray) -> np.ndarray:
    """The front with a table drawn over it: 1-px rules every row and three column rules, like a 住民票."""
    image = Image.fromarray(front.copy())
    draw = ImageDraw.Draw(image)
    for y in range(170, 1060, 34):
        draw.line((60, y, 767, y), fill="black", width=1)
    for x in (200, 400, 600):
        draw.line((x, 150, x, 1060), fill="black", width=1)
    return np.asarray(image)


def test_shared_table_rules_do_not_make_two_residents_alike() -> None:
    # Every certificate of a layout has the same rules: they are left out, so only the content counts.
    a, b = _ruled(make_front(RESIDENT_A)), _ruled(make_front(RESIDENT_B))
    assert match_score(a, a, block_px=None) == pytest.approx(1.0)
    assert match_score(b, a, block_px=None) < MATCH_THRESHOLD - 0.15
    blurred = np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(1.5)))
    assert match_score(blurred, a, block_px=None) >= 0.9
    assert match_score(blurred, b, block_px=None) < MATCH_THRESHOLD - 0.15


def test_blank_against_text_does_not_match() -> None:
    blank = np.full((1169, 827, 3), 255, np.uint8)
    assert match_score(blank, make_front(RESIDENT_A)) < 0.1


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ScrambleError, match="too small"):
        match_score(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ScrambleError, match="rim_px"):
        match(make_front(RESIDENT_A), make_front(RESIDENT_A), block_px=16, rim_px=8)
