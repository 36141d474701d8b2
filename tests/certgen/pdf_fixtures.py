"""Fixtures shared by the certificate-PDF tests: the font and renderer (loaded once), a seal, and
helpers around the poppler tools."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import subprocess
from pathlib import Path

from certgen.certificate_pdf import CertificateRenderer
from certgen.raster_render import RasterRenderer
from certgen.seal import KeyFileSealSigner
from certgen.truetype_font import TrueTypeFont
from tests.certgen.factories import MINCHO
from tests.certgen.seal_fixtures import SealMaterial, make_seal_material

ISSUED_AT = dt.datetime(2026, 11, 21, 1, 30, tzinfo=dt.UTC)  # 10:30 in Japan, 令和8年11月21日


# Built once per test process and shared by the PDF test modules (plain functions, not fixtures, so
# that each module declares the fixtures it uses without importing fixture objects).
@functools.cache
def shared_font() -> TrueTypeFont:
    return TrueTypeFont.from_file(MINCHO)


@functools.cache
def shared_seal_material() -> SealMaterial:
    return make_seal_material()


@functools.cache
def shared_signer() -> KeyFileSealSigner:
    material = shared_seal_material()
    return KeyFileSealSigner(material.key, material.certificate, [material.root])


@functools.cache
def shared_renderer() -> CertificateRenderer:
    return CertificateRenderer(shared_font(), shared_signer(), raster=RasterRenderer(MINCHO))


def run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def pdf_text(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    """pdftotext -layout of the whole PDF (or one page), with all whitespace removed so that the
    letter-spaced title and the ideographic space inside names compare plainly."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return re.sub(r"\s+", "", run("pdftotext", "-layout", *pages, path, "-"))


def pdfsig(pdf: bytes, tmp_path: Path, nss_dir: str) -> str:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    # pdfsig exits non-zero for an invalid signature; the report is what the tests read.
    env = {**os.environ, "TZ": "UTC"}  # pdfsig prints the signing time in local time
    return subprocess.run(["pdfsig", "-nssdir", nss_dir, str(path)], capture_output=True, text=True, env=env).stdout


def page_count(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    return int(re.search(r"^Pages:\s+(\d+)", run("pdfinfo", path), re.M).group(1))  # type: ignore[union-attr]
