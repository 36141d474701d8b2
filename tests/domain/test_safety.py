"""The rules of who is unaccounted for and what a safety inquiry may be told (domain.safety)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pytest

from domain.errors import InvalidArgumentError
from domain.safety import (
    NOT_DISCLOSED,
    Category,
    ConfirmationMethod,
    PersonFacts,
    SafetyStatus,
    Whereabouts,
    categories,
    confirmation,
    inquiry_answer,
    may_disclose,
    not_disclosed,
    tally,
    whereabouts,
)

HOME, OTHER = "045811", "302066"
OCCURRED = dt.datetime(2026, 11, 2, 5, 0, tzinfo=dt.UTC)
NOW = OCCURRED + dt.timedelta(days=1)


def facts(sheltered_at: str | None = None, confirmed: SafetyStatus | None = None, register: str = "CURRENT",
          damaged: bool = True, listed: bool = False) -> PersonFacts:
    return PersonFacts(damaged, listed, sheltered_at, confirmed, register)


@pytest.mark.parametrize(("person", "expected"), [
    (facts(), Whereabouts.UNACCOUNTED),
    (facts(sheltered_at=HOME), Whereabouts.SHELTERED),
    (facts(sheltered_at=OTHER), Whereabouts.SHELTERED_ELSEWHERE),  # matched to the home ledger
    (facts(confirmed=SafetyStatus.INJURED), Whereabouts.CONFIRMED),
    (facts(confirmed=SafetyStatus.DECEASED), Whereabouts.CONFIRMED),
    (facts(register="DELETED"), Whereabouts.REGISTER),
    # A check-in now is the freshest fact: it is what staff see, over an older confirmation.
    (facts(sheltered_at=HOME, confirmed=SafetyStatus.SAFE), Whereabouts.SHELTERED),
])
def test_whereabouts(person: PersonFacts, expected: Whereabouts) -> None:
    assert whereabouts(person, HOME) is expected


def test_categories_of_a_person_looked_for() -> None:
    assert categories(facts(damaged=True, listed=True)) == (Category.DAMAGED_DWELLING, Category.LISTED)
    assert categories(facts(damaged=False, listed=True)) == (Category.LISTED,)


def test_a_confirmation_is_checked() -> None:
    c = confirmation(" safe ", "phoned", NOW, "  長女宅に  避難 ", occurred_at=OCCURRED, now=NOW)
    assert (c.status, c.method, c.note) == (SafetyStatus.SAFE, ConfirmationMethod.PHONED, "長女宅に 避難")
    assert confirmation("DECEASED", "police-fire", NOW, "", occurred_at=OCCURRED, now=NOW).method is \
        ConfirmationMethod.POLICE_FIRE
    for args, argument in ((("FINE", "PHONED", NOW, ""), "status"), (("SAFE", "EMAIL", NOW, ""), "method"),
                           (("SAFE", "PHONED", OCCURRED - dt.timedelta(seconds=1), ""), "at"),
                           (("SAFE", "PHONED", NOW + dt.timedelta(seconds=1), ""), "at"),
                           (("SAFE", "PHONED", NOW, "x" * 201), "note")):
        with pytest.raises(InvalidArgumentError) as refused:
            confirmation(*args, occurred_at=OCCURRED, now=NOW)
        assert refused.value.argument == argument


def test_disclosure_needs_the_consent_and_its_recipient() -> None:
    assert may_disclose("女川町社会福祉協議会", "2026-10-01", "女川町 社会福祉協議会")
    assert may_disclose("ＮＰＯ法人つなぐ", "2026-10-01", "npo法人つなぐ")  # width and case do not matter
    assert not may_disclose("女川町社会福祉協議会", "2026-10-01", "報道機関")  # not the recipient
    assert not may_disclose(None, None, "女川町社会福祉協議会")  # no consent recorded
    assert not may_disclose("女川町社会福祉協議会", None, "女川町社会福祉協議会")  # a consent without its day
    assert not may_disclose("女川町社会福祉協議会", "2026-10-01", "  ")


def test_what_an_answer_says() -> None:
    told = inquiry_answer(Whereabouts.SHELTERED_ELSEWHERE, None, "鮎川小学校", NOW)
    assert told.disclosed and "鮎川小学校" in told.text
    assert "負傷" in inquiry_answer(Whereabouts.CONFIRMED, SafetyStatus.INJURED, None, None).text
    assert "確認されていません" in inquiry_answer(Whereabouts.UNACCOUNTED, None, None, None).text
    nothing = not_disclosed()
    assert (nothing.disclosed, nothing.text, nothing.whereabouts, nothing.shelter_name) == (
        False, NOT_DISCLOSED, None, None)


def test_the_tally_counts_whereabouts_of_everyone() -> None:
    """The set-operation counts agree with the per-person rule, for every combination of the facts."""
    rng = random.Random(3)
    people = [f"{n:011d}" for n in range(400)]
    damaged = {r for r in people if rng.random() < 0.6}
    listed = {r for r in people if rng.random() < 0.3}
    stays = {r: rng.choice((HOME, OTHER)) for r in people if rng.random() < 0.4}
    confirmed = {r: rng.choice(list(SafetyStatus)) for r in people if rng.random() < 0.3}
    removed = {r for r in people if rng.random() < 0.1}
    counted = tally(damaged, listed, stays, confirmed, removed, HOME)
    each = {r: PersonFacts(r in damaged, r in listed, stays.get(r), confirmed.get(r),
                           "DELETED" if r in removed else "CURRENT") for r in damaged | listed}
    states = Counter(whereabouts(f, HOME) for f in each.values())
    assert counted.looked_for == len(each)
    assert counted.by_whereabouts == {w: states[w] for w in Whereabouts}
    unaccounted = [f for f in each.values() if whereabouts(f, HOME) is Whereabouts.UNACCOUNTED]
    assert counted.unaccounted_by_category == {c: sum(c in categories(f) for f in unaccounted)
                                               for c in (Category.DAMAGED_DWELLING, Category.LISTED)}
    assert counted.confirmed == {s: sum(f.confirmed is s for f in each.values()
                                        if whereabouts(f, HOME) is Whereabouts.CONFIRMED) for s in SafetyStatus}


def test_the_statuses_and_methods_are_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "domain.md").read_text()
    section = text[text.index("### 6.6 "):text.index("\n## 7.")]
    for value in (*SafetyStatus, *ConfirmationMethod):
        assert f"`{value.value}`" in section, value
    assert NOT_DISCLOSED.split(":")[0] in section
