"""被災者生活再建支援金, the livelihood recovery support paid to a household whose dwelling a disaster damaged
(docs/domain.md §6.4), as pure functions returning yen.

Two parts: the basic support (基礎支援金) by the damage, and the additional support (加算支援金) by how the
household will live again (建設・購入, 補修, 賃借). The damage is one of the six levels of §6.2 or one of two
cases that count as a lost dwelling although no survey says 全壊: the dwelling had to be demolished (解体) or
the area is closed for a long time (長期避難). A one-person household gets three quarters of every amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from domain.damage_levels import DamageLevel
from domain.errors import InvalidArgumentError
from domain.household_size import check_household_size


class DwellingLoss(StrEnum):
    """The two cases beside the six levels that the support treats like 全壊."""

    DEMOLISHED = "DEMOLISHED"  # 解体: demolished because of the damage (or unavoidably for repairs)
    LONG_TERM_EVACUATION = "LONG_TERM_EVACUATION"  # 長期避難: the area stays uninhabitable for long

    @property
    def japanese(self) -> str:
        return "解体" if self is DwellingLoss.DEMOLISHED else "長期避難"


SupportDamage = DamageLevel | DwellingLoss
# Every code the support accepts for the damage, the six levels first.
SUPPORT_DAMAGE_CODES: tuple[str, ...] = (*DamageLevel, *DwellingLoss)


def support_damage(code: str, argument: str = "damage") -> SupportDamage:
    """The damage of a code: a level of §6.2 or DEMOLISHED / LONG_TERM_EVACUATION, in either case."""
    text = code.strip().upper()
    for kind in (DamageLevel, DwellingLoss):
        if text in kind.__members__:
            return kind(text)
    raise InvalidArgumentError(argument, f"unknown damage code {code!r} (one of {', '.join(SUPPORT_DAMAGE_CODES)})")


class Rebuild(StrEnum):
    """How the household will live again, which decides the additional support."""

    BUILD = "build"  # 建設・購入: build or buy a dwelling
    REPAIR = "repair"  # 補修
    RENT = "rent"  # 賃借: rent one (public housing does not count)
    RENT_THEN_BUILD = "rent-then-build"  # first rent, later build or buy: both paid, at most BUILD in total
    NONE = "none"  # not decided (yet), or none of these: the basic support only


FULL_BASIC = 1_000_000  # 全壊, 解体, 長期避難
HALF_BASIC = 500_000  # 大規模半壊
# The additional support of a household with the full basic support or 大規模半壊.
FULL_ADDITIONAL: Mapping[Rebuild, int] = MappingProxyType({
    Rebuild.BUILD: 2_000_000,
    Rebuild.REPAIR: 1_000_000,
    Rebuild.RENT: 500_000,
})

_BASIC: Mapping[SupportDamage, int] = MappingProxyType({
    DamageLevel.ZENKAI: FULL_BASIC,
    DwellingLoss.DEMOLISHED: FULL_BASIC,
    DwellingLoss.LONG_TERM_EVACUATION: FULL_BASIC,
    DamageLevel.DAIKIBO_HANKAI: HALF_BASIC,
})
# The share of FULL_ADDITIONAL a damage gets: 中規模半壊 half of it (and no basic support), 半壊 and below none.
_ADDITIONAL_SHARE: Mapping[SupportDamage, tuple[int, int]] = MappingProxyType({
    DamageLevel.ZENKAI: (1, 1),
    DwellingLoss.DEMOLISHED: (1, 1),
    DwellingLoss.LONG_TERM_EVACUATION: (1, 1),
    DamageLevel.DAIKIBO_HANKAI: (1, 1),
    DamageLevel.CHUKIBO_HANKAI: (1, 2),
})
# A one-person household gets this share of every amount.
ONE_PERSON_SHARE = (3, 4)


@dataclass(frozen=True)
class LivelihoodSupport:
    """The amounts of one household, yen. `additional_payments` are the additional support in the order paid:
    one payment, or for RENT_THEN_BUILD the rent first and then what brings it up to the build amount."""

    basic: int
    additional_payments: tuple[int, ...]

    @property
    def additional(self) -> int:
        return sum(self.additional_payments)

    @property
    def total(self) -> int:
        return self.basic + self.additional


def _share(amount: int, share: tuple[int, int]) -> int:
    numerator, denominator = share
    whole, rest = divmod(amount * numerator, denominator)
    # Every amount of the law is a multiple of 500,000, so its half and three quarters of that are whole yen;
    # a remainder would mean a changed table, whose rounding must be decided, not done silently here.
    assert rest == 0, (amount, share)
    return whole


def livelihood_support(damage: SupportDamage, rebuild: Rebuild, household_size: int) -> LivelihoodSupport:
    """The basic and additional support of a household of `household_size` people."""
    if not isinstance(damage, DamageLevel | DwellingLoss):
        raise InvalidArgumentError("damage", f"must be a damage level or DEMOLISHED/LONG_TERM_EVACUATION, "
                                             f"got {damage!r}")
    if not isinstance(rebuild, Rebuild):
        raise InvalidArgumentError("rebuild", f"must be one of {', '.join(Rebuild)}, got {rebuild!r}")
    people = check_household_size(household_size)

    def scaled(amount: int) -> int:
        return _share(amount, ONE_PERSON_SHARE) if people == 1 else amount

    def additional(plan: Rebuild) -> int:
        return scaled(_share(FULL_ADDITIONAL[plan], _ADDITIONAL_SHARE[damage]))

    basic = scaled(_BASIC.get(damage, 0))
    if rebuild is Rebuild.NONE or damage not in _ADDITIONAL_SHARE:
        payments: tuple[int, ...] = ()
    elif rebuild is Rebuild.RENT_THEN_BUILD:
        rent, build = additional(Rebuild.RENT), additional(Rebuild.BUILD)
        payments = (rent, build - rent)  # the rent first; building later brings the whole to the build amount
    else:
        payments = (additional(rebuild),)
    return LivelihoodSupport(basic, payments)
