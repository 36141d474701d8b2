"""災害援護資金, the loan a household head can take after a disaster (docs/domain.md §6.4): its limit by what
the disaster did to the head and the household, and the income limit a household must be under.

The dwelling's damage is a level of §6.2. The loan knows only 半壊 and 全壊: 大規模半壊 and 中規模半壊 are
kinds of 半壊 and count as 半壊; 準半壊 and 一部損壊 count as no damage to the dwelling (the household goods
may still be lost). A dwelling lost entirely (流失, 滅失) is 全壊 and more; the rest of a dwelling that must be
demolished raises the limit of a 半壊 or 全壊.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from domain.damage_levels import DamageLevel
from domain.errors import InvalidArgumentError
from domain.household_size import check_household_size


class _Case(Enum):
    """The rows of the limit table, from the worst."""

    DWELLING_LOST = "dwelling lost entirely"
    ZENKAI_REST_DEMOLISHED = "全壊, the rest demolished"
    ZENKAI = "全壊"
    HANKAI_REST_DEMOLISHED = "半壊, the rest demolished"
    HANKAI = "半壊"
    HOUSEHOLD_GOODS = "household goods ≥ 1/3 lost"
    NONE = "no damage to the dwelling or the household goods"


# (with an injury of the head of a month or more, without): yen.
_LIMITS: Mapping[_Case, tuple[int, int]] = MappingProxyType({
    _Case.DWELLING_LOST: (3_500_000, 3_500_000),
    _Case.ZENKAI_REST_DEMOLISHED: (3_500_000, 3_500_000),
    _Case.ZENKAI: (3_500_000, 2_500_000),
    _Case.HANKAI_REST_DEMOLISHED: (3_500_000, 2_500_000),
    _Case.HANKAI: (2_700_000, 1_700_000),
    _Case.HOUSEHOLD_GOODS: (2_500_000, 1_500_000),
    _Case.NONE: (1_500_000, 0),  # the injury of the head alone; nothing at all is no loan
})

_HANKAI_KINDS = frozenset({DamageLevel.DAIKIBO_HANKAI, DamageLevel.CHUKIBO_HANKAI, DamageLevel.HANKAI})

# The household's income of the previous year must be below these, by the number of people.
INCOME_LIMITS: Mapping[int, int] = MappingProxyType({1: 2_200_000, 2: 4_300_000, 3: 6_200_000, 4: 7_300_000})
INCOME_LIMIT_PER_FURTHER_PERSON = 300_000
INCOME_LIMIT_DWELLING_LOST = 12_700_000  # whatever the size of the household


@dataclass(frozen=True)
class ReliefLoanLimit:
    limit: int  # yen; 0 when the disaster did nothing the loan is for
    case: str  # the row of the table that applied, for people to read


def _case(damage: DamageLevel | None, dwelling_lost: bool, rest_demolished: bool,
          household_goods_lost: bool) -> _Case:
    if damage is not None and not isinstance(damage, DamageLevel):
        raise InvalidArgumentError("damage", f"must be a damage level, got {damage!r}")
    if dwelling_lost:
        if damage not in (None, DamageLevel.ZENKAI):
            raise InvalidArgumentError("dwelling_lost", f"a dwelling lost entirely is 全壊, not {damage.japanese}")
        if rest_demolished:
            raise InvalidArgumentError("rest_demolished", "nothing is left to demolish of a dwelling lost entirely")
        return _Case.DWELLING_LOST
    if damage is DamageLevel.ZENKAI:
        return _Case.ZENKAI_REST_DEMOLISHED if rest_demolished else _Case.ZENKAI
    if damage in _HANKAI_KINDS:
        return _Case.HANKAI_REST_DEMOLISHED if rest_demolished else _Case.HANKAI
    if rest_demolished:
        shown = "a dwelling of no damage level" if damage is None else damage.japanese
        raise InvalidArgumentError("rest_demolished", f"applies only to a 半壊 or 全壊 dwelling, not to {shown}")
    return _Case.HOUSEHOLD_GOODS if household_goods_lost else _Case.NONE


def relief_loan_limit(*, head_injured: bool, household_goods_lost: bool = False,
                      damage: DamageLevel | None = None, dwelling_lost: bool = False,
                      rest_demolished: bool = False) -> ReliefLoanLimit:
    """The most the household head can borrow. `head_injured`: an injury needing a month or more of care;
    `household_goods_lost`: a third or more of the household goods (家財) lost; `damage`: the level of the
    dwelling; `dwelling_lost`: the dwelling lost entirely; `rest_demolished`: what is left of a 半壊 or 全壊
    dwelling must be demolished."""
    for name, flag in (("head_injured", head_injured), ("household_goods_lost", household_goods_lost),
                       ("dwelling_lost", dwelling_lost), ("rest_demolished", rest_demolished)):
        if not isinstance(flag, bool):
            raise InvalidArgumentError(name, f"must be true or false, got {flag!r}")
    case = _case(damage, dwelling_lost, rest_demolished, household_goods_lost)
    with_injury, without_injury = _LIMITS[case]
    return ReliefLoanLimit(with_injury if head_injured else without_injury, case.value)


def relief_loan_income_limit(household_size: int, dwelling_lost: bool = False) -> int:
    """The income (previous year, whole household, yen) the household must be below to borrow."""
    people = check_household_size(household_size)
    if dwelling_lost:
        return INCOME_LIMIT_DWELLING_LOST
    largest = max(INCOME_LIMITS)
    return INCOME_LIMITS[min(people, largest)] + INCOME_LIMIT_PER_FURTHER_PERSON * max(0, people - largest)


def under_relief_loan_income_limit(household_size: int, income: int, dwelling_lost: bool = False) -> bool:
    """Whether a household of `household_size` people with `income` yen last year is under the income limit."""
    if isinstance(income, bool) or not isinstance(income, int):
        raise InvalidArgumentError("income", f"must be a whole number of yen, got {income!r}")
    if income < 0:
        raise InvalidArgumentError("income", f"cannot be negative, got {income}")
    return income < relief_loan_income_limit(household_size, dwelling_lost)
