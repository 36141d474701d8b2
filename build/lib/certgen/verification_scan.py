"""How well a front restored from a scan of the scramble image matches the issued certificate.

Two certificates of the same kind share almost everything (title, labels, table rules, the mayor's
seal) and differ only in names, dates or an address, so a global correlation would call them equal.
The score is therefore local: both pages are turned into "ink" (darkness relative to the paper
white) and compared in overlapping 16 mm tiles by a regularised correlation (the contrast-structure
term of SSIM: blank against blank counts as equal). The score is the WORST tile: a field that
differs spoils its tiles however much of the page is the same.

What makes it hold on real certificates (CertificateRenderer fronts, the back printed from the sealed
PDF and scanned):
  - the restore's blur is put on the issued front first (estimated per comparison, 0-3 px): the
    print-and-scan chain blurs a 1-px stroke into a faint smear, which against the sharp original
    would count as a difference;
  - only block interiors count: the rim (3 px) of every scramble block is where the scan's blur mixed
    in the unrelated neighbouring block, the seams of a restore;
  - table rules and frames (long straight lines of the issued front) are left out: every certificate
    of a layout has them, so they only lift impostors and, restored faintly, sink genuine scans;
  - both pages are smoothed (σ 2 px at 100 dpi, removing scanner noise and JPEG ringing) and faint
    ink below 5 % is dropped.

Calibration: see MATCH_THRESHOLD. Not caught: one field altered in an otherwise identical certificate
(two kanji of the same size look alike once smoothed); that is what showing the restore beside the
paper is for.

Pure: NumPy and SciPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from certgen.errors import ScrambleError

# The one threshold of scan verification (certgen.verification uses it too). Measured with
# bench/scan_match.py on real certificates (CertificateRenderer fronts, the back printed from the sealed
# PDF by poppler at 100 dpi, then blur, JPEG 60, 0.5-1.5° rotation, 1-3 % scale change either way and
# noise; 12 scans): the issued front scores 0.72-0.82; another household's 住民票 of the same layout and
# day 0.05-0.09 (also at the same address, only names and dates differing); another layout 0.05; a
# wrong key -0.22. Printed at 200 dpi the issued front scores 0.95-0.97. On the synthetic fronts of
# tests/certgen/test_scramble.py (large text, no table): issued 0.95-0.98, another resident 0.30-0.32,
# wrong key -0.36. 0.5 leaves >= 0.2 to the genuine scans and >= 0.18 to every impostor measured.
MATCH_THRESHOLD = 0.5

# Tiles of 64 px (16 mm at 100 dpi), every 32 px (half a tile: _tile_sums relies on it).
_STRIDE = 32
_TILE = 2 * _STRIDE
# Regularisation of the tile correlation: tiles with (almost) no ink in both images count as equal
# instead of as random. Ink below _FLOOR (after smoothing) is ignored.
_C = 0.0005
_FLOOR = 0.05
# Smoothing of both pages (px at 100 dpi) after the restore's own blur has been put on the issued front.
_SIGMA = 2.0
# Candidate blurs (Gaussian σ, px) the print-and-scan chain may have put on the restore.
_RESTORE_BLURS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
# A table rule: a run of dark pixels at least _RULE_PX long (10 mm; the longest stroke of a 22 pt title
# character is ~7 mm), left out of the comparison together with _RULE_PAD_PX either side.
_RULE_PX = 41
_RULE_INK = 0.5
_RULE_PAD_PX = 2


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
    grey = array.astype(np.float32)  # float32 halves the filtering time; ink is never finer than 1e-3
    # Paper white from the page itself (most of a certificate is paper), so scanner exposure cancels.
    # Ink is not stretched to full black: a blurred restore would have its faint texture amplified.
    white = max(float(np.percentile(grey, 90.0)), 1.0)
    return np.clip((white - grey) / np.float32(white), -0.5, 1.0)  # paper = 0, black ink = 1


def _block_interiors(shape: tuple[int, int], block_px: int | None, rim_px: int) -> np.ndarray:
    """1 inside each block of the restore, 0 on its rim, where the scan's blur and JPEG mixed in the
    unrelated block that sat next to it in the scramble image (the seams of a restore)."""
    if block_px is None:
        return np.ones(shape, np.float32)
    if not 0 <= 2 * rim_px < block_px:
        raise ScrambleError(f"rim_px must leave part of a {block_px} px block, got {rim_px}")
    rows = (np.arange(shape[0]) % block_px >= rim_px) & (np.arange(shape[0]) % block_px < block_px - rim_px)
    cols = (np.arange(shape[1]) % block_px >= rim_px) & (np.arange(shape[1]) % block_px < block_px - rim_px)
    return (rows[:, None] & cols[None, :]).astype(np.float32)


def _rules(ink: np.ndarray) -> np.ndarray:
    """Where the issued front has long straight lines (table rules, frames), with a margin.

    Every certificate of a layout shares them, so they say nothing about whose certificate a scan is,
    and a 1-px rule restores faint and smeared: compared, rules only add noise to genuine scores and
    similarity to impostors. A morphological opening with a line finds them (a minimum then a maximum
    filter along the line, separable and fast)."""
    dark = ink > _RULE_INK
    lines = np.zeros_like(dark)
    for size in ((1, _RULE_PX), (_RULE_PX, 1)):
        lines |= ndimage.maximum_filter(ndimage.minimum_filter(dark, size=size), size=size)
    pad = 2 * _RULE_PAD_PX + 1
    return ndimage.maximum_filter(lines, size=(pad, pad))


def _half(a: np.ndarray) -> np.ndarray:
    """2x2 box average (half resolution); an odd last row or column is dropped."""
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    return a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _restore_blur(ref: np.ndarray, got: np.ndarray, inside: np.ndarray) -> float:
    """The Gaussian blur that, put on the issued front, makes it look most like the restore.

    Printing and scanning (at a low resolution above all) blur the restore; against the sharp issued
    front a faint smeared stroke would count as a difference, and a stroke that lies on a block rim of
    the issued front (left out there) would still show in the restore's block interior, where the blur
    spilled it. Judged by the correlation over block interiors, at half resolution (cheap)."""
    sample = _half(inside.astype(np.float32)) == 1
    target = ndimage.gaussian_filter(_half(got), 0.5)[sample]
    small = _half(ref)
    best, best_sigma = -np.inf, 0.0
    for sigma in _RESTORE_BLURS:
        candidate = ndimage.gaussian_filter(small, np.hypot(sigma / 2, 0.5))[sample]
        if candidate.std() == 0 or target.std() == 0:
            return 0.0
        r = float(np.corrcoef(candidate, target)[0, 1])
        if r > best:
            best, best_sigma = r, sigma
    return best_sigma


def _tile_sums(a: np.ndarray) -> np.ndarray:
    """Sum of a over every _TILE x _TILE tile, tiles every _STRIDE px (= _TILE / 2) from the top left:
    sums of _STRIDE-px cells, then of each 2 x 2 group of cells (a tile is always 2 x 2 cells)."""
    n, m = a.shape[0] // _STRIDE, a.shape[1] // _STRIDE
    cells = a[: n * _STRIDE, : m * _STRIDE].reshape(n, _STRIDE, m, _STRIDE).sum(axis=(1, 3), dtype=np.float64)
    return cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]


def match(
    restored: np.ndarray | Image.Image,
    issued: np.ndarray | Image.Image,
    block_px: int | None = 16,
    rim_px: int = 3,
) -> MatchResult:
    """Compare a restored front with the issued front raster (same page; the restore is resized to
    the issued raster if needed). block_px is the scramble's block size (its rims are left out of
    the comparison) or None to compare every pixel."""
    sharp = _normalised_grey(issued)
    got = _normalised_grey(restored)
    if got.shape != sharp.shape:
        resized = Image.fromarray(got.astype(np.float32), mode="F").resize((sharp.shape[1], sharp.shape[0]),
                                                                           Image.BILINEAR)
        got = np.asarray(resized, dtype=np.float32)
    if min(sharp.shape) < _TILE:
        raise ScrambleError(f"the front image is too small to compare ({sharp.shape[1]}x{sharp.shape[0]} px)")
    interiors = _block_interiors(sharp.shape, block_px, rim_px)
    blur = _restore_blur(sharp, got, interiors > 0)
    ref = ndimage.gaussian_filter(sharp, blur) if blur else sharp
    w = interiors * ~_rules(sharp)
    # Normalised convolution: smooth using block interiors only, so rims do not leak back in.
    norm = np.maximum(ndimage.gaussian_filter(w, _SIGMA), 1e-6)

    def ink(a: np.ndarray) -> np.ndarray:
        # Faint texture (block-to-block shifts from JPEG, print noise) is not ink.
        return np.clip(ndimage.gaussian_filter(w * a, _SIGMA) / norm - _FLOOR, 0, None)

    x, y = ink(ref), ink(got)
    weight = np.maximum(_tile_sums(w), 1e-6)

    def tile_mean(a: np.ndarray) -> np.ndarray:
        return _tile_sums(w * a) / weight

    mx, my = tile_mean(x), tile_mean(y)
    vx = tile_mean(x * x) - mx * mx
    vy = tile_mean(y * y) - my * my
    cxy = tile_mean(x * y) - mx * my
    tiles = (2 * cxy + _C) / (vx + vy + _C)
    score = float(tiles.min())
    return MatchResult(score=score, tile_scores=tiles, matches=score >= MATCH_THRESHOLD)


def match_score(
    restored: np.ndarray | Image.Image, issued: np.ndarray | Image.Image, block_px: int | None = 16
) -> float:
    """The worst-tile similarity (≥ MATCH_THRESHOLD: the scan shows the issued certificate)."""
    return match(restored, issued, block_px).score
