"""The scramble image printed on the back of a kiosk certificate (docs/domain.md §3.1 item 3).

The front page raster is cut into square blocks; a generator keyed with the municipality's secret
permutes the blocks and transforms each one (one of the 8 rotations/mirrorings of the square, and
inversion of any subset of the R, G, B channels, which turns the black-on-white front into a
colour mosaic). Around the block grid sit grid markers: three QR-style finder patterns at the
top-left, top-right and bottom-left corners (their nesting is what the decoder looks for, at any
scale and rotation; the missing fourth corner gives the orientation) and a timing track along all
four sides (one dark cell per two blocks) from which the decoder fits a homography with a
hundred-odd points, so a scan or photo that is rotated, scaled, blurred, JPEG-compressed or noisy
is straightened back onto the nominal grid before the permutation is undone.

Pure: NumPy, SciPy (connected components) and Pillow only; no file I/O. Pixel centres sit at
integer coordinates (x = column, y = row) throughout.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage

from certgen.errors import ScrambleDecodeError, ScrambleError

# Bumping this changes every permutation: certificates already printed must stay decodable, so never
# change it for an existing deployment (it is part of the key derivation, like a format version).
_DERIVATION_LABEL = b"bcl/scramble/v1"

# Layout, in modules (one module = half a block). The data grid is inset by _BORDER modules on
# every side: module 0 is a quiet zone, modules 1-7 hold the finder patterns in three corners, the
# timing tracks run along module 7 (flush with the finders' inner edges) and modules 8-9 are the
# white gap that keeps dark data blocks from touching the markers.
_BORDER = 10
_FINDER_FROM, _FINDER_TO = 1, 8
_TRACK = 7


@dataclass(frozen=True)
class ScrambleParams:
    """How the scramble image is laid out. The encoder and decoder must use the same values."""

    # Side of a block, in pixels of the front raster (even: markers are drawn in half-blocks).
    # 16 px at 100 dpi = 4 mm: big enough that blur, JPEG and a pixel or two of misregistration
    # only touch a block's rim, small enough that a block holds no more than part of a character.
    block_px: int = 16

    def __post_init__(self) -> None:
        if self.block_px < 8 or self.block_px % 2:
            raise ScrambleError(f"block_px must be an even number of at least 8, got {self.block_px}")

    @property
    def module_px(self) -> int:
        return self.block_px // 2


@dataclass(frozen=True)
class GridLayout:
    """Where everything sits in the scramble image for a front of a given size."""

    rows: int  # blocks
    cols: int
    block: int  # px
    module: int  # px

    @classmethod
    def for_front(cls, height: int, width: int, params: ScrambleParams) -> GridLayout:
        if height < 1 or width < 1:
            raise ScrambleError(f"the front image is empty ({height}x{width} px)")
        b = params.block_px
        return cls(rows=-(-height // b), cols=-(-width // b), block=b, module=params.module_px)

    @property
    def origin(self) -> int:
        """Offset of the data grid from the image's top-left corner, in px (same on both axes)."""
        return _BORDER * self.module

    @property
    def height(self) -> int:
        return self.rows * self.block + 2 * self.origin

    @property
    def width(self) -> int:
        return self.cols * self.block + 2 * self.origin

    @property
    def blocks(self) -> int:
        return self.rows * self.cols

    def finder_centres(self) -> np.ndarray:
        """Nominal (x, y) centres of the top-left, top-right and bottom-left finder patterns."""
        m = self.module
        near = (_FINDER_FROM + _FINDER_TO) * m / 2 - 0.5
        return np.array([[near, near], [self.width - 1 - near, near], [near, self.height - 1 - near]])

    def track_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Nominal (x, y) centres of the dark timing cells, and whether each runs horizontally."""
        m, b, o = self.module, self.block, self.origin
        along_x = o + np.arange(0, self.cols, 2) * b + b / 2 - 0.5
        along_y = o + np.arange(0, self.rows, 2) * b + b / 2 - 0.5
        top = _TRACK * m + m / 2 - 0.5
        bottom = self.height - 1 - top
        right = self.width - 1 - top
        centres = np.concatenate(
            [
                np.stack([along_x, np.full_like(along_x, top)], axis=1),
                np.stack([along_x, np.full_like(along_x, bottom)], axis=1),
                np.stack([np.full_like(along_y, top), along_y], axis=1),
                np.stack([np.full_like(along_y, right), along_y], axis=1),
            ]
        )
        horizontal = np.concatenate([np.ones(2 * len(along_x), bool), np.zeros(2 * len(along_y), bool)])
        return centres, horizontal


@dataclass(frozen=True)
class _KeyedPlan:
    """What the key decides for one grid: where each front block goes and how it is transformed."""

    # gather[Y, X] = flat index into the padded front raster of the pixel shown at data (Y, X).
    gather: np.ndarray
    # invert[r, c] = 0 or 255 per channel for the block shown at grid position (r, c) (XOR mask).
    invert: np.ndarray
    # Per front block: destination grid position and dihedral transform.
    destination: np.ndarray
    dihedral: np.ndarray
    # Per front block: the XOR mask of its channels.
    front_invert: np.ndarray


def _dihedral_tables(b: int) -> np.ndarray:
    """tables[d][q] = flat index (within a b x b block) of the source pixel shown at position q after
    transform d: d % 4 quarter turns anticlockwise, then a left-right mirror if d >= 4."""
    idx = np.arange(b * b).reshape(b, b)
    tables = []
    for d in range(8):
        t = np.rot90(idx, d % 4)
        if d >= 4:
            t = t[:, ::-1]
        tables.append(t.ravel())
    return np.stack(tables)


@lru_cache(maxsize=16)
def _plan(key: bytes, layout: GridLayout) -> _KeyedPlan:
    n, b, rows, cols = layout.blocks, layout.block, layout.rows, layout.cols
    # The keystream comes from HMAC-SHA256 then SHAKE-256, not from numpy.random: a certificate printed
    # today must descramble with whatever NumPy the verification service runs in ten years, and NumPy
    # does not promise stable streams across versions. Sorting distinct 64-bit draws is a uniform
    # permutation; the shape is mixed in so that two page sizes never share a permutation.
    label = _DERIVATION_LABEL + f"|{rows}x{cols}x{b}".encode()
    seed = hmac.new(key, label, hashlib.sha256).digest()
    stream = hashlib.shake_256(seed).digest(9 * n)
    draws = np.frombuffer(stream[: 8 * n], dtype="<u8")
    ops = np.frombuffer(stream[8 * n :], dtype=np.uint8)
    source_at = np.argsort(draws, kind="stable")  # grid position p shows front block source_at[p]
    destination = np.empty(n, np.int64)
    destination[source_at] = np.arange(n)
    dihedral = (ops & 7).astype(np.int64)
    channel_bits = (ops >> 3) & 7
    front_invert = (((channel_bits[:, None] >> np.arange(3)) & 1) * 255).astype(np.uint8)

    # The gather map: data pixel (Y, X) in block p=(Y//b, X//b), offset q within it, shows pixel
    # tables[d][q] of front block k = source_at[p].
    tables = _dihedral_tables(b)
    k = source_at.reshape(rows, cols)
    src_r, src_c = k // cols, k % cols
    within = tables[dihedral[k]].reshape(rows, cols, b, b)  # [r, c, v, u]
    within_v, within_u = within // b, within % b
    front_w = cols * b
    flat = (src_r[:, :, None, None] * b + within_v) * front_w + src_c[:, :, None, None] * b + within_u
    gather = flat.transpose(0, 2, 1, 3).reshape(rows * b, cols * b).astype(np.intp)
    invert = front_invert[k]  # (rows, cols, 3)
    return _KeyedPlan(gather, invert, destination, dihedral, front_invert)


@lru_cache(maxsize=8)
def _marker_canvas(layout: GridLayout) -> np.ndarray:
    """The white scramble image with its finder patterns and timing tracks, data area left blank."""
    m, b, o = layout.module, layout.block, layout.origin
    canvas = np.full((layout.height, layout.width), 255, np.uint8)
    finder = np.zeros((7 * m, 7 * m), np.uint8)  # QR proportions 1:1:3:1:1
    finder[m : 6 * m, m : 6 * m] = 255
    finder[2 * m : 5 * m, 2 * m : 5 * m] = 0
    lo, hi = _FINDER_FROM * m, _FINDER_TO * m
    canvas[lo:hi, lo:hi] = finder
    canvas[lo:hi, layout.width - hi : layout.width - lo] = finder
    canvas[layout.height - hi : layout.height - lo, lo:hi] = finder
    t0, t1 = _TRACK * m, (_TRACK + 1) * m
    for j in range(0, layout.cols, 2):
        x = o + j * b
        canvas[t0:t1, x : x + b] = 0
        canvas[layout.height - t1 : layout.height - t0, x : x + b] = 0
    for i in range(0, layout.rows, 2):
        y = o + i * b
        canvas[y : y + b, t0:t1] = 0
        canvas[y : y + b, layout.width - t1 : layout.width - t0] = 0
    rgb = np.repeat(canvas[:, :, None], 3, axis=2)
    rgb.setflags(write=False)
    return rgb


def _as_rgb(image: np.ndarray | Image.Image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ScrambleError(f"expected an RGB image (H, W, 3), got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise ScrambleError(f"expected 8-bit pixels, got {array.dtype}")
    return array[:, :, :3]


@dataclass(frozen=True)
class _BlockMoves:
    """The keyed plan as whole-block moves over 32-bit RGBX words, grouped by dihedral transform, so that
    a scramble is eight fancy-indexed block copies and one XOR (~2-4 ms for an A4 front) instead of
    per-channel byte shuffling (~11 ms) or a per-pixel gather through a 10 MB index map."""

    # Per transform d: (source block rows, source block cols, destination rows, destination cols).
    groups: tuple[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]
    invert: np.ndarray  # (rows, cols) uint32: the channel-inversion mask of the block at each grid position
    canvas: np.ndarray  # (height, width) uint32: the marker canvas as RGBX words


def _words(rgbx: np.ndarray) -> np.ndarray:
    """(..., 4) uint8 RGBX bytes as (...) uint32 words (native byte order: bytes stay where they are)."""
    return np.ascontiguousarray(rgbx).view(np.uint32)[..., 0]


@lru_cache(maxsize=16)
def _block_moves(key: bytes, layout: GridLayout) -> _BlockMoves:
    plan = _plan(key, layout)
    cols = layout.cols
    groups = []
    for d in range(8):
        moved = np.flatnonzero(plan.dihedral == d)
        to = plan.destination[moved]
        groups.append((d, moved // cols, moved % cols, to // cols, to % cols))
    invert = np.zeros((layout.rows, cols, 4), np.uint8)
    invert[:, :, :3] = plan.invert
    canvas = np.full((layout.height, layout.width, 4), 255, np.uint8)
    canvas[:, :, :3] = _marker_canvas(layout)
    moves = _BlockMoves(tuple(groups), _words(invert), _words(canvas))
    moves.invert.setflags(write=False)
    moves.canvas.setflags(write=False)
    return moves


def _scramble_words(front: np.ndarray | Image.Image, key: bytes, params: ScrambleParams | None) -> np.ndarray:
    """The scramble image as (height, width) RGBX words."""
    params = params or ScrambleParams()
    if not key:
        raise ScrambleError("the scramble key is empty")
    if isinstance(front, Image.Image) and front.mode in ("RGB", "RGBX", "RGBA"):
        height, width = front.height, front.width
        # Pillow keeps RGB pixels as 4 bytes: packing them as RGBX is a plain copy.
        pixels = np.frombuffer(front.tobytes("raw", "RGBX"), np.uint32).reshape(height, width)
    else:
        rgb = _as_rgb(front)
        height, width = rgb.shape[:2]
        rgbx = np.full((height, width, 4), 255, np.uint8)
        rgbx[:, :, :3] = rgb
        pixels = _words(rgbx)
    layout = GridLayout.for_front(height, width, params)
    moves = _block_moves(bytes(key), layout)
    b, rows, cols, o = layout.block, layout.rows, layout.cols, layout.origin
    padded = np.full((rows * b, cols * b), pixels.dtype.type(0xFFFFFFFF))  # white, X = 255
    padded[:height, :width] = pixels
    source = padded.reshape(rows, b, cols, b).transpose(0, 2, 1, 3)  # [block row, block col, v, u]
    out = moves.canvas.copy()
    data = out[o : o + rows * b, o : o + cols * b].reshape(rows, b, cols, b).transpose(0, 2, 1, 3)
    for d, from_r, from_c, to_r, to_c in moves.groups:
        # Same transform as _dihedral_tables: d % 4 quarter turns anticlockwise, then a mirror if d >= 4.
        blocks = np.rot90(source[from_r, from_c], d % 4, axes=(1, 2))
        data[to_r, to_c] = blocks[:, :, ::-1] if d >= 4 else blocks
    data ^= moves.invert[:, :, None, None]
    return out


def scramble(front: np.ndarray | Image.Image, key: bytes, params: ScrambleParams | None = None) -> np.ndarray:
    """The scramble image (RGB uint8, markers included) of a front page raster.

    The front is padded with white to whole blocks; its shape (not stored in the image) is what
    `descramble` needs back as out_shape, together with the same key and params."""
    return np.array(scramble_image(front, key, params))


def scramble_image(front: np.ndarray | Image.Image, key: bytes, params: ScrambleParams | None = None) -> Image.Image:
    """`scramble` as an RGB Pillow image, without the intermediate (H, W, 3) array."""
    words = _scramble_words(front, key, params)
    height, width = words.shape
    # Pillow unpacks RGBX to RGB in C; NumPy's strided 3-of-4-byte copy is several times slower.
    return Image.frombytes("RGB", (width, height), memoryview(words).cast("B"), "raw", "RGBX")


# ---------------------------------------------------------------------------------------------
# Decoding: find the markers, fit the homography nominal -> scan, resample, undo the permutation.


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, :, 0] * np.float32(0.299) + rgb[:, :, 1] * np.float32(0.587) + rgb[:, :, 2] * np.float32(0.114)


def _otsu(gray: np.ndarray) -> tuple[float, float, float]:
    """Otsu's threshold and the mean grey of the dark and light classes."""
    hist = np.bincount(np.clip(gray, 0, 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    s0 = np.cumsum(hist * levels)
    total, total_sum = w0[-1], s0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = s0 / w0
        m1 = (total_sum - s0) / w1
        between = w0 * w1 * (m0 - m1) ** 2
    between[~np.isfinite(between)] = -1
    t = int(np.argmax(between))
    return t + 0.5, float(m0[t]), float(m1[t])


@dataclass(frozen=True)
class _Finder:
    x: float
    y: float
    size: float  # bounding-box side of the outer ring, px


def _find_finder_candidates(dark: np.ndarray) -> list[_Finder]:
    """Nested dark ring + dark centre pairs with coinciding centroids: the finder signature."""
    labels, count = ndimage.label(dark, structure=np.ones((3, 3), bool))
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    boxes = ndimage.find_objects(labels)
    heights = np.array([s[0].stop - s[0].start for s in boxes], np.float64)
    widths = np.array([s[1].stop - s[1].start for s in boxes], np.float64)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(np.float64)
    centroids = np.array(ndimage.center_of_mass(dark, labels, index)).reshape(-1, 2)  # (y, x)
    side = np.maximum(heights, widths)
    fill = areas / (heights * widths)
    square = (heights / widths > 0.6) & (heights / widths < 1.67)
    rings = np.flatnonzero(square & (fill > 0.18) & (fill < 0.78) & (side >= 12))
    centres = np.flatnonzero(square & (fill > 0.42) & (side >= 3))
    if len(rings) == 0 or len(centres) == 0:
        return []
    # Pair every ring with the centres whose centroid lies at its own centroid.
    d = np.linalg.norm(centroids[rings][:, None, :] - centroids[centres][None, :, :], axis=2)
    size_ratio = side[rings][:, None] / side[centres][None, :]
    area_ratio = areas[rings][:, None] / areas[centres][None, :]
    ok = (
        (d < 0.1 * side[rings][:, None])
        & (size_ratio > 1.6)
        & (size_ratio < 3.8)
        & (area_ratio > 1.2)
        & (area_ratio < 6.0)
    )
    found = []
    for ri, ci in zip(*np.nonzero(ok), strict=True):
        r, c = rings[ri], centres[ci]
        total = areas[r] + areas[c]
        y = (centroids[r, 0] * areas[r] + centroids[c, 0] * areas[c]) / total
        x = (centroids[r, 1] * areas[r] + centroids[c, 1] * areas[c]) / total
        found.append(_Finder(float(x), float(y), float(side[r])))
    return found


def _similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[complex, complex, float]:
    """Least-squares z' = a z + t (rotation, uniform scale, shift) and its rms residual."""
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[:, 0] + 1j * dst[:, 1]
    ms, md = zs.mean(), zd.mean()
    a = np.vdot(zs - ms, zd - md) / np.vdot(zs - ms, zs - ms)
    t = md - a * ms
    rms = float(np.sqrt(np.mean(np.abs(a * zs + t - zd) ** 2)))
    return complex(a), complex(t), rms


def _initial_transform(finders: list[_Finder], layout: GridLayout) -> np.ndarray:
    """Pick the three candidates that sit like the three finder patterns; affine nominal -> scan."""
    nominal = layout.finder_centres()
    expected_size = 7 * layout.module
    # Keep the biggest candidates: text in the data blocks (e.g. 回) can mimic a small finder.
    finders = sorted(finders, key=lambda f: -f.size)[:24]
    best: tuple[float, tuple[_Finder, ...]] | None = None
    for triple in itertools.permutations(finders, 3):
        pts = np.array([[f.x, f.y] for f in triple])
        a, _, rms = _similarity_fit(nominal, pts)
        scale = abs(a)
        if scale <= 0:
            continue
        rel = rms / (scale * expected_size)
        # The rings' bounding boxes must match the scale (a rotated square's box grows by |cos|+|sin|).
        angle = np.angle(a)
        box = expected_size * scale * (abs(np.cos(angle)) + abs(np.sin(angle)))
        sizes = np.array([f.size for f in triple])
        if rel > 0.15 or np.any(np.abs(sizes / box - 1) > 0.3):
            continue
        if best is None or rel < best[0]:
            best = (rel, triple)
    if best is None:
        raise ScrambleDecodeError(
            "cannot find the scramble image's three corner markers in the scan "
            f"({len(finders)} marker-like shapes found); is the whole scramble area in the picture?"
        )
    pts = np.array([[f.x, f.y] for f in best[1]])
    # Exact affine through the three correspondences.
    src = np.hstack([nominal, np.ones((3, 1))])
    affine = np.linalg.solve(src, pts).T  # 2x3
    return np.vstack([affine, [0, 0, 1]])


def _apply(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = xy @ h[:, :2].T + h[:, 2]
    return p[..., :2] / p[..., 2:3]


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample image (H, W) or (H, W, C) at float positions; outside the image reads as white."""
    h, w = image.shape[:2]
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    xi = x0.astype(np.intp)
    yi = y0.astype(np.intp)
    inside = (xi >= 0) & (yi >= 0) & (xi < w - 1) & (yi < h - 1)
    xi = np.clip(xi, 0, w - 2)
    yi = np.clip(yi, 0, h - 2)
    if image.ndim == 3:
        fx, fy, inside = fx[..., None], fy[..., None], inside[..., None]
    top = image[yi, xi] * (1 - fx) + image[yi, xi + 1] * fx
    bottom = image[yi + 1, xi] * (1 - fx) + image[yi + 1, xi + 1] * fx
    out = top * (1 - fy) + bottom * fy
    return np.where(inside, out, np.float32(255))


def _fit_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares homography (normalised DLT) mapping src (x, y) points onto dst."""

    def normaliser(p: np.ndarray) -> np.ndarray:
        c = p.mean(axis=0)
        s = np.sqrt(2) / max(np.mean(np.linalg.norm(p - c, axis=1)), 1e-12)
        return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])

    ts, td = normaliser(src), normaliser(dst)
    s = _apply(ts, src)
    d = _apply(td, dst)
    n = len(s)
    a = np.zeros((2 * n, 9))
    a[0::2, 0:2], a[0::2, 2] = s, 1
    a[0::2, 6:8], a[0::2, 8] = -d[:, :1] * s, -d[:, 0]
    a[1::2, 3:5], a[1::2, 5] = s, 1
    a[1::2, 6:8], a[1::2, 8] = -d[:, 1:] * s, -d[:, 1]
    _, _, vt = np.linalg.svd(a)
    hn = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ hn @ ts
    return h / h[2, 2]


def _refine(gray: np.ndarray, h: np.ndarray, layout: GridLayout, dark: float, light: float) -> np.ndarray:
    """Re-measure every marker's centre in the scan and fit a homography through all of them."""
    m, b = layout.module, layout.block
    cells, horizontal = layout.track_cells()
    finders = layout.finder_centres()
    # Sampling windows in nominal coordinates: a timing cell is b x m, its neighbouring dark cells
    # are 1.5 b away along the track and the data 1.25 b away across it; a finder is 7 x 7 modules
    # with 1 to 2 white modules around it.
    along = np.arange(-b, b + 1, 1.0)
    across = np.arange(-0.75 * b, 0.75 * b + 1, 1.0)
    fwin = np.arange(-4 * m, 4 * m + 1, 1.0)
    expected_cell = b * m
    expected_finder = (49 - 25 + 9) * m * m
    span = max(light - dark, 1.0)
    for _ in range(3):
        measured_nominal: list[np.ndarray] = []
        keep: list[np.ndarray] = []
        for centres, du, dv, expected in (
            (cells[horizontal], along, across, expected_cell),
            (cells[~horizontal], across, along, expected_cell),
            (finders, fwin, fwin, expected_finder),
        ):
            gu, gv = np.meshgrid(du, dv)
            px = centres[:, None, None, 0] + gu[None]
            py = centres[:, None, None, 1] + gv[None]
            sx, sy = np.moveaxis(_apply(h, np.stack([px, py], axis=-1)), -1, 0)
            g = _bilinear(gray, sx, sy)
            w = np.clip((light - g) / span - 0.2, 0, None)
            mass = w.sum(axis=(1, 2))
            # Area in nominal px covered by darkness; a cell that is missing or swamped is dropped.
            area = mass / 0.8
            with np.errstate(invalid="ignore", divide="ignore"):
                ox = (w * gu[None]).sum(axis=(1, 2)) / mass
                oy = (w * gv[None]).sum(axis=(1, 2)) / mass
            measured_nominal.append(centres + np.stack([ox, oy], axis=1))
            keep.append((area > 0.5 * expected) & (area < 1.6 * expected))
        nominal_all = np.concatenate([cells[horizontal], cells[~horizontal], finders])
        measured_all = np.concatenate(measured_nominal)
        ok = np.concatenate(keep)
        if ok.sum() < 8:
            raise ScrambleDecodeError(
                f"only {int(ok.sum())} of the scramble image's timing marks could be measured in the scan"
            )
        src = nominal_all[ok]
        dst = _apply(h, measured_all[ok])
        new_h = _fit_homography(src, dst)
        # One round of outlier rejection: a smudge or a dark spot near a mark must not bend the grid.
        residual = np.linalg.norm(_apply(new_h, src) - dst, axis=1)
        inliers = residual <= max(3 * np.median(residual), 0.5)
        if inliers.sum() >= 8 and not inliers.all():
            new_h = _fit_homography(src[inliers], dst[inliers])
        h = new_h
    return h


def locate_grid(
    scan: np.ndarray | Image.Image, out_shape: tuple[int, int], params: ScrambleParams | None = None
) -> np.ndarray:
    """The 3x3 homography mapping nominal scramble-image coordinates (x, y) onto the scan."""
    params = params or ScrambleParams()
    rgb = _as_rgb(scan)
    layout = GridLayout.for_front(out_shape[0], out_shape[1], params)
    gray = _luminance(rgb)
    threshold, dark, light = _otsu(gray)
    # Finder detection does not need every pixel of a 600 dpi scan: average down to at most ~2000 px.
    step = max(1, int(max(gray.shape) // 2000))
    if step > 1:
        hs, ws = gray.shape[0] // step * step, gray.shape[1] // step * step
        small = gray[:hs, :ws].reshape(hs // step, step, ws // step, step).mean(axis=(1, 3))
        offset = (step - 1) / 2
        candidates = [
            _Finder(f.x * step + offset, f.y * step + offset, f.size * step)
            for f in _find_finder_candidates(small < threshold)
        ]
    else:
        candidates = _find_finder_candidates(gray < threshold)
    h = _initial_transform(candidates, layout)
    return _refine(gray, h, layout, dark, light)


def _reference_levels(rgb: np.ndarray, h: np.ndarray, layout: GridLayout) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: the scan's reading of full ink (finder centres) and of paper (finder white rings)."""
    m = layout.module
    t = np.arange(-1.0, 1.01, 0.25) * m
    gu, gv = np.meshgrid(t, t)
    ink_offsets = np.stack([gu.ravel(), gv.ravel()], axis=1)
    along = np.arange(-1.5, 1.51, 0.25) * m
    ring = 2 * m
    paper_offsets = np.concatenate(
        [np.stack([along, np.full_like(along, d)], axis=1) for d in (-ring, ring)]
        + [np.stack([np.full_like(along, d), along], axis=1) for d in (-ring, ring)]
    )
    levels = []
    for offsets in (ink_offsets, paper_offsets):
        nominal = (layout.finder_centres()[:, None, :] + offsets[None]).reshape(-1, 2)
        sx, sy = _apply(h, nominal).T
        levels.append(np.median(_bilinear(rgb, sx, sy), axis=0))
    return levels[0], levels[1]


@lru_cache(maxsize=8)
def _restore_map(key: bytes, layout: GridLayout, guard: float) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of the padded front: its nominal (x, y) in the scramble image, as float32."""
    plan = _plan(key, layout)
    b, rows, cols, o = layout.block, layout.rows, layout.cols, layout.origin
    tables = _dihedral_tables(b)
    # position_of[d][q] = where, within the transformed block, source pixel q ended up.
    position_of = np.argsort(tables, axis=1)
    k = np.arange(rows * cols).reshape(rows, cols)
    dest = plan.destination[k]
    pos = position_of[plan.dihedral[k]].reshape(rows, cols, b, b)  # [r, c, v, u]
    # A guard keeps samples off a block's rim, where blur and JPEG mix in the unrelated neighbour.
    pv = np.clip(pos // b, guard, b - 1 - guard)
    pu = np.clip(pos % b, guard, b - 1 - guard)
    ny = o + (dest // cols)[:, :, None, None] * b + pv
    nx = o + (dest % cols)[:, :, None, None] * b + pu
    ny = ny.transpose(0, 2, 1, 3).reshape(rows * b, cols * b)
    nx = nx.transpose(0, 2, 1, 3).reshape(rows * b, cols * b)
    return nx.astype(np.float64), ny.astype(np.float64)


def descramble(
    scan: np.ndarray | Image.Image,
    key: bytes,
    out_shape: tuple[int, int],
    params: ScrambleParams | None = None,
    guard_px: float = 1.5,
) -> np.ndarray:
    """Restore the front (RGB uint8 of out_shape = (height, width)) from a scan or photo of the
    scramble image. guard_px keeps samples that far inside each block (0 for a pixel-exact
    round trip of an undegraded image; 1.5 for real scans, whose block rims are smeared)."""
    params = params or ScrambleParams()
    if not key:
        raise ScrambleError("the scramble key is empty")
    if not 0 <= guard_px < params.block_px / 2 - 1:
        raise ScrambleError(f"guard_px must be between 0 and {params.block_px / 2 - 1}, got {guard_px}")
    rgb = _as_rgb(scan)
    layout = GridLayout.for_front(out_shape[0], out_shape[1], params)
    h = locate_grid(rgb, out_shape, params)
    nx, ny = _restore_map(bytes(key), layout, float(guard_px))
    height, width = out_shape
    nx, ny = nx[:height, :width], ny[:height, :width]
    den = h[2, 0] * nx + h[2, 1] * ny + h[2, 2]
    sx = (h[0, 0] * nx + h[0, 1] * ny + h[0, 2]) / den
    sy = (h[1, 0] * nx + h[1, 1] * ny + h[1, 2]) / den
    sampled = _bilinear(rgb, sx, sy)
    # Stretch each channel from the scan's full-ink level to its paper level, both read off the finder
    # patterns. Inverted channels turn the page's white into full ink, so without this a blank area
    # would restore as a patchwork of slightly different whites (paper vs ink) that looks like texture.
    ink, paper = _reference_levels(rgb, h, layout)
    sampled = (sampled - ink) * (255.0 / np.maximum(paper - ink, 32.0))
    restored = np.clip(np.rint(sampled), 0, 255).astype(np.uint8)
    # Undo the channel inversions (the mask belongs to the front block each pixel came from).
    plan = _plan(bytes(key), layout)
    mask = plan.front_invert.reshape(layout.rows, layout.cols, 3)
    mask = np.repeat(np.repeat(mask, layout.block, axis=0), layout.block, axis=1)[:height, :width]
    return restored ^ mask
