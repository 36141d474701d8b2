"""The rules of declaring and closing a disaster (domain.disasters): what is accepted, and each refusal naming the
value that was wrong."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.disasters import Declaration, Disaster, DisasterClosedError, DisasterKind, closing_time, declaration
from domain.errors import InvalidArgumentError

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
OCCURRED = dt.datetime(2026, 11, 20, 5, 46, 0, 123_456, tzinfo=dt.UTC)


def declare(**changes: object) -> Declaration:
    values: dict[str, object] = {"name": "令和8年紀伊半島沖地震", "kind": "earthquake",
                                 "municipality_codes": ["302066"], "occurred_at": OCCURRED, "now": NOW}
    return declaration(**(values | changes))  # type: ignore[arg-type]


def test_a_declaration_is_normalised() -> None:
    checked = declare(name="  令和8年   紀伊半島沖地震 ", kind="TSUNAMI",
                      municipality_codes=["302066", "045811", "302066"])
    assert checked.name == "令和8年 紀伊半島沖地震"
    assert checked.kind is DisasterKind.TSUNAMI
    assert checked.municipality_codes == ("045811", "302066")
    assert checked.occurred_at == OCCURRED.replace(microsecond=123_000)


def test_a_disaster_may_have_occurred_just_now() -> None:
    assert declare(occurred_at=NOW).occurred_at == NOW


@pytest.mark.parametrize(("changes", "argument", "words"), [
    ({"name": " \t"}, "name", "needs a name"),
    ({"name": "x" * 101}, "name", "at most 100"),
    ({"kind": "meteor"}, "kind", "meteor"),
    ({"municipality_codes": []}, "municipality", "at least one"),
    ({"municipality_codes": ["302066", "999999"]}, "municipality", "'999999'"),
    ({"occurred_at": NOW + dt.timedelta(milliseconds=1)}, "occurred_at", "future"),
])
def test_a_bad_declaration_names_the_value(changes: dict[str, object], argument: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        declare(**changes)
    assert refused.value.argument == argument and words in refused.value.reason


def _disaster(closed_at: dt.datetime | None = None) -> Disaster:
    return Disaster("d-1", "令和8年紀伊半島沖地震", DisasterKind.EARTHQUAKE, ("302066",),
                    OCCURRED.replace(microsecond=0), OCCURRED, closed_at)


def test_closing() -> None:
    assert closing_time(_disaster(), NOW, NOW) == NOW
    with pytest.raises(DisasterClosedError, match="closed already"):
        closing_time(_disaster(closed_at=NOW), NOW, NOW)
    with pytest.raises(InvalidArgumentError, match="before the disaster occurred") as early:
        closing_time(_disaster(), OCCURRED - dt.timedelta(seconds=1), NOW)
    assert early.value.argument == "at"
    with pytest.raises(InvalidArgumentError, match="future"):
        closing_time(_disaster(), NOW + dt.timedelta(seconds=1), NOW)
