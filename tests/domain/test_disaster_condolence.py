"""災害弔慰金 and 災害障害見舞金 (docs/domain.md §6.4): the amounts on the breadwinner split and the order of
the bereaved."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.disaster_condolence import Bereaved, condolence_amounts, condolence_recipient
from domain.errors import InvalidArgumentError

B = Bereaved


@pytest.mark.parametrize(("breadwinner", "condolence", "disability"),
                         [(True, 5_000_000, 2_500_000), (False, 2_500_000, 1_250_000)])
def test_the_amounts(breadwinner: bool, condolence: int, disability: int) -> None:
    amounts = condolence_amounts(breadwinner)
    assert (amounts.condolence, amounts.disability) == (condolence, disability)


@pytest.mark.parametrize("value", [None, 1, "yes"])
def test_the_breadwinner_question_takes_only_yes_or_no(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^breadwinner: "):
        condolence_amounts(value)  # type: ignore[arg-type]


def test_the_bereaved_order() -> None:
    assert [(b.value, b.japanese) for b in B] == [("SPOUSE", "配偶者"), ("CHILD", "子"), ("PARENT", "父母"),
                                                  ("GRANDCHILD", "孫"), ("GRANDPARENT", "祖父母")]
    assert condolence_recipient({B.GRANDPARENT, B.CHILD, B.PARENT}) is B.CHILD
    assert condolence_recipient({B.GRANDPARENT, B.GRANDCHILD}) is B.GRANDCHILD
    assert condolence_recipient({B.SPOUSE, B.GRANDPARENT}) is B.SPOUSE
    assert condolence_recipient(set()) is None
    with pytest.raises(InvalidArgumentError, match=r"^survivors: not a bereaved relation: 'SIBLING'"):
        condolence_recipient({"SIBLING"})  # type: ignore[arg-type]


@given(st.sets(st.sampled_from(list(B)), min_size=1))
def test_the_recipient_comes_before_every_other_survivor(survivors: set[Bereaved]) -> None:
    first = condolence_recipient(survivors)
    order = list(B)
    assert first in survivors and all(order.index(first) <= order.index(s) for s in survivors)
