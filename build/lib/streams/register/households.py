"""Household composition of the synthetic register: sizes, members, their 続柄 and ages.

Sizes follow the 2020 census (一般世帯): 38 % one person, 28 % two, 17 % three, 12 % four, 5 %
five or more. Each size has a few typical compositions (couples, parents with children, a parent
living with an adult child, three generations, ...). Ages are drawn per composition so that the
whole register ages like Japan's population (about 12 % under 15 and 29 % aged 65 or more); the
head's age bands below were tuned for that.

A `Uniform` is any callable returning floats in [0, 1): the builder passes a cursor over a numpy
array drawn in bulk, the simulator a seeded numpy generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Uniform = Callable[[], float]

HOUSEHOLD_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
HOUSEHOLD_SIZE_WEIGHTS: tuple[float, ...] = (0.38, 0.28, 0.17, 0.12, 0.035, 0.012, 0.003)

HEAD = "世帯主"
MALE, FEMALE = "MALE", "FEMALE"
MAX_AGE = 104.0

# Age bands (from, to, weight) of the household head, per composition.
_SINGLE_AGES = ((18, 25, 0.13), (25, 35, 0.14), (35, 45, 0.09), (45, 55, 0.10), (55, 65, 0.10),
                (65, 75, 0.17), (75, 85, 0.17), (85, 100, 0.10))
_COUPLE_AGES = ((22, 35, 0.07), (35, 50, 0.08), (50, 65, 0.18), (65, 75, 0.32), (75, 94, 0.35))
_PARENT_AGES = ((27, 35, 0.12), (35, 45, 0.28), (45, 55, 0.30), (55, 70, 0.19), (70, 85, 0.11))
_ELDER_HEAD_AGES = ((60, 70, 0.4), (70, 80, 0.4), (80, 90, 0.2))


@dataclass(frozen=True)
class Member:
    relationship: str
    sex: str
    age: float  # years, fractional


def pick(u: Uniform, weights: Sequence[float]) -> int:
    """Index drawn with the given (not necessarily normalised) weights."""
    target = u() * sum(weights)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if target < acc:
            return i
    return len(weights) - 1


def _band_age(u: Uniform, bands: Sequence[tuple[float, float, float]]) -> float:
    lo, hi, _ = bands[pick(u, [b[2] for b in bands])]
    return lo + (hi - lo) * u()


def _clip(age: float) -> float:
    return min(MAX_AGE, max(0.0, age))


def _spouse(u: Uniform, head_age: float, head_sex: str) -> Member:
    # Husbands are on average about two years older than their wives.
    gap = -1.5 + 7.0 * u()
    if head_sex == MALE:
        return Member("妻", FEMALE, _clip(max(18.0, head_age - gap)))
    return Member("夫", MALE, _clip(max(18.0, head_age + gap)))


def _sex(u: Uniform, male_share: float = 0.512) -> str:
    # 105 boys per 100 girls at birth.
    return MALE if u() < male_share else FEMALE


def children(u: Uniform, mother_age: float, count: int) -> list[Member]:
    """`count` children of a mother of `mother_age`, eldest first, at least a year apart on average."""
    eldest = mother_age - (22.0 + 16.0 * u())
    eldest = max(eldest, 1.5 * (count - 1) + u())
    members = []
    age = eldest
    for _ in range(count):
        members.append(Member("子", _sex(u), _clip(age)))
        age = max(0.0, age - (1.0 + 4.0 * u()))
    return members


def _parent_of(u: Uniform, child_age: float) -> Member:
    # Widowed mothers far outnumber widowed fathers among parents living with their children.
    age = _clip(child_age + 24.0 + 12.0 * u())
    return Member("母", FEMALE, age) if u() < 0.75 else Member("父", MALE, age)


def _couple(u: Uniform, bands: Sequence[tuple[float, float, float]]) -> tuple[Member, Member]:
    head_sex = MALE if u() < 0.95 else FEMALE
    head = Member(HEAD, head_sex, _band_age(u, bands))
    return head, _spouse(u, head.age, head_sex)


def _mother_age(head: Member, spouse: Member) -> float:
    return spouse.age if spouse.sex == FEMALE else head.age


def single(u: Uniform) -> list[Member]:
    age = _band_age(u, _SINGLE_AGES)
    # Young people living alone are more often men, old people living alone more often women.
    return [Member(HEAD, _sex(u, 0.58 if age < 60 else 0.33), age)]


def compose(size: int, u: Uniform) -> list[Member]:
    """The members of one household of `size` people, head first."""
    if size == 1:
        return single(u)
    if size == 2:
        kind = pick(u, (0.62, 0.20, 0.10, 0.04, 0.04))
        if kind == 0:
            return list(_couple(u, _COUPLE_AGES))
        if kind == 1:  # single parent and a child
            head = Member(HEAD, _sex(u, 0.25), 30.0 + 50.0 * u())
            return [head, *children(u, head.age, 1)]
        if kind == 2:  # an unmarried adult living with a parent
            head = Member(HEAD, _sex(u, 0.55), 35.0 + 30.0 * u())
            return [head, _parent_of(u, head.age)]
        if kind == 3:  # siblings
            head = Member(HEAD, _sex(u), 25.0 + 55.0 * u())
            other_age = _clip(head.age + (-8.0 + 16.0 * u()))
            other_sex = _sex(u)
            rel = {(True, MALE): "兄", (True, FEMALE): "姉", (False, MALE): "弟", (False, FEMALE): "妹"}[
                (other_age > head.age, other_sex)
            ]
            return [head, Member(rel, other_sex, other_age)]
        head = Member(HEAD, _sex(u), 20.0 + 20.0 * u())  # sharing a flat
        return [head, Member("同居人", _sex(u), _clip(head.age + (-4.0 + 8.0 * u())))]
    if size == 3:
        kind = pick(u, (0.70, 0.13, 0.17))
        if kind == 0:
            head, spouse = _couple(u, (*_PARENT_AGES, (70, 85, 0.10)))
            return [head, spouse, *children(u, _mother_age(head, spouse), 1)]
        if kind == 1:
            head = Member(HEAD, _sex(u, 0.15), 30.0 + 25.0 * u())
            return [head, *children(u, head.age, 2)]
        head, spouse = _couple(u, ((35, 50, 0.4), (50, 65, 0.6)))
        return [head, spouse, _parent_of(u, head.age)]
    if size == 4:
        kind = pick(u, (0.80, 0.15, 0.05))
        if kind == 0:
            head, spouse = _couple(u, _PARENT_AGES)
            return [head, spouse, *children(u, _mother_age(head, spouse), 2)]
        if kind == 1:
            head, spouse = _couple(u, ((30, 45, 0.5), (45, 60, 0.5)))
            return [head, spouse, *children(u, _mother_age(head, spouse), 1), _parent_of(u, head.age)]
        head = Member(HEAD, _sex(u, 0.15), 32.0 + 20.0 * u())
        return [head, *children(u, head.age, 3)]
    kind = pick(u, (0.50, 0.35, 0.15))
    if kind == 0:
        head, spouse = _couple(u, _PARENT_AGES)
        return [head, spouse, *children(u, _mother_age(head, spouse), size - 2)]
    if kind == 1:
        head, spouse = _couple(u, ((30, 45, 0.5), (45, 60, 0.5)))
        kids = children(u, _mother_age(head, spouse), size - 3)
        return [head, spouse, *kids, _parent_of(u, head.age)]
    # Three generations: an older couple, their son, his wife and their children (孫).
    head, spouse = _couple(u, _ELDER_HEAD_AGES)
    son_age = _clip(max(24.0, _mother_age(head, spouse) - (22.0 + 12.0 * u())))
    son = Member("子", MALE, son_age)
    wife = Member("子の妻", FEMALE, _clip(max(20.0, son_age - (-1.5 + 6.0 * u()))))
    grandchildren = [Member("孫", m.sex, m.age) for m in children(u, wife.age, size - 4)]
    return [head, spouse, son, wife, *grandchildren]
