"""How well a front restored from a scan of the scramble image matches the issued certificate.

Two certificates of the same kind share almost everything (title, labels, lines, the mayor's seal)
and differ only in a name, a date or an address, so a global correlation would call them equal.
The score is therefore local: both pages are turned into "ink" (darkness relative to the paper
white), smoothed (σ 1.5 px at 100 dpi, which removes scanner noise and JPEG ringing but keeps
characters apart), faint ink below 5 % dropped, and compared in overlapping 16 mm tiles by a
regularised correlation (the contrast-structure term of SSIM: blank against blank counts as equal).
Only block interiors count: the rim (3 px) of every scramble block is where the scan's blur mixed in
the unrelated neighbouring block, the seams of a restore. The score is the WORST tile: an altered
field spoils its tiles however much of the page is genuine.

Calibration (tests/certgen/test_scramble.py, synthetic A4 fronts at 100 dpi, three scans degraded
by blur, JPEG 60, ±1.5° rotation, ±3 % scale and noise): the issued front scores 0.85-0.88;
another resident's certificate of the same layout (name, birth date and address differ) 0.26-0.29;
a scan decoded with the wrong key about -0.34. MATCH_THRESHOLD = 0.55 sits in the middle, ~0.3
from both. Not caught: one character altered in an otherwise identical line (two kanji of the same
size look alike once smoothed); that is what showing the restore beside the paper is for.

Pure: NumPy and SciPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from certgen.errors import ScrambleError

MATCH_THRESHOLD = 0.55

# Tiles of 64 px (16 mm at 100 dpi), every 32 px.
_TILE = 64
_STRIDE = 32
# Regularisation of the tile correlation: tiles with (almost) no ink in both images count as equal
# instead of as random. Ink below _FLOOR (after smoothing) is ignored.
_C = 0.0005


@dataclass(frozen=True)
class MatchResult:
    score: float  # worst tile, -1..1
    tile_scores: np.ndarray  # (rows, cols) grid of tile scores, for showing where it differs
    matches: bool


def _normalised_grey(image: np.ndarray | Image.Image) -> np.ndarray:
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.ndim == 3:
        array = array[:, :, 0] * 0.299 + array[:, :, 1] * 0.587 + array[:, :, 2] * 0.114
    if array.ndim != 2:
        raise ScrambleError(f"expected an image array, got shape {array.shape}")
    grey = array.astype(np.float64)
    # Paper white from the page itself (most of a certificate is paper), so scanner exposure cancels.
    # Ink is not stretched to full black: a blurred restore would have its faint texture amplified.
    white = max(float(np.percentile(grey, 90.0)), 1.0)
    return np.clip((white - grey) / white, -0.5, 1.0)  # paper = 0, black ink = 1


_FLOOR = 0.05
_SIGMA = 1.5


def _block_interiors(shape: tuple[int, int], block_px: int | None, rim_px: int) -> np.ndarray:
    """1 inside each block of the restore, 0 on its rim, where the scan's blur and JPEG mixed in the
    unrelated block that sat next to it in the scramble image (the seams of a restore)."""
    if block_px is None:
        return np.ones(shape)
    if not 0 <= 2 * rim_px < block_px:
        raise ScrambleError(f"rim_px must leave part of a {block_px} px block, got {rim_px}")
    rows = (np.arange(shape[0]) % block_px >= rim_px) & (np.arange(shape[0]) % block_px < block_px - rim_px)
    cols = (np.arange(shape[1]) % block_px >= rim_px) & (np.arange(shape[1]) % block_px < block_px - rim_px)
    return (rows[:, None] & cols[None, :]).astype(np.float64)


def match(
    restored: np.ndarray | Image.Image,
    issued: np.ndarray | Image.Image,
    block_px: int | None = 16,
    rim_px: int = 3,
) -> MatchResult:
    """Compare a restored front with the issued front raster (same page; the restore is resized to
    the issued raster if needed). block_px is the scramble's block size (its rims are left out of
    the comparison) or None to compare every pixel."""
    ref = _normalised_grey(issued)
    got = _normalised_grey(restored)
    if got.shape != ref.shape:
        resized = Image.fromarray(got.astype(np.float32), mode="F").resize((ref.shape[1], ref.shape[0]), Image.BILINEAR)
        got = np.asarray(resized, dtype=np.float64)
    if min(ref.shape) < _TILE:
        raise ScrambleError(f"the front image is too small to compare ({ref.shape[1]}x{ref.shape[0]} px)")
    w = _block_interiors(ref.shape, block_px, rim_px)
    # Normalised convolution: smooth using block interiors only, so rims do not leak back in.
    norm = np.maximum(ndimage.gaussian_filter(w, _SIGMA), 1e-6)

    def ink(a: np.ndarray) -> np.ndarray:
        # Faint texture (block-to-block shifts from JPEG, print noise) is not ink.
        return np.clip(ndimage.gaussian_filter(w * a, _SIGMA) / norm - _FLOOR, 0, None)

    x, y = ink(ref), ink(got)
    weight = np.maximum(ndimage.uniform_filter(w, size=_TILE, mode="nearest"), 1e-6)

    def local_mean(a: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(w * a, size=_TILE, mode="nearest") / weight

    mx, my = local_mean(x), local_mean(y)
    vx = local_mean(x * x) - mx * mx
    vy = local_mean(y * y) - my * my
    cxy = local_mean(x * y) - mx * my
    s = (2 * cxy + _C) / (vx + vy + _C)
    half = _TILE // 2
    rows = np.arange(half, x.shape[0] - half + 1, _STRIDE)
    cols = np.arange(half, x.shape[1] - half + 1, _STRIDE)
    tiles = s[np.ix_(rows, cols)]
    score = float(tiles.min())
    return MatchResult(score=score, tile_scores=tiles, matches=score >= MATCH_THRESHOLD)


def match_score(
    restored: np.ndarray | Image.Image, issued: np.ndarray | Image.Image, block_px: int | None = 16
) -> float:
    """The worst-tile similarity (≥ MATCH_THRESHOLD: the scan shows the issued certificate)."""
    return match(restored, issued, block_px).score
