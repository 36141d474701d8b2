"""The match score between a restored front and the issued one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

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


def test_blank_against_text_does_not_match() -> None:
    blank = np.full((1169, 827, 3), 255, np.uint8)
    assert match_score(blank, make_front(RESIDENT_A)) < 0.1


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ScrambleError, match="too small"):
        match_score(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ScrambleError, match="rim_px"):
        match(make_front(RESIDENT_A), make_front(RESIDENT_A), block_px=16, rim_px=8)
