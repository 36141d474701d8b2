"""被災者生活再建支援金 (docs/domain.md §6.4): every amount of the table for every damage code and way of
rebuilding, a one-person household at three quarters, rent-then-build capped at the build amount, and
impossible inputs refused naming the argument."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.damage_levels import DamageLevel
from domain.errors import InvalidArgumentError
from domain.livelihood_recovery_support import (
    SUPPORT_DAMAGE_CODES,
    DwellingLoss,
    Rebuild,
    SupportDamage,
    livelihood_support,
    support_damage,
)

L, X, R = DamageLevel, DwellingLoss, Rebuild
ALL_DAMAGE: list[SupportDamage] = [*L, *X]

# The table of §6.4 written out, for a household of two or more: damage → (basic, {rebuild: additional}).
FULL = {R.BUILD: 2_000_000, R.REPAIR: 1_000_000, R.RENT: 500_000, R.RENT_THEN_BUILD: 2_000_000, R.NONE: 0}
HALF = {R.BUILD: 1_000_000, R.REPAIR: 500_000, R.RENT: 250_000, R.RENT_THEN_BUILD: 1_000_000, R.NONE: 0}
NONE = dict.fromkeys(R, 0)
TABLE: dict[SupportDamage, tuple[int, dict[Rebuild, int]]] = {
    L.ZENKAI: (1_000_000, FULL),
    X.DEMOLISHED: (1_000_000, FULL),
    X.LONG_TERM_EVACUATION: (1_000_000, FULL),
    L.DAIKIBO_HANKAI: (500_000, FULL),
    L.CHUKIBO_HANKAI: (0, HALF),
    L.HANKAI: (0, NONE),
    L.JUN_HANKAI: (0, NONE),
    L.ICHIBU_SONKAI: (0, NONE),
}
# The same for a one-person household (three quarters), written out rather than computed.
ONE_PERSON_FULL = {R.BUILD: 1_500_000, R.REPAIR: 750_000, R.RENT: 375_000, R.RENT_THEN_BUILD: 1_500_000, R.NONE: 0}
ONE_PERSON_HALF = {R.BUILD: 750_000, R.REPAIR: 375_000, R.RENT: 187_500, R.RENT_THEN_BUILD: 750_000, R.NONE: 0}
ONE_PERSON: dict[SupportDamage, tuple[int, dict[Rebuild, int]]] = {
    L.ZENKAI: (750_000, ONE_PERSON_FULL),
    X.DEMOLISHED: (750_000, ONE_PERSON_FULL),
    X.LONG_TERM_EVACUATION: (750_000, ONE_PERSON_FULL),
    L.DAIKIBO_HANKAI: (375_000, ONE_PERSON_FULL),
    L.CHUKIBO_HANKAI: (0, ONE_PERSON_HALF),
    L.HANKAI: (0, NONE),
    L.JUN_HANKAI: (0, NONE),
    L.ICHIBU_SONKAI: (0, NONE),
}


@pytest.mark.parametrize("size", [2, 3, 7])
@pytest.mark.parametrize("rebuild", list(R))
@pytest.mark.parametrize("damage", ALL_DAMAGE)
def test_the_table(damage: SupportDamage, rebuild: Rebuild, size: int) -> None:
    basic, additional = TABLE[damage]
    support = livelihood_support(damage, rebuild, size)
    assert (support.basic, support.additional, support.total) == (basic, additional[rebuild],
                                                                  basic + additional[rebuild])


@pytest.mark.parametrize("rebuild", list(R))
@pytest.mark.parametrize("damage", ALL_DAMAGE)
def test_the_table_of_a_one_person_household(damage: SupportDamage, rebuild: Rebuild) -> None:
    basic, additional = ONE_PERSON[damage]
    support = livelihood_support(damage, rebuild, 1)
    assert (support.basic, support.additional) == (basic, additional[rebuild])


def test_rent_then_build_pays_the_rent_first_then_up_to_the_build_amount() -> None:
    assert livelihood_support(L.ZENKAI, R.RENT_THEN_BUILD, 4).additional_payments == (500_000, 1_500_000)
    assert livelihood_support(L.CHUKIBO_HANKAI, R.RENT_THEN_BUILD, 4).additional_payments == (250_000, 750_000)
    assert livelihood_support(L.DAIKIBO_HANKAI, R.RENT_THEN_BUILD, 1).additional_payments == (375_000, 1_125_000)
    assert livelihood_support(L.HANKAI, R.RENT_THEN_BUILD, 4).additional_payments == ()


@given(st.sampled_from(ALL_DAMAGE), st.sampled_from(list(R)), st.integers(min_value=2, max_value=50))
def test_a_one_person_household_gets_exactly_three_quarters(damage: SupportDamage, rebuild: Rebuild,
                                                            size: int) -> None:
    one, more = livelihood_support(damage, rebuild, 1), livelihood_support(damage, rebuild, size)
    assert one.basic * 4 == more.basic * 3
    assert [p * 4 for p in one.additional_payments] == [p * 3 for p in more.additional_payments]
    assert one.total * 4 == more.total * 3


@given(st.sampled_from(ALL_DAMAGE), st.sampled_from(list(R)), st.integers(min_value=1, max_value=1000))
def test_amounts_are_never_negative_and_rent_then_build_never_exceeds_build(damage: SupportDamage,
                                                                            rebuild: Rebuild, size: int) -> None:
    support = livelihood_support(damage, rebuild, size)
    assert support.basic >= 0 and all(p >= 0 for p in support.additional_payments)
    assert support.total == support.basic + sum(support.additional_payments)
    build = livelihood_support(damage, R.BUILD, size).additional
    assert livelihood_support(damage, R.RENT_THEN_BUILD, size).additional <= build
    assert support.additional <= build


@given(st.sampled_from(list(R)), st.integers(min_value=1, max_value=10))
def test_a_worse_level_never_gets_less(rebuild: Rebuild, size: int) -> None:
    totals = [livelihood_support(level, rebuild, size).total for level in L]  # from the worst
    assert totals == sorted(totals, reverse=True)


def test_codes() -> None:
    assert SUPPORT_DAMAGE_CODES == ("ZENKAI", "DAIKIBO_HANKAI", "CHUKIBO_HANKAI", "HANKAI", "JUN_HANKAI",
                                    "ICHIBU_SONKAI", "DEMOLISHED", "LONG_TERM_EVACUATION")
    assert support_damage("demolished") is X.DEMOLISHED
    assert support_damage("Zenkai") is L.ZENKAI
    assert [x.japanese for x in X] == ["解体", "長期避難"]
    with pytest.raises(InvalidArgumentError, match=r"^damage: unknown damage code 'ZENKAl'") as caught:
        support_damage("ZENKAl")
    assert "LONG_TERM_EVACUATION" in caught.value.reason


@pytest.mark.parametrize(("damage", "rebuild", "size", "argument"), [
    (L.ZENKAI, R.BUILD, 0, "household_size"),
    (L.ZENKAI, R.BUILD, -3, "household_size"),
    (L.ZENKAI, R.BUILD, 2.5, "household_size"),
    (L.ZENKAI, R.BUILD, True, "household_size"),
    ("ZENKAI", R.BUILD, 2, "damage"),
    (L.ZENKAI, "build", 2, "rebuild"),
])
def test_impossible_inputs_are_refused_naming_the_argument(damage: object, rebuild: object, size: object,
                                                           argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        livelihood_support(damage, rebuild, size)  # type: ignore[arg-type]
    assert caught.value.argument == argument
