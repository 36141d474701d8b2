from hypothesis import given
from hypothesis import strategies as st

from domain.sequencing import MunicipalitySequence, Outcome


def test_in_order_then_duplicate() -> None:
    s = MunicipalitySequence()
    assert [s.observe(i) for i in (1, 2, 3)] == [Outcome.APPLY] * 3
    assert s.observe(2) is Outcome.DUPLICATE
    assert s.complete and s.high == 3


def test_gap_opens_and_closes() -> None:
    s = MunicipalitySequence()
    s.observe(1)
    assert s.observe(5) is Outcome.APPLY
    assert s.gaps == [(2, 4)] and not s.complete and s.missing == 3
    assert s.observe(3) is Outcome.FILL
    assert s.gaps == [(2, 2), (4, 4)]
    assert s.observe(3) is Outcome.DUPLICATE
    s.observe(2)
    s.observe(4)
    assert s.complete


@given(st.permutations(list(range(1, 60))), st.lists(st.integers(1, 59), max_size=20))
def test_any_arrival_order_applies_each_number_once(order: list[int], repeats: list[int]) -> None:
    s = MunicipalitySequence()
    applied = []
    for seq in order + repeats:
        if s.observe(seq) is not Outcome.DUPLICATE:
            applied.append(seq)
    assert sorted(applied) == list(range(1, 60))
    assert s.complete


@given(st.sets(st.integers(1, 200), min_size=1))
def test_rebuild_from_applied_numbers(applied: set[int]) -> None:
    s = MunicipalitySequence.from_applied(sorted(applied))
    missing = set(range(1, max(applied) + 1)) - applied
    assert s.missing == len(missing)
    assert all(s.observe(m) is Outcome.FILL for m in sorted(missing))
