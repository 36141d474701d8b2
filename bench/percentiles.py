"""A percentile of a benchmark's figures, the nearest rank of the sorted values (p50, p99 as the benches print)."""

from __future__ import annotations


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
