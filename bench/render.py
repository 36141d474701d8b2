"""Render-only ceiling of the certificate worker: certificates laid out, rendered, sealed and given
their scrambled back side in a loop, without Kafka.

Prints CPU ms per certificate for each stage, then certificates/s and latency percentiles for one
process and for a pool of worker processes (the machine's cores). Compare with the pyHanko
defaults (PdfSigner on the finished PDF) with --pyhanko-baseline.

    .venv/bin/python bench/render.py [--count 200] [--workers 2] [--no-back] [--pyhanko-baseline]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certgen.back_side import ScrambleBackSide, copy_evident_background
from certgen.certificate_document import ResidentCopyOptions
from certgen.certificate_pdf import CertificateRenderer
from certgen.raster_render import RasterRenderer
from certgen.seal import KeyFileSealSigner, seal_pdf, seal_prepared
from certgen.truetype_font import TrueTypeFont
from domain.certificate_types import CertificateType
from streams.settings import load_settings
from tests.certgen.factories import ISSUER, household_of_seven, household_of_three
from tests.certgen.seal_fixtures import make_seal_material

ISSUED_AT = dt.datetime(2026, 11, 21, 1, 30, tzinfo=dt.UTC)
SCRAMBLE_KEY = bytes(range(32))

# The mix: mostly resident-record copies (small households, some large), seal and tax certificates.
def requests() -> list[tuple[CertificateType, list, dict]]:
    three, seven = household_of_three(), household_of_seven()
    return [
        (CertificateType.RESIDENT_RECORD, three,
         {"options": ResidentCopyOptions(household_head_and_relationship=True)}),
        (CertificateType.RESIDENT_RECORD, three, {}),
        (CertificateType.SEAL_REGISTRATION, three[:1], {}),
        (CertificateType.INCOME, three[:1], {}),
        (CertificateType.RESIDENT_RECORD, three[1:2], {"options": ResidentCopyOptions(member_codes=None)}),
        (CertificateType.TAX_PAYMENT, three[:1], {}),
        (CertificateType.RESIDENT_RECORD, seven, {}),
        (CertificateType.TAXATION, three[1:2], {}),
    ]


_renderer: CertificateRenderer | None = None


def build_renderer(with_back: bool) -> CertificateRenderer:
    """What a worker process builds once at start-up: font, raster faces, pattern, seal key."""
    settings = load_settings()
    material = make_seal_material()
    signer = KeyFileSealSigner(material.key, material.certificate, [material.root])
    font = TrueTypeFont.from_file(settings.mincho_font)
    background = copy_evident_background(settings.mincho_font) if with_back else None
    back = ScrambleBackSide(SCRAMBLE_KEY, background) if with_back else None
    return CertificateRenderer(font, signer, raster=RasterRenderer(settings.mincho_font),
                               front_background=background, back_side=back)


def _init_worker(with_back: bool) -> None:
    global _renderer
    _renderer = build_renderer(with_back)


def _render_one(index: int) -> tuple[float, int]:
    assert _renderer is not None
    kind, residents, kwargs = REQUESTS[index % len(REQUESTS)]
    start = time.perf_counter()
    pdf = _renderer.render(kind, residents, ISSUER, ISSUED_AT, **kwargs).pdf
    return time.perf_counter() - start, len(pdf)


REQUESTS = requests()


def stages(renderer: CertificateRenderer, count: int, baseline: bool) -> None:
    cpu = {"layout": 0.0, "raster": 0.0, "back side": 0.0, "pdf": 0.0, "seal": 0.0}
    base = 0.0
    for i in range(count):
        kind, residents, kwargs = REQUESTS[i % len(REQUESTS)]
        t0 = time.process_time()
        layout = renderer.layout(kind, residents, ISSUER, ISSUED_AT, **kwargs)
        t1 = time.process_time()
        backs = []
        if renderer.back_side is not None:
            fronts = renderer.front_rasters(layout)
            t2 = time.process_time()
            backs = [renderer.back_side(f) for f in fronts]
        else:
            t2 = t1
        t3 = time.process_time()
        prepared = renderer.prepare(layout, ISSUER, ISSUED_AT, backs)
        t4 = time.process_time()
        assert renderer.signer is not None and not isinstance(prepared, bytes)
        seal_prepared(prepared, renderer.signer)
        t5 = time.process_time()
        cpu["layout"] += t1 - t0
        cpu["raster"] += t2 - t1
        cpu["back side"] += t3 - t2
        cpu["pdf"] += t4 - t3
        cpu["seal"] += t5 - t4
        if baseline and i < 20:
            unsigned = CertificateRenderer(renderer.font, None, front_background=renderer.front_background).prepare(
                layout, ISSUER, ISSUED_AT, backs)
            t6 = time.process_time()
            seal_pdf(unsigned, renderer.signer)  # type: ignore[arg-type]
            base += time.process_time() - t6
    print(f"CPU ms per certificate by stage ({count} certificates, mix of {len(REQUESTS)} kinds/sizes):")
    for name, seconds in cpu.items():
        print(f"  {name:<10} {seconds * 1000 / count:7.2f}")
    print(f"  {'total':<10} {sum(cpu.values()) * 1000 / count:7.2f}")
    if baseline:
        print(f"  seal with pyHanko PdfSigner instead: {base * 1000 / min(count, 20):.2f} ms")


def report(name: str, latencies: list[float], sizes: list[int], wall: float) -> None:
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    print(f"{name}: {len(latencies) / wall:7.1f} certificates/s   latency p50 {p(0.50):6.1f} ms  p99 {p(0.99):6.1f} ms"
          f"  max {ordered[-1] * 1000:6.1f} ms   mean PDF {statistics.mean(sizes) / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="certificates per measurement")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="processes in the pool")
    parser.add_argument("--no-back", action="store_true", help="front only: no scramble image, no pattern")
    parser.add_argument("--pyhanko-baseline", action="store_true", help="also time pyHanko's PdfSigner")
    args = parser.parse_args()
    with_back = not args.no_back

    t = time.process_time()
    _init_worker(with_back)
    print(f"start-up per worker (font, raster faces, pattern, seal key): {(time.process_time() - t) * 1000:.0f} ms CPU")
    assert _renderer is not None
    for i in range(len(REQUESTS)):  # warm caches the way a running worker has them
        _render_one(i)
    stages(_renderer, args.count, args.pyhanko_baseline)

    start = time.perf_counter()
    results = [_render_one(i) for i in range(args.count)]
    report("1 process ", [r[0] for r in results], [r[1] for r in results], time.perf_counter() - start)

    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(with_back,)) as pool:
        pool.map(_render_one, range(args.workers * len(REQUESTS)))  # warm every worker
        start = time.perf_counter()
        results = pool.map(_render_one, range(args.count), chunksize=4)
        wall = time.perf_counter() - start
    report(f"{args.workers} workers", [r[0] for r in results], [r[1] for r in results], wall)


if __name__ == "__main__":
    main()
