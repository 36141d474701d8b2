"""The values of the disaster rules are stated once, in domain/; docs/domain.md §6.2 and §6.4 repeat them for
readers, and this keeps them in step."""

from __future__ import annotations

from pathlib import Path

from domain.damage_levels import DamageLevel
from domain.disaster_condolence import Bereaved, condolence_amounts
from domain.disaster_relief_loan import (
    INCOME_LIMIT_DWELLING_LOST,
    INCOME_LIMIT_PER_FURTHER_PERSON,
    INCOME_LIMITS,
    relief_loan_limit,
)
from domain.livelihood_recovery_support import SUPPORT_DAMAGE_CODES, Rebuild, livelihood_support

DOMAIN_MD = Path(__file__).resolve().parents[2] / "docs" / "domain.md"


def _section(number: str) -> str:
    text = DOMAIN_MD.read_text()
    start = text.index(f"### {number} ")
    return text[start:text.index("\n### ", start + 1)]


def test_the_damage_table_is_the_one_of_the_code() -> None:
    section = _section("6.2")
    for level in DamageLevel:
        lowest = f"≥ {float(level.lowest_loss_ratio):g}" if level is DamageLevel.ZENKAI else \
            f"{float(level.lowest_loss_ratio):g} to" if level.lowest_loss_ratio else "< 0.1"
        assert f"| `{level.value}` | {level.japanese} | {lowest}" in section, level


def test_the_support_values_are_documented() -> None:
    section = _section("6.4")
    assert all(code in section for code in SUPPORT_DAMAGE_CODES[-2:])
    assert all(f"`{r.value}`" in section or r.value in section for r in Rebuild)
    zenkai = livelihood_support(DamageLevel.ZENKAI, Rebuild.BUILD, 2)
    chukibo = livelihood_support(DamageLevel.CHUKIBO_HANKAI, Rebuild.RENT, 2)
    for amount in (zenkai.basic, zenkai.additional, chukibo.additional,
                   *(condolence_amounts(b).condolence for b in (True, False)),
                   *(condolence_amounts(b).disability for b in (True, False)),
                   relief_loan_limit(head_injured=True, damage=DamageLevel.HANKAI).limit,
                   relief_loan_limit(head_injured=False, damage=DamageLevel.HANKAI).limit,
                   *INCOME_LIMITS.values(), INCOME_LIMIT_PER_FURTHER_PERSON, INCOME_LIMIT_DWELLING_LOST):
        assert f"{amount:,}" in section, amount
    order = [section.index(f"({b.japanese})") for b in Bereaved]
    assert order == sorted(order)
