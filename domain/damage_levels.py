"""The damage levels of a dwelling (住家被害認定, docs/domain.md §6.2), decided by its economic loss ratio
(損害割合), and the flood depth a survey may record (床上/床下浸水).

Each level is stated once, with its code (the symbol other parts of the project store), its Japanese name and
the lowest loss ratio it starts at. Ratios are compared exactly: a ratio is read as a decimal (a float as the
decimal it prints as), so 0.5 is 全壊 and 0.4999… is 大規模半壊 however many nines it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType

from domain.errors import InvalidArgumentError


class DamageLevel(StrEnum):
    """The six levels, from the worst. The order of the members is the order of the thresholds."""

    ZENKAI = "ZENKAI"
    DAIKIBO_HANKAI = "DAIKIBO_HANKAI"
    CHUKIBO_HANKAI = "CHUKIBO_HANKAI"
    HANKAI = "HANKAI"
    JUN_HANKAI = "JUN_HANKAI"
    ICHIBU_SONKAI = "ICHIBU_SONKAI"

    @property
    def japanese(self) -> str:
        return _JAPANESE[self]

    @property
    def lowest_loss_ratio(self) -> Decimal:
        """The loss ratio this level starts at (inclusive); it runs up to the next worse level's, exclusive."""
        return _LOWEST_LOSS_RATIO[self]

    @property
    def severity(self) -> int:
        """0 for 一部損壊 up to 5 for 全壊: larger is worse, so levels can be compared."""
        return len(DamageLevel) - 1 - list(DamageLevel).index(self)


_JAPANESE: Mapping[DamageLevel, str] = MappingProxyType({
    DamageLevel.ZENKAI: "全壊",
    DamageLevel.DAIKIBO_HANKAI: "大規模半壊",
    DamageLevel.CHUKIBO_HANKAI: "中規模半壊",
    DamageLevel.HANKAI: "半壊",
    DamageLevel.JUN_HANKAI: "準半壊",
    DamageLevel.ICHIBU_SONKAI: "準半壊に至らない（一部損壊）",
})

_LOWEST_LOSS_RATIO: Mapping[DamageLevel, Decimal] = MappingProxyType({
    DamageLevel.ZENKAI: Decimal("0.5"),
    DamageLevel.DAIKIBO_HANKAI: Decimal("0.4"),
    DamageLevel.CHUKIBO_HANKAI: Decimal("0.3"),
    DamageLevel.HANKAI: Decimal("0.2"),
    DamageLevel.JUN_HANKAI: Decimal("0.1"),
    DamageLevel.ICHIBU_SONKAI: Decimal("0"),
})

LossRatio = int | float | Decimal | str


def read_loss_ratio(value: LossRatio, argument: str = "loss_ratio") -> Decimal:
    """The loss ratio as an exact decimal from 0 to 1. A string is read as a decimal number ("0.35"; "1/3" is
    refused), a float as the decimal it prints as (0.3 is 0.3, not the binary number nearest to it). Decimals
    compare exactly whatever their digits or exponent, so no input can make the comparison costly."""
    not_a_number = InvalidArgumentError(argument, f"must be a number from 0 to 1, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise not_a_number
    try:
        ratio = Decimal(repr(value) if isinstance(value, float) else value.strip() if isinstance(value, str)
                        else value)
    except InvalidOperation:  # "abc", "1/3"
        raise not_a_number from None
    if not ratio.is_finite():  # NaN, Infinity
        raise not_a_number
    if not 0 <= ratio <= 1:
        raise InvalidArgumentError(argument, f"must be from 0 to 1 (a ratio, not a percentage), got {value!r}")
    return ratio


def level_for(loss_ratio: LossRatio, argument: str = "loss_ratio") -> DamageLevel:
    """The level of a dwelling whose loss ratio is `loss_ratio` (0 to 1)."""
    ratio = read_loss_ratio(loss_ratio, argument)
    return next(level for level in DamageLevel if ratio >= level.lowest_loss_ratio)


def damage_level(code: str, argument: str = "damage") -> DamageLevel:
    """The level of a code (ZENKAI, …), in either case; an unknown code is refused listing the known ones."""
    try:
        return DamageLevel(code.strip().upper())
    except ValueError:
        raise InvalidArgumentError(argument, f"unknown damage level {code!r} (one of {', '.join(DamageLevel)})") \
            from None


class FloodDepth(StrEnum):
    """How deep a flooded dwelling stood in water, as a survey records it beside the level."""

    ABOVE_FLOOR = "ABOVE_FLOOR"  # 床上浸水: the water rose above the floor of the living rooms
    BELOW_FLOOR = "BELOW_FLOOR"  # 床下浸水: below it

    @property
    def japanese(self) -> str:
        return "床上浸水" if self is FloodDepth.ABOVE_FLOOR else "床下浸水"


def flood_depth(code: str, argument: str = "flood_depth") -> FloodDepth:
    """The flood depth of a code (ABOVE_FLOOR, BELOW_FLOOR) or of its Japanese name (床上浸水/床上, 床下浸水/床下)."""
    text = code.strip()
    for depth in FloodDepth:
        if text.upper() == depth.value or text in (depth.japanese, depth.japanese.removesuffix("浸水")):
            return depth
    raise InvalidArgumentError(argument, f"unknown flood depth {code!r} (ABOVE_FLOOR 床上 or BELOW_FLOOR 床下)")
