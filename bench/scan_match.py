"""Scan-match score distribution on REAL issued certificates (docs/domain.md §3.1 item 3).

Renders 住民票の写し with CertificateRenderer (real seal, copy-evident background, scrambled back side
keyed with certgen.scramble_keys), prints the back of each sealed PDF with poppler, degrades it like a
scanner (blur, JPEG 60, rotation, scale change, noise; seeded) and restores it with
certgen.scramble.descramble. Each restore is then scored (certgen.verification_scan.match) against:

  genuine      the certificate that was scanned
  household    another household's 住民票 of the same layout, issued the same day (other address)
  neighbour    the same, for a household at the same address: only names and dates differ
  layout       a certificate of another layout (one member instead of three)
  wrong key    the scanned certificate, restored with another municipality's key

    .venv/bin/python bench/scan_match.py [--scans N] [--dpi 100] [--seed S]

To measure another version of the score (e.g. before a change), point --matcher at its file:

    git show <commit>:certgen/verification_scan.py > /tmp/old_match.py
    .venv/bin/python bench/scan_match.py --matcher /tmp/old_match.py --threshold 0.43
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certgen import verification_scan
from certgen.back_side import ScrambleBackSide, copy_evident_background
from certgen.certificate_document import ResidentCopyOptions
from certgen.certificate_pdf import CertificateRenderer
from certgen.raster_render import RasterRenderer
from certgen.scramble import descramble
from certgen.scramble_keys import scramble_key
from certgen.verification_scan import MatchResult
from domain.certificate_types import CertificateType
from tests.certgen.factories import ISSUER, MINCHO, household_of_three
from tests.certgen.issued_world import neighbour_household, other_household
from tests.certgen.pdf_fixtures import ISSUED_AT, shared_font, shared_signer
from tests.certgen.scan_degradation import degrade

SECRET = "bench-scan-match-secret"


def back_page(pdf: bytes, directory: Path, dpi: int) -> np.ndarray:
    path = directory / "certificate.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "2", "-l", "2", "-png", "-singlefile", str(path),
                    str(directory / "back")], check=True, capture_output=True)
    return np.asarray(Image.open(directory / "back.png").convert("RGB"))


def load_matcher(path: Path | None) -> tuple[Callable[..., MatchResult], float]:
    if path is None:
        return verification_scan.match, verification_scan.MATCH_THRESHOLD
    spec = importlib.util.spec_from_file_location("bench_matcher", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_matcher"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.match, float(module.MATCH_THRESHOLD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=4, help="degraded scans per certificate")
    parser.add_argument("--dpi", type=int, default=100, help="resolution poppler prints the back at")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the degradations")
    parser.add_argument("--matcher", type=Path, help="score with this version of certgen/verification_scan.py")
    parser.add_argument("--threshold", type=float, help="judge against this threshold (default: the module's)")
    args = parser.parse_args()
    match, threshold = load_matcher(args.matcher)
    threshold = args.threshold if args.threshold is not None else threshold

    key = scramble_key(SECRET, ISSUER.municipality_code)
    background = copy_evident_background(MINCHO)
    renderer = CertificateRenderer(shared_font(), shared_signer(), raster=RasterRenderer(MINCHO),
                                   front_background=background, back_side=ScrambleBackSide(key, background))
    ours = household_of_three()
    one = ResidentCopyOptions(member_codes=frozenset({ours[1]["resident_code"]}))
    issued = {}
    for name, members, options in (("A", ours, None), ("B", other_household(), None),
                                   ("N", neighbour_household(), None), ("A1", ours, one)):
        pdf = renderer.render(CertificateType.RESIDENT_RECORD, members, ISSUER, ISSUED_AT, options=options).pdf
        layout = renderer.layout(CertificateType.RESIDENT_RECORD, members, ISSUER, ISSUED_AT, options=options)
        issued[name] = (pdf, np.asarray(renderer.front_rasters(layout)[0].convert("RGB")))
    wrong = scramble_key("another secret", ISSUER.municipality_code)
    rng = np.random.default_rng(args.seed)
    scores: dict[str, list[float]] = {"genuine": [], "household": [], "neighbour": [], "layout": [], "wrong key": []}
    match_ms: list[float] = []
    # (scanned, other household, neighbour): every three-member certificate is scanned in turn.
    roles = (("A", "B", "N"), ("N", "B", "A"), ("B", "A", None))
    with tempfile.TemporaryDirectory() as tmp:
        for scanned, household, neighbour in roles:
            pdf, front = issued[scanned]
            back = back_page(pdf, Path(tmp), args.dpi)
            for _ in range(args.scans):
                angle = float(rng.choice([-1, 1]) * rng.uniform(0.5, 1.5))
                scale = float(1 + rng.choice([-1, 1]) * rng.uniform(0.01, 0.03))
                scan = degrade(back, angle=angle, scale=scale, seed=int(rng.integers(1 << 30)))
                restored = descramble(scan, key, front.shape[:2])
                t0 = time.perf_counter()
                scores["genuine"].append(match(restored, front).score)
                match_ms.append((time.perf_counter() - t0) * 1000)
                scores["household"].append(match(restored, issued[household][1]).score)
                if neighbour is not None:
                    scores["neighbour"].append(match(restored, issued[neighbour][1]).score)
                scores["layout"].append(match(restored, issued["A1"][1]).score)
                scores["wrong key"].append(match(descramble(scan, wrong, front.shape[:2]), front).score)
    impostors = scores["household"] + scores["neighbour"] + scores["layout"] + scores["wrong key"]
    print(f"back printed at {args.dpi} dpi, {len(roles) * args.scans} degraded scans (blur σ 1, JPEG 60, "
          f"rotation 0.5-1.5°, scale 1-3 % either way, noise σ 8); threshold {threshold:.2f}")
    for name, values in scores.items():
        v = np.array(values)
        print(f"{name:<10} min {v.min():6.3f}  median {np.median(v):6.3f}  max {v.max():6.3f}  "
              f"({np.sum(v >= threshold)}/{len(v)} at or above the threshold)")
    print(f"margins: genuine min - threshold {min(scores['genuine']) - threshold:+.3f}, "
          f"threshold - impostor max {threshold - max(impostors):+.3f}; "
          f"match {np.median(match_ms):.0f} ms per comparison (median)")


if __name__ == "__main__":
    main()
