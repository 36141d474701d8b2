"""Scan lookup time against the number of sheets issued that day (issue 8, item 10).

Before: a scan was compared with every sheet its municipality issued on the date typed (the
verifier of main, loaded from git with --before-ref). After: the code on the back names the sheet and the
scan is compared with that one (certgen.verification.verify_scan). Both verify the same degraded scan of
a real certificate (CertificateRenderer, sealed, printed by poppler at 100 dpi, blur, JPEG 60, 1.5°)
against an issuance archive holding N sheets of that municipality and day (the genuine one and N-1
others: the other certificates of tests.certgen.issued_world, archived again under other ids).

    .venv/bin/python bench/scan_lookup.py [--sheets 1 4 16 64] [--before-ref main]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certgen.keys import KeyPool
from certgen.verification import load_scan, verify_scan
from sinks.issuance_archive import IssuanceArchive
from tests.certgen.issued_world import build_issued_world, degraded_scan_png


def _module_at(ref: str, path: str, directory: Path) -> ModuleType:
    source = subprocess.run(["git", "show", f"{ref}:{path}"], check=True, capture_output=True, text=True).stdout
    file = directory / "verification_before.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location("verification_before", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sheets", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--before-ref", default="main", help="git ref of the verifier to measure as 'before'")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {_cpu()}, {os.cpu_count()} cores, load average {load[0]:.2f} (shared with other work)")
    with tempfile.TemporaryDirectory(prefix="bench-scan-lookup-") as tmp:
        directory = Path(tmp)
        world = build_issued_world(directory / "world", KeyPool(directory / "keys", 4))
        before = _module_at(args.before_ref, "certgen/verification.py", directory)
        scan = load_scan(degraded_scan_png(world.household.pdf, directory))
        genuine = world.household.record
        others = itertools.cycle([world.wife.record, world.neighbour.record])
        print(f"{'sheets that day':>16} {'before s':>9} {'after s':>8} {'compared before/after':>22}")
        for sheets in args.sheets:
            archive = IssuanceArchive(directory / f"archive-{sheets}")
            archive.put(genuine.certificate_id, genuine.request_id, genuine.municipality_code, genuine.issued_at,
                        world.household.pdf, [world.archive.read_front(genuine)])
            for n in range(sheets - 1):
                other = next(others)
                archive.put(f"other-{n}", f"request-other-{n}", genuine.municipality_code, genuine.issued_at,
                            world.archive.read_pdf(other), [world.archive.read_front(other)])
            start = time.perf_counter()
            old = before.verify_scan(scan, archive, world.key_of, municipality_code=genuine.municipality_code,
                                     issued_on=genuine.issued_on)
            old_s = time.perf_counter() - start
            start = time.perf_counter()
            new = verify_scan(scan, archive, world.key_of, municipality_code=genuine.municipality_code,
                              issued_on=genuine.issued_on)
            new_s = time.perf_counter() - start
            assert old.matches and new.matches and new.certificate_id == genuine.certificate_id
            print(f"{sheets:>16} {old_s:>9.2f} {new_s:>8.2f} {old.candidates:>12}/{new.candidates}")


if __name__ == "__main__":
    main()
