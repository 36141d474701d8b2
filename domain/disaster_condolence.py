"""災害弔慰金 (paid for a death caused by a disaster) and 災害障害見舞金 (for a serious disability it caused),
docs/domain.md §6.4: the amounts, which depend on whether the person supported the household (生計維持者),
and the order in which the bereaved receive the 弔慰金."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidArgumentError

BREADWINNER_CONDOLENCE = 5_000_000
OTHER_CONDOLENCE = 2_500_000
BREADWINNER_DISABILITY = 2_500_000
OTHER_DISABILITY = 1_250_000


@dataclass(frozen=True)
class CondolenceAmounts:
    condolence: int  # 災害弔慰金, for the death
    disability: int  # 災害障害見舞金, for a serious disability


def condolence_amounts(breadwinner: bool) -> CondolenceAmounts:
    """The amounts for a person who supported the household (`breadwinner`) or who did not."""
    if not isinstance(breadwinner, bool):
        raise InvalidArgumentError("breadwinner", f"must be true or false, got {breadwinner!r}")
    if breadwinner:
        return CondolenceAmounts(BREADWINNER_CONDOLENCE, BREADWINNER_DISABILITY)
    return CondolenceAmounts(OTHER_CONDOLENCE, OTHER_DISABILITY)


class Bereaved(StrEnum):
    """The relatives who can receive the 災害弔慰金, in the order they come (the first present receives it)."""

    SPOUSE = "SPOUSE"  # 配偶者
    CHILD = "CHILD"  # 子
    PARENT = "PARENT"  # 父母
    GRANDCHILD = "GRANDCHILD"  # 孫
    GRANDPARENT = "GRANDPARENT"  # 祖父母

    @property
    def japanese(self) -> str:
        return {"SPOUSE": "配偶者", "CHILD": "子", "PARENT": "父母", "GRANDCHILD": "孫", "GRANDPARENT": "祖父母"}[self]


def condolence_recipient(survivors: set[Bereaved] | frozenset[Bereaved]) -> Bereaved | None:
    """Which of the deceased's surviving relatives comes first; None when none of them survives."""
    unknown = [s for s in survivors if not isinstance(s, Bereaved)]
    if unknown:
        raise InvalidArgumentError("survivors", f"not a bereaved relation: {unknown[0]!r}")
    return next((relation for relation in Bereaved if relation in survivors), None)
