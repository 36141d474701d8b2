"""Per-municipality sequence tracking: which events to apply, which are duplicates, which gaps are open.

A municipality's events may arrive out of order (they are spread over partitions by resident), so
a sequence number above the highest seen opens a gap that later arrivals close. A number already
seen is a duplicate. The municipality is complete when no gap is open."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import Enum


class Outcome(Enum):
    APPLY = "apply"  # new, in order or ahead (opening a gap)
    FILL = "fill"  # new, closes (part of) an open gap
    DUPLICATE = "duplicate"  # already applied


@dataclass
class MunicipalitySequence:
    """Applied sequence numbers of one municipality: everything up to `high`, except the open gaps."""

    high: int = 0
    # Disjoint, sorted, inclusive ranges [lo, hi] of numbers below `high` not yet received.
    gaps: list[tuple[int, int]] = field(default_factory=list)

    def observe(self, seq: int) -> Outcome:
        if seq < 1:
            raise ValueError(f"sequence numbers start at 1, got {seq}")
        if seq > self.high:
            if seq > self.high + 1:
                self.gaps.append((self.high + 1, seq - 1))
            self.high = seq
            return Outcome.APPLY
        i = bisect.bisect_right(self.gaps, (seq, float("inf"))) - 1
        if i >= 0 and self.gaps[i][0] <= seq <= self.gaps[i][1]:
            lo, hi = self.gaps.pop(i)
            self.gaps[i:i] = [r for r in ((lo, seq - 1), (seq + 1, hi)) if r[0] <= r[1]]
            return Outcome.FILL
        return Outcome.DUPLICATE

    @property
    def complete(self) -> bool:
        return not self.gaps

    @property
    def missing(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.gaps)

    @classmethod
    def from_applied(cls, applied: list[int]) -> MunicipalitySequence:
        """Rebuild from the sorted sequence numbers already applied (e.g. read from the snapshot store)."""
        state = cls()
        for seq in applied:
            state.observe(seq)
        return state
