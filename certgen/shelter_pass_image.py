"""The printed shelter registration QR (domain.shelter_pass) as a PNG, and its reading back from a photo or scan
at the terminal: the same QR library as the certificates' sheet codes (zxing-cpp, certgen.sheet_code)."""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image

from domain.shelter_pass import PREFIX

MODULE_PIXELS = 8  # about 2 mm a module at 100 dpi: read by a phone camera from a printed slip


def write_pass_png(text: str, path: Path) -> None:
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = Image.fromarray(symbol.to_image(scale=MODULE_PIXELS, add_quiet_zones=True))
    image.save(path, format="PNG")


def read_pass_png(path: Path) -> str | None:
    """The registration text of the first QR code in the image that holds one, or None."""
    with Image.open(path) as image:
        codes = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    return next((c.text for c in codes if c.text.startswith(PREFIX)), None)
