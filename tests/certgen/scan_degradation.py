"""What scanning or photographing a printed page does to it, for the scramble-image and verification tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def degrade(image: np.ndarray, *, angle: float = 1.5, scale: float = 1.03, seed: int = 0) -> Image.Image:
    """What a flatbed scan of the printed back does: scale, rotation, paper around it, blur, noise, JPEG 60."""
    scan = Image.fromarray(image)
    scan = scan.resize((round(scan.width * scale), round(scan.height * scale)), Image.BICUBIC)
    scan = scan.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor="white")
    page = Image.new("RGB", (scan.width + 180, scan.height + 140), "white")
    page.paste(scan, (110, 50))
    page = page.filter(ImageFilter.GaussianBlur(1))
    noisy = np.asarray(page, np.float32) + np.random.default_rng(seed).normal(0, 8, (page.height, page.width, 3))
    page = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    page.save(buffer, "JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
