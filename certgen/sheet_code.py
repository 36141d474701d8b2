"""The machine-readable id on the back of every printed sheet: a QR code saying which certificate and
which of its sheets the paper is, so that verifying a scan compares it with that one archived sheet
instead of every sheet its municipality issued that day (docs/domain.md §3.1).

The text is `<certificate id>/<sheet number, from 1>`, except for the worker's ids, which are UUIDs:
those are written as 41 decimal digits (the UUID as a 39-digit number, then the sheet number in two),
which QR codes pack as numerals: version 2 at error correction M (25 modules) instead of version 3
(29 modules) for the 38 characters of the text form, so modules 0.78 mm wide in the same 22.6 mm,
which is what makes the code read from 100 dpi scans reliably. It is only an index: a forged back can
carry any id, and the verdict still comes from comparing the restored front with the archived front of
the sheet it names.

Written and read with zxing-cpp (a self-contained wheel, no system library; ~1.5 ms a code, where a
pure-Python encoder took 7-27 ms choosing its mask, as much as the rest of a certificate's render).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import numpy as np
import zxingcpp
from PIL import Image

# Certificate ids are file names in the issuance archive (sinks.issuance_archive): the same pattern.
_TEXT = re.compile(r"(?P<id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})/(?P<sheet>[1-9][0-9]?)")
_UUID_DIGITS = re.compile(r"(?P<uuid>[0-9]{39})(?P<sheet>0[1-9]|[1-9][0-9])")
# Quiet zone around the symbol, in modules. The spec asks for 4; the back page paints the code on a
# white patch of its own, and zxing-cpp reads a 2-module zone reliably (bench/scan_lookup.py's scans).
QUIET_MODULES = 2


@dataclass(frozen=True)
class SheetRef:
    certificate_id: str
    sheet: int  # 0-based, as the archive counts sheets


def sheet_code_text(certificate_id: str, sheet: int) -> str:
    """The code's text for a sheet (0-based; printed 1-based, as people count sheets)."""
    if not 0 <= sheet < 99:
        raise ValueError(f"no sheet code for sheet {sheet + 1} (at most 99 sheets)")
    as_uuid = _as_uuid(certificate_id)
    if as_uuid is not None:
        return f"{as_uuid.int:039d}{sheet + 1:02d}"
    text = f"{certificate_id}/{sheet + 1}"
    if not _TEXT.fullmatch(text):
        raise ValueError(f"no sheet code for certificate {certificate_id!r}, sheet {sheet}")
    return text


def _as_uuid(certificate_id: str) -> uuid.UUID | None:
    """The UUID a certificate id is written as (lower case, with hyphens: how the worker mints them)."""
    try:
        value = uuid.UUID(certificate_id)
    except ValueError:
        return None
    return value if str(value) == certificate_id else None


def parse_sheet_code(text: str) -> SheetRef | None:
    """The sheet a code's text names, or None when it is no sheet code (another QR code on the paper)."""
    digits = _UUID_DIGITS.fullmatch(text)
    if digits is not None and int(digits["uuid"]) < 2**128:
        return SheetRef(str(uuid.UUID(int=int(digits["uuid"]))), int(digits["sheet"]) - 1)
    found = _TEXT.fullmatch(text)
    if found is None:
        return None
    return SheetRef(found["id"], int(found["sheet"]) - 1)


def sheet_code_modules(certificate_id: str, sheet: int) -> np.ndarray:
    """The QR symbol as a boolean module matrix (True = dark), quiet zone included."""
    symbol = zxingcpp.create_barcode(sheet_code_text(certificate_id, sheet), zxingcpp.BarcodeFormat.QRCode,
                                     ec_level="M")
    modules = np.asarray(symbol.to_image(scale=1, add_quiet_zones=False)) == 0  # one pixel a module, 0 = dark
    return np.pad(modules, QUIET_MODULES)


def read_sheet_codes(scan: Image.Image | np.ndarray) -> list[SheetRef]:
    """The distinct sheet codes found in a scan or photo (usually one; none when the code is cut off,
    smudged or the sheet was printed before codes were added)."""
    image = scan if isinstance(scan, Image.Image) else Image.fromarray(scan)
    found: list[SheetRef] = []
    for barcode in zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode):
        ref = parse_sheet_code(barcode.text)
        if ref is not None and ref not in found:
            found.append(ref)
    return found
