"""Damage levels of docs/domain.md §6.2: every boundary exactly, a ratio outside 0–1 or not a number refused
naming the argument, the level monotone in the ratio, and the flood depth."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.damage_levels import DamageLevel, FloodDepth, damage_level, flood_depth, level_for, read_loss_ratio
from domain.errors import BclError, InvalidArgumentError

L = DamageLevel


@pytest.mark.parametrize(
    ("ratio", "code", "japanese"),
    [
        (1, "ZENKAI", "全壊"),
        ("0.5", "ZENKAI", "全壊"),
        (0.5, "ZENKAI", "全壊"),
        (Decimal("0.50"), "ZENKAI", "全壊"),
        ("0.4999999999999999999999999", "DAIKIBO_HANKAI", "大規模半壊"),
        ("0." + "4" + "9" * 5000, "DAIKIBO_HANKAI", "大規模半壊"),
        (0.49999999999999994, "DAIKIBO_HANKAI", "大規模半壊"),  # the largest float below 0.5
        ("0.4", "DAIKIBO_HANKAI", "大規模半壊"),
        (0.4, "DAIKIBO_HANKAI", "大規模半壊"),
        ("0.3999999999999", "CHUKIBO_HANKAI", "中規模半壊"),
        (0.3, "CHUKIBO_HANKAI", "中規模半壊"),  # the float 0.3 lies just below 3/10 in binary: read as 0.3
        (Decimal("0.3"), "CHUKIBO_HANKAI", "中規模半壊"),
        ("0.2999999999999", "HANKAI", "半壊"),
        ("0.2", "HANKAI", "半壊"),
        ("0.1999999999999", "JUN_HANKAI", "準半壊"),
        (0.1, "JUN_HANKAI", "準半壊"),
        ("0.0999999999999", "ICHIBU_SONKAI", "準半壊に至らない（一部損壊）"),
        (0, "ICHIBU_SONKAI", "準半壊に至らない（一部損壊）"),
        ("1e-999999999", "ICHIBU_SONKAI", "準半壊に至らない（一部損壊）"),  # compared, never expanded
    ],
)
def test_every_boundary(ratio: object, code: str, japanese: str) -> None:
    level = level_for(ratio)  # type: ignore[arg-type]
    assert (level.value, level.japanese) == (code, japanese)


def test_the_thresholds_are_those_of_the_table() -> None:
    assert [(lvl.value, lvl.lowest_loss_ratio) for lvl in L] == [
        ("ZENKAI", Decimal("0.5")), ("DAIKIBO_HANKAI", Decimal("0.4")), ("CHUKIBO_HANKAI", Decimal("0.3")),
        ("HANKAI", Decimal("0.2")), ("JUN_HANKAI", Decimal("0.1")), ("ICHIBU_SONKAI", 0)]
    assert [lvl.severity for lvl in L] == [5, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("ratio", [-0.0001, "-0.1", 1.0000001, "1.5", 50, float("nan"), float("inf"), "nan",
                                   "Infinity", "-1e-999999999", "1e999999999", "abc", "", "1/3", None, True, [0.5],
                                   Decimal("NaN")])
def test_a_ratio_outside_0_to_1_or_not_a_number_is_refused_naming_the_argument(ratio: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        level_for(ratio)  # type: ignore[arg-type]
    assert caught.value.argument == "loss_ratio"
    assert str(caught.value).startswith("loss_ratio: ") and repr(ratio) in str(caught.value)
    assert isinstance(caught.value, BclError)


def test_the_caller_names_the_argument() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^survey ratio: ") as caught:
        level_for(2, argument="survey ratio")
    assert caught.value.argument == "survey ratio"


RATIOS = st.decimals(min_value=0, max_value=1, allow_nan=False)


@given(RATIOS, RATIOS)
def test_the_level_is_monotone_in_the_loss_ratio(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert level_for(low).severity <= level_for(high).severity


@given(RATIOS)
def test_the_level_is_the_one_whose_range_holds_the_ratio(ratio: Decimal) -> None:
    level = level_for(ratio)
    assert level.lowest_loss_ratio <= ratio
    worse = [lvl for lvl in L if lvl.severity == level.severity + 1]
    assert not worse or ratio < worse[0].lowest_loss_ratio


@given(st.floats(min_value=0, max_value=1))
def test_a_float_is_read_as_the_decimal_it_prints_as(ratio: float) -> None:
    assert read_loss_ratio(ratio) == Decimal(repr(ratio))
    assert level_for(ratio) is level_for(repr(ratio))


def test_codes_are_read_in_either_case_and_an_unknown_one_is_refused() -> None:
    assert damage_level("zenkai") is L.ZENKAI
    assert damage_level(" Jun_Hankai ") is L.JUN_HANKAI
    with pytest.raises(InvalidArgumentError, match=r"^damage: unknown damage level 'DEMOLISHED'"):
        damage_level("DEMOLISHED")  # a case of the support, not a level


def test_flood_depth() -> None:
    assert [(d.value, d.japanese) for d in FloodDepth] == [("ABOVE_FLOOR", "床上浸水"), ("BELOW_FLOOR", "床下浸水")]
    assert flood_depth("床上") is FloodDepth.ABOVE_FLOOR
    assert flood_depth("床下浸水") is FloodDepth.BELOW_FLOOR
    assert flood_depth("above_floor") is FloodDepth.ABOVE_FLOOR
    with pytest.raises(InvalidArgumentError, match=r"^flood_depth: unknown flood depth '1m'"):
        flood_depth("1m")
