"""災害援護資金 (docs/domain.md §6.4): every limit of the table, the income limits by household size, and
contradictory damage refused naming the argument."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.damage_levels import DamageLevel
from domain.disaster_relief_loan import relief_loan_income_limit, relief_loan_limit, under_relief_loan_income_limit
from domain.errors import InvalidArgumentError

L = DamageLevel


@pytest.mark.parametrize(("case", "with_injury", "without_injury"), [
    ({}, 1_500_000, 0),  # the injury of the head alone
    ({"household_goods_lost": True}, 2_500_000, 1_500_000),
    ({"damage": L.HANKAI}, 2_700_000, 1_700_000),
    ({"damage": L.CHUKIBO_HANKAI}, 2_700_000, 1_700_000),  # a kind of 半壊
    ({"damage": L.DAIKIBO_HANKAI, "household_goods_lost": True}, 2_700_000, 1_700_000),
    ({"damage": L.ZENKAI}, 3_500_000, 2_500_000),
    ({"dwelling_lost": True}, 3_500_000, 3_500_000),
    ({"dwelling_lost": True, "damage": L.ZENKAI}, 3_500_000, 3_500_000),
    ({"damage": L.HANKAI, "rest_demolished": True}, 3_500_000, 2_500_000),
    ({"damage": L.DAIKIBO_HANKAI, "rest_demolished": True}, 3_500_000, 2_500_000),
    ({"damage": L.ZENKAI, "rest_demolished": True}, 3_500_000, 3_500_000),
    ({"damage": L.JUN_HANKAI}, 1_500_000, 0),  # below 半壊: nothing for the dwelling
    ({"damage": L.ICHIBU_SONKAI, "household_goods_lost": True}, 2_500_000, 1_500_000),
])
def test_the_limits(case: dict[str, object], with_injury: int, without_injury: int) -> None:
    assert relief_loan_limit(head_injured=True, **case).limit == with_injury  # type: ignore[arg-type]
    assert relief_loan_limit(head_injured=False, **case).limit == without_injury  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "limit"), [(1, 2_200_000), (2, 4_300_000), (3, 6_200_000), (4, 7_300_000),
                                             (5, 7_600_000), (6, 7_900_000), (10, 9_100_000)])
def test_the_income_limits(size: int, limit: int) -> None:
    assert relief_loan_income_limit(size) == limit
    assert relief_loan_income_limit(size, dwelling_lost=True) == 12_700_000
    assert under_relief_loan_income_limit(size, limit - 1)
    assert not under_relief_loan_income_limit(size, limit)  # the income must be below the limit
    assert under_relief_loan_income_limit(size, limit, dwelling_lost=True) is (limit < 12_700_000)


@given(st.integers(min_value=4, max_value=200))
def test_each_further_person_adds_300000(size: int) -> None:
    assert relief_loan_income_limit(size + 1) - relief_loan_income_limit(size) == 300_000


@given(st.booleans(), st.booleans(), st.sampled_from([None, *L]), st.booleans())
def test_limits_are_never_negative_and_an_injury_never_lowers_them(goods: bool, demolished: bool,
                                                                    level: DamageLevel | None, lost: bool) -> None:
    try:
        without = relief_loan_limit(head_injured=False, household_goods_lost=goods, damage=level,
                                    dwelling_lost=lost, rest_demolished=demolished)
    except InvalidArgumentError:
        return  # a contradictory case, refused (tested below)
    injured = relief_loan_limit(head_injured=True, household_goods_lost=goods, damage=level,
                                dwelling_lost=lost, rest_demolished=demolished)
    assert 0 <= without.limit <= injured.limit <= 3_500_000


@pytest.mark.parametrize(("case", "argument", "reason"), [
    ({"rest_demolished": True}, "rest_demolished", "applies only to a 半壊 or 全壊 dwelling"),
    ({"rest_demolished": True, "damage": L.JUN_HANKAI}, "rest_demolished", "not to 準半壊"),
    ({"dwelling_lost": True, "damage": L.HANKAI}, "dwelling_lost", "is 全壊, not 半壊"),
    ({"dwelling_lost": True, "rest_demolished": True}, "rest_demolished", "nothing is left"),
    ({"damage": "ZENKAI"}, "damage", "must be a damage level"),
    ({"household_goods_lost": 1}, "household_goods_lost", "true or false"),
])
def test_contradictions_are_refused_naming_the_argument(case: dict[str, object], argument: str,
                                                        reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        relief_loan_limit(head_injured=False, **case)  # type: ignore[arg-type]
    assert caught.value.argument == argument and reason in caught.value.reason


@pytest.mark.parametrize(("size", "income", "argument"), [(0, 1, "household_size"), (-1, 1, "household_size"),
                                                          (2, -1, "income"), (2, 1.5, "income")])
def test_bad_income_inputs(size: int, income: int, argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        under_relief_loan_income_limit(size, income)
    assert caught.value.argument == argument
