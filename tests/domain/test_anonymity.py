"""The coarsening rule of the analyst tables (domain.anonymity): steps are taken in the path's order, and
only as many as it takes to bring the rows in cells below k down to the allowed share."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from domain.anonymity import MAX_SUPPRESSED_SHARE, CellCounts, coarsening_levels

Measure = Callable[[Mapping[str, int]], CellCounts]


def small_rows_after(steps_needed: int, rows: int = 1000) -> tuple[Measure, list[dict[str, int]]]:
    """A register whose rows all lie in cells below k until `steps_needed` steps are taken, then only the
    allowed share; and the levels each trial was measured at."""
    taken: list[dict[str, int]] = []

    def measure(levels: Mapping[str, int]) -> CellCounts:
        taken.append(dict(levels))
        steps = sum(levels.values())
        small = rows if steps < steps_needed else int(MAX_SUPPRESSED_SHARE * rows)
        return CellCounts(rows=rows, rows_in_small_cells=small)

    return measure, taken


def test_no_step_is_taken_when_the_finest_levels_already_hold_k() -> None:
    measure, taken = small_rows_after(0)
    assert coarsening_levels(("area", "sex"), ("sex", "area"), measure) == {"area": 0, "sex": 0}
    assert len(taken) == 1


def test_steps_follow_the_path_and_stop_as_soon_as_enough_rows_are_in_cells_of_k() -> None:
    measure, taken = small_rows_after(3)
    path = ("birth_years", "sex", "birth_years", "area", "birth_years")
    assert coarsening_levels(("area", "sex", "birth_years"), path, measure) == {"area": 0, "sex": 1, "birth_years": 2}
    assert [sum(levels.values()) for levels in taken] == [0, 1, 2, 3]


def test_the_whole_path_is_climbed_when_nothing_less_will_do() -> None:
    measure, _ = small_rows_after(99)
    assert coarsening_levels(("area", "sex"), ("sex", "area"), measure) == {"area": 1, "sex": 1}
