"""Per-municipality sequence tracking: which events to apply, which are duplicates, which gaps are open.

A municipality's events may arrive out of order (they are spread over partitions by resident), so
a sequence number above the highest seen opens a gap that later arrivals close. A number already
seen is a duplicate. The municipality is complete when no gap is open.

Bulk loads arrive almost entirely out of order (every event "fills a gap"), so the state is a
contiguous watermark plus the set of numbers received above it: observing a number is amortised
O(1), and the open gaps are derived only when someone asks for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Outcome(Enum):
    APPLY = "apply"  # new, in order or ahead (opening a gap)
    FILL = "fill"  # new, closes (part of) an open gap
    DUPLICATE = "duplicate"  # already applied


@dataclass
class MunicipalitySequence:
    """Applied sequence numbers of one municipality: all up to `contiguous`, and `above` it."""

    contiguous: int = 0
    above: set[int] = field(default_factory=set)
    high: int = 0
    _gaps_cache: tuple[tuple[int, int, int], list[tuple[int, int]]] | None = field(default=None, repr=False)

    def observe(self, seq: int) -> Outcome:
        if seq < 1:
            raise ValueError(f"sequence numbers start at 1, got {seq}")
        if self.holds(seq):
            return Outcome.DUPLICATE
        outcome = Outcome.FILL if seq < self.high else Outcome.APPLY
        self.high = max(self.high, seq)
        if seq == self.contiguous + 1:
            self.contiguous = seq
            while self.contiguous + 1 in self.above:
                self.contiguous += 1
                self.above.discard(self.contiguous)
        else:
            self.above.add(seq)
        return outcome

    def holds(self, seq: int) -> bool:
        """Whether the number was already applied."""
        return seq <= self.contiguous or seq in self.above

    @property
    def complete(self) -> bool:
        return self.contiguous == self.high

    @property
    def missing(self) -> int:
        return self.high - self.contiguous - len(self.above)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """Disjoint, sorted, inclusive ranges [lo, hi] of numbers below `high` not yet received."""
        key = (self.contiguous, self.high, len(self.above))
        if self._gaps_cache is None or self._gaps_cache[0] != key:
            gaps: list[tuple[int, int]] = []
            previous = self.contiguous
            for seq in sorted(self.above):
                if seq > previous + 1:
                    gaps.append((previous + 1, seq - 1))
                previous = seq
            self._gaps_cache = (key, gaps)
        return list(self._gaps_cache[1])

    @classmethod
    def from_applied(cls, applied: list[int]) -> MunicipalitySequence:
        """Rebuild from the sequence numbers already applied (e.g. read from the snapshot store)."""
        state = cls()
        for seq in applied:
            state.observe(seq)
        return state
