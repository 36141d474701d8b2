"""The archive's PNG encoder: standard PNG files that decode back pixel for pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from certgen.raster_png import raster_png


def _page(mode: str) -> Image.Image:
    image = Image.new("RGB", (413, 584), "white")
    draw = ImageDraw.Draw(image)
    for y in range(40, 540, 23):
        draw.text((30, y), "住民票の写し 1234567890 abcdefghij" * 2, fill="black")
    draw.ellipse((300, 480, 380, 560), outline=(204, 20, 26), width=4)
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_decodes_to_the_same_pixels(mode: str) -> None:
    image = _page(mode)
    png = raster_png(image)
    decoded = Image.open(io.BytesIO(png))
    decoded.verify()  # chunk CRCs and structure
    decoded = Image.open(io.BytesIO(png))
    expected = image if mode in ("RGB", "L") else image.convert("RGB")
    assert decoded.mode == expected.mode and decoded.size == expected.size
    assert np.array_equal(np.asarray(decoded), np.asarray(expected))


def test_tiny_and_flat_images() -> None:
    for image in (Image.new("RGB", (1, 1), (1, 2, 3)), Image.new("L", (7, 1), 200), Image.new("RGB", (1, 9))):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(raster_png(image)))), np.asarray(image))


def test_compresses_a_page_like_pillow_does() -> None:
    image = _page("RGB")
    pillow = io.BytesIO()
    image.save(pillow, "PNG", compress_level=1)
    assert len(raster_png(image)) < 1.3 * len(pillow.getvalue())
