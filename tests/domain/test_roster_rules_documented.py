"""The roster's default criteria are stated once, in domain.evacuation_roster; docs/domain.md §6.5 repeats them
for readers, and this keeps them in step."""

from __future__ import annotations

from pathlib import Path

from domain.evacuation_roster import DEFAULT_CRITERIA, CareLevel, Criterion

ROOT = Path(__file__).resolve().parents[2]


def _section(number: str) -> str:
    text = (ROOT / "docs" / "domain.md").read_text()
    start = text.index(f"### {number} ")
    return text[start:text.index("\n### ", start + 1)]


def test_the_default_criteria_are_the_documented_ones() -> None:
    section = _section("6.5")
    for criterion in Criterion:
        assert f"| `{criterion.value}` |" in section, criterion
    levels = ", ".join(level.japanese for level in CareLevel if level in DEFAULT_CRITERIA.care_levels)
    assert f"| `CARE` | {levels} |" in section
    assert f"身体障害者手帳 1級–{DEFAULT_CRITERIA.physical_up_to}級" in section
    assert f"精神障害者保健福祉手帳 {DEFAULT_CRITERIA.mental_up_to}級" in section
    assert f"aged {DEFAULT_CRITERIA.elderly_age} or more" in section

