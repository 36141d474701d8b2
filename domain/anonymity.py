"""k-anonymity of the analyst views (docs/domain.md §8.1): the one statement of k, of how far each
quasi-identifier may be coarsened, and of the rule that chooses how far.

Every column of an analyst view is a quasi-identifier: an analyst can GROUP BY or filter on any of them.
So the views are built so that every row has at least K - 1 others identical to it in every column (in
`register_changes`: every row's cell holds changes of at least K distinct residents). Then any GROUP BY,
WHERE or join over a view's columns selects whole cells, and no group it forms has fewer than K residents.

How, per municipality and table: every column starts at its finest level; the table's coarsening path
is a fixed order of steps, each coarsening one column one level (the columns analysts need least are
coarsened first: the area last, since where people live is what most analyses are about). Steps are
taken until at most MAX_SUPPRESSED_SHARE of the rows lie in cells of fewer than K residents; the rows
of the cells still below K are left out. The levels depend only on the municipality's own records, so
a municipality's rows are the same whichever other municipalities an analyst is granted."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

K = 10
# Share of a municipality's rows that may be left out (in cells below K) rather than coarsen further.
MAX_SUPPRESSED_SHARE = 0.05

# Levels of each coarsening ladder, finest first; the last level of every ladder is "withheld" (NULL).
YEAR_BAND_WIDTHS = (5, 10, 20)  # birth years and years of becoming a resident, in bands of these widths
TAX_YEAR_BAND_WIDTHS = (10, 20)  # the tax view has fewer rows per cell to spare: starts at decades
INCOME_BAND_BOUNDS_YEN = (
    (0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000, 7_000_000, 10_000_000),
    (0, 2_000_000, 5_000_000),
)
HOUSEHOLD_SIZE_CAPS = (5, 3)  # household sizes 1..cap-1, then "cap+"


@dataclass(frozen=True)
class CellCounts:
    """What one trial of coarsening levels gives for a municipality's rows."""

    rows: int
    rows_in_small_cells: int  # rows whose cell holds fewer than K residents


def coarsening_levels(columns: Sequence[str], path: Sequence[str],
                      measure: Callable[[Mapping[str, int]], CellCounts]) -> dict[str, int]:
    """The level of each column (0 = finest) after the first steps of `path` that bring the rows in cells
    below K down to MAX_SUPPRESSED_SHARE (all of it if none does). `measure` counts the cells for given
    levels (the caller runs it as a query over the records)."""
    levels = dict.fromkeys(columns, 0)
    for step in (None, *path):
        if step is not None:
            levels[step] += 1
        counts = measure(levels)
        if counts.rows_in_small_cells <= MAX_SUPPRESSED_SHARE * counts.rows:
            break
    return levels
