"""Scramble-image figures: time to scramble an A4 front at 100 dpi (the kiosk hot path), with the
key's plan cached (one key per municipality) and with a fresh key every time, and time to restore
and score a degraded scan (the verification service).

    .venv/bin/python bench/scramble.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certgen.scramble import descramble, scramble
from certgen.verification_scan import match
from tests.certgen.test_scramble import A4_100DPI, KEY, RESIDENT_A, degrade, make_front


def timed(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def report(name: str, times: list[float]) -> None:
    times = sorted(times)
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    print(f"{name:<52} median {statistics.median(times):7.1f} ms   p99 {p99:7.1f} ms   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    front = make_front(RESIDENT_A)
    scrambled = scramble(front, KEY)
    print(f"front {front.shape[1]}x{front.shape[0]} px (A4 at 100 dpi), scramble image "
          f"{scrambled.shape[1]}x{scrambled.shape[0]} px, 16 px blocks")
    report("scramble, key plan cached", timed(lambda: scramble(front, KEY), args.rounds))
    keys = iter(np.random.default_rng(1).bytes(32) for _ in range(args.rounds))
    report("scramble, new key every time", timed(lambda: scramble(front, next(keys)), args.rounds))
    scan = np.asarray(degrade(scrambled))
    rounds = max(5, args.rounds // 10)
    report("descramble undegraded scramble image", timed(lambda: descramble(scrambled, KEY, A4_100DPI), rounds))
    degraded = timed(lambda: descramble(scan, KEY, A4_100DPI), rounds)
    report("descramble degraded scan (blur, JPEG 60, 1.5°, +3 %)", degraded)
    restored = descramble(scan, KEY, A4_100DPI)
    report("match score restored vs issued", timed(lambda: match(restored, front), rounds))
    big = np.repeat(np.repeat(scan, 3, axis=0), 3, axis=1)
    report(f"descramble 3x scan ({big.shape[1]}x{big.shape[0]} px)", timed(lambda: descramble(big, KEY, A4_100DPI), 3))
    print(f"match score of the degraded scan: {match(restored, front).score:.3f}")


if __name__ == "__main__":
    main()
